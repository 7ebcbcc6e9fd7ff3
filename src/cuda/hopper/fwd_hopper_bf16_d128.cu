// The Hopper forward kernel, first step (issue 5): bf16, head dim 128, block 128. One CTA per
// (batch, head, query block) as in the portable kernel, two consumer warpgroups of 64 query
// rows each; both products on wgmma (S = Q K^T with Q and K in shared memory, O += P V with P
// from registers), the online softmax in registers between them. K and V blocks come in whole
// (128 keys) through cp.async into 128-byte-swizzled shared memory, double buffered. Two
// schedules: serial (each product waited for) and overlapped (each warpgroup's softmax of
// block t runs while its P V of block t-1 is on the tensor cores). The TMA, warp-specialised
// kernel is fwd_hopper_ws_bf16_d128.cu; bench/gpu/HOPPER_NOTES.md says what each gave.
#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "cuda/check.hpp"
#include "cuda/hopper/fwd_hopper.hpp"
#include "cuda/hopper/fwd_hopper_common.cuh"
#include "cuda/ptx.cuh"
#include "radial/error.hpp"

namespace radial::cuda_detail {
namespace {

using namespace cute;
using namespace hopper;

// Byte offset of 16-byte chunk c (0..15) of row r in a swizzled [rows][128] tile: the
// layout above, written out for the copies (the 64-column halves are ROWS * 128 bytes apart).
template <int ROWS>
__device__ __forceinline__ uint32_t chunk_offset(int r, int c) {
  return static_cast<uint32_t>((c >> 3) * ROWS * 128 + r * 128 + (((c & 7) ^ (r & 7)) << 4));
}

// ROWS rows from `src` (row0.., `stride` elements apart) into the swizzled tile at dst; rows
// >= limit are zero-filled without being read. Thread t copies chunk t % 16 of rows t / 16 +
// 16 i, whose swizzle is the same for every i.
template <int ROWS>
__device__ __forceinline__ void load_tile(uint32_t dst, const Element* src, int64_t stride,
                                          int row0, int limit) {
  const int r = static_cast<int>(threadIdx.x) >> 4, c = static_cast<int>(threadIdx.x) & 15;
  const uint32_t to = dst + chunk_offset<ROWS>(r, c);
  const Element* from = src + static_cast<int64_t>(row0 + r) * stride + c * 8;
#pragma unroll
  for (int i = 0; i < ROWS / 16; ++i) {
    const bool valid = row0 + r + 16 * i < limit;
    cp_async_16(to + i * 16 * 128, valid ? from + 16 * i * stride : src, valid);
  }
}

template <bool kOverlap>
__global__ void __launch_bounds__(kThreads, 1) fwd_hopper_kernel(const FwdParams p) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ unsigned char smem_raw[];
  // 128-byte swizzle atoms need 1024-byte alignment.
  Element* base = reinterpret_cast<Element*>(
      (reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~static_cast<uintptr_t>(1023));
  Element* q_smem = base;
  Element* k_smem = q_smem + kBM * kD;
  Element* v_smem = k_smem + kStages * kBN * kD;
  const uint32_t sq = smem_addr(q_smem), sk = smem_addr(k_smem), sv = smem_addr(v_smem);

  // Work item, row order and block-list rotation exactly as the portable kernel.
  const int64_t item = blockIdx.x;
  const int rank = static_cast<int>(item % p.block_rows);
  const int64_t bh = item / p.block_rows;
  const int64_t b = bh / p.heads, h = bh % p.heads;
  const int qblock = p.row_order != nullptr ? __ldg(p.row_order + rank) : rank;
  const int q0 = qblock * kBM;
  const int begin = __ldg(p.row_offset + qblock);
  const int n_blocks = __ldg(p.row_offset + qblock + 1) - begin;
  const int first = p.row_start != nullptr ? __ldg(p.row_start + qblock) : 0;
  const auto key_start = [&](int i) {
    const int e = first + i;
    return __ldg(p.col_index + begin + (e >= n_blocks ? e - n_blocks : e)) * kBN;
  };

  const Element* qg = static_cast<const Element*>(p.q) + b * p.q_sb + h * p.q_sh;
  const Element* kg = static_cast<const Element*>(p.k) + b * p.k_sb + h * p.k_sh;
  const Element* vg = static_cast<const Element*>(p.v) + b * p.v_sb + h * p.v_sh;
  __nv_bfloat16* og = static_cast<__nv_bfloat16*>(p.out) + b * p.o_sb + h * p.o_sh;

  Tensor sQ = make_tensor(make_smem_ptr(q_smem), SmemLayoutQ{});
  Tensor sK = make_tensor(make_smem_ptr(k_smem), SmemLayoutKV{});
  Tensor sVt = make_tensor(make_smem_ptr(v_smem), SmemLayoutVt{});

  MmaQK mma_qk;
  MmaPV mma_pv;
  auto thr_qk = mma_qk.get_thread_slice(threadIdx.x);
  auto thr_pv = mma_pv.get_thread_slice(threadIdx.x);
  Tensor tSrQ = thr_qk.partition_fragment_A(sQ);    // descriptors (MMA, 1, K)
  Tensor tSrK = thr_qk.partition_fragment_B(sK);    // descriptors (MMA, 1, K, stage)
  Tensor tOrVt = thr_pv.partition_fragment_B(sVt);  // descriptors (MMA, 1, K, stage)
  Tensor tSrS = partition_fragment_C(mma_qk, Shape<BM, BN>{});
  Tensor tOrO = partition_fragment_C(mma_pv, Shape<BM, HD>{});
  Tensor tOrP = make_tensor<Element>(partition_shape_A(mma_pv, Shape<BM, BN>{}));
  // Each thread's accumulator entries i = 4 nt + 2 half + j: row lane / 4 + 8 half of its
  // warp's 16, column 8 nt + 2 (lane % 4) + j. The A fragment of the RS product uses the same
  // order (k-steps of 16 = two n-tiles), so P converts element by element.
  static_assert(size(tSrS) == 64 && size(tOrO) == 64 && size(tOrP) == 64, "fragment sizes");
  clear(tOrO);

  const int lane = static_cast<int>(threadIdx.x) & 31;
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.f, 0.f};

  float alpha[2];
  if constexpr (!kOverlap) {
    // Serial: per key block, wait for K and V, S = Q K^T, softmax, O += P V, each product
    // waited for; the next block's copies run meanwhile.
    load_tile<kBM>(sq, qg, p.q_ss, q0, p.seq);
    if (n_blocks > 0) {
      const int key0 = key_start(0);
      load_tile<kBN>(sk, kg, p.k_ss, key0, p.key_limit);
      load_tile<kBN>(sv, vg, p.v_ss, key0, p.key_limit);
    }
    cp_async_commit();
    for (int t = 0; t < n_blocks; ++t) {
      const int stage = t & 1;
      if (t + 1 < n_blocks) {  // into the other stage, freed at the end of iteration t - 1
        const int key1 = key_start(t + 1);
        load_tile<kBN>(sk + (stage ^ 1) * kTileBytes, kg, p.k_ss, key1, p.key_limit);
        load_tile<kBN>(sv + (stage ^ 1) * kTileBytes, vg, p.v_ss, key1, p.key_limit);
      }
      cp_async_commit();
      cp_async_wait<1>();
      // cp.async wrote through the generic proxy; wgmma reads through the async proxy.
      asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
      __syncthreads();
      wg_issue<true>(mma_qk, tSrQ, tSrK(_, _, _, stage), tSrS);
      warpgroup_wait<0>();
      warpgroup_fence_operand(tSrS);
      online_softmax(tSrS, key_start(t), p.key_limit, p.scale_log2, row_max, row_sum, alpha,
                     lane);
      rescale_and_convert(tOrO, tSrS, tOrP, alpha);
      wg_issue<false>(mma_pv, tOrP, tOrVt(_, _, _, stage), tOrO);
      warpgroup_wait<0>();
      warpgroup_fence_operand(tOrO);
      __syncthreads();  // every warpgroup is done with this stage before it is refilled
    }
  } else {
    // Overlapped (within each warpgroup): at block t, S(t) = Q K(t)^T and then
    // O += P(t-1) V(t-1) are issued together; the softmax of S(t) runs while the second
    // product is on the tensor cores; O is rescaled and P(t) made once it is done. K(t+1)
    // loads from the start of block t (its stage held K(t-1), done with), V(t+1) once
    // P(t-1) V(t-1) is done everywhere (its stage held V(t-1)); V has a block to spare.
    // cp.async groups, oldest first: {Q, K0}, {V0}, then per block {K(t+1)}, {V(t+1)}
    // (empty past the end), so "all but the newest" at the top of block t is K(t), V(t-1).
    load_tile<kBM>(sq, qg, p.q_ss, q0, p.seq);
    if (n_blocks > 0) load_tile<kBN>(sk, kg, p.k_ss, key_start(0), p.key_limit);
    cp_async_commit();
    if (n_blocks > 0) load_tile<kBN>(sv, vg, p.v_ss, key_start(0), p.key_limit);
    cp_async_commit();
    for (int t = 0; t < n_blocks; ++t) {
      const int stage = t & 1;
      const int key1 = t + 1 < n_blocks ? key_start(t + 1) : 0;
      cp_async_wait<1>();
      asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
      __syncthreads();  // K(t), V(t-1) landed everywhere; every warpgroup is past S(t-1)
      if (t + 1 < n_blocks) {
        load_tile<kBN>(sk + (stage ^ 1) * kTileBytes, kg, p.k_ss, key1, p.key_limit);
      }
      cp_async_commit();
      wg_issue<true>(mma_qk, tSrQ, tSrK(_, _, _, stage), tSrS);
      if (t > 0) {
        wg_issue<false>(mma_pv, tOrP, tOrVt(_, _, _, stage ^ 1), tOrO);
        warpgroup_wait<1>();
      } else {
        warpgroup_wait<0>();
      }
      warpgroup_fence_operand(tSrS);
      online_softmax(tSrS, key_start(t), p.key_limit, p.scale_log2, row_max, row_sum, alpha,
                     lane);
      warpgroup_wait<0>();
      warpgroup_fence_operand(tOrO);
      warpgroup_fence_operand(tOrP);
      rescale_and_convert(tOrO, tSrS, tOrP, alpha);
      __syncthreads();  // every warpgroup is done with V(t-1)
      if (t + 1 < n_blocks) {
        load_tile<kBN>(sv + (stage ^ 1) * kTileBytes, vg, p.v_ss, key1, p.key_limit);
      }
      cp_async_commit();
    }
    if (n_blocks > 0) {
      const int last = (n_blocks - 1) & 1;
      cp_async_wait<0>();
      asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
      __syncthreads();  // V(n-1) landed everywhere
      wg_issue<false>(mma_pv, tOrP, tOrVt(_, _, _, last), tOrO);
      warpgroup_wait<0>();
      warpgroup_fence_operand(tOrO);
    }
  }
  cp_async_wait<0>();

  store_output(p, og, tOrO, row_max, row_sum, q0, static_cast<int>(threadIdx.x), lane, bh);
#endif
}

}  // namespace

void launch_fwd_hopper(const FwdParams& p, DType dtype, int head_dim, int block_size,
                       HopperSchedule schedule, cudaStream_t stream) {
  require(dtype == DType::bf16, "q.dtype", "bf16 for the Hopper kernel",
          dtype == DType::f16 ? "f16" : "another dtype");
  require(head_dim == kD, "q.dim", "128 for the Hopper kernel", head_dim);
  require(block_size == kBM, "plan.block_size", "128 for the Hopper kernel", block_size);
  int device = 0, major = 0, minor = 0;
  RADIAL_CUDA_CHECK(cudaGetDevice(&device));
  RADIAL_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  RADIAL_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  require(major == 9 && minor == 0, "device", "compute capability 9.0 for the Hopper kernel",
          std::to_string(major) + "." + std::to_string(minor));
  if (schedule != HopperSchedule::serial && schedule != HopperSchedule::overlap) {
    launch_fwd_hopper_ws(
        p, schedule == HopperSchedule::pingpong || schedule == HopperSchedule::split_pingpong,
        schedule == HopperSchedule::split_overlap || schedule == HopperSchedule::split_pingpong,
        stream);
    return;
  }
  const auto kernel = schedule == HopperSchedule::overlap ? fwd_hopper_kernel<true>
                                                          : fwd_hopper_kernel<false>;
  RADIAL_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes));
  const int64_t grid = p.batch_heads * p.block_rows;
  kernel<<<static_cast<unsigned>(grid), kThreads, kSmemBytes, stream>>>(p);
  check_cuda(cudaGetLastError(), "fwd_hopper_kernel<<<...>>> (launch of the Hopper kernel)");
}

}  // namespace radial::cuda_detail
