// The warp-specialised Hopper forward kernel (issue 5, second step): bf16, head dim 128,
// block 128, one CTA per (batch, head, query block). Warpgroup 0 is the producer: one thread
// issues TMA copies of Q and of the plan's K and V blocks into two shared-memory stages each,
// on full/empty mbarriers; its registers go to the consumers (setmaxnreg). Warpgroups 1 and 2
// consume 64 query rows each, each product waited for (see consume() for why not the
// overlapped schedule). With kPingpong the two consumers take turns issuing their products
// (named barriers), so that one warpgroup's softmax runs while the other's products run.
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>
#include <mutex>

#include "cuda/check.hpp"
#include "cuda/hopper/fwd_hopper.hpp"
#include "cuda/hopper/fwd_hopper_common.cuh"
#include "cuda/hopper/sm90_ptx.cuh"
#include "cuda/ptx.cuh"
#include "radial/error.hpp"

namespace radial::cuda_detail {
namespace {

using namespace cute;
using namespace hopper;

constexpr int kWsThreads = 384;  // producer warpgroup + two consumer warpgroups
constexpr int kConsumers = 256;
constexpr int kHalfBytes = kBN * 64 * 2;  // one TMA box: 128 rows x 64 columns
// Q, two K stages, two V stages (1024-aligned), then the mbarriers, plus alignment slack.
constexpr int kWsSmemBytes = kBM * kD * 2 + 2 * kStages * kTileBytes + 128 + 1024;

struct Barriers {
  uint64_t q_full, k_full[2], k_empty[2], v_full[2], v_empty[2];
};

// A [rows, 128] tile at row `row` of (head h, batch b): two boxes of 64 columns, each into its
// 128-byte-swizzled half (the layout of SmemLayoutQ / SmemLayoutKV).
__device__ __forceinline__ void tma_tile(uint32_t dst, const CUtensorMap* map, uint32_t bar,
                                         int row, int h, int b) {
  tma_load_4d(dst, map, bar, 0, row, h, b);
  tma_load_4d(dst + kHalfBytes, map, bar, 64, row, h, b);
}

// The consumer warpgroups (threads 128..383): the key blocks off the mbarrier pipeline, then
// the epilogue.
template <bool kPingpong>
__device__ __forceinline__ void consume(const FwdParams& p, Element* q_smem, Element* k_smem,
                                        Element* v_smem, Barriers* bars, int q0, int n_blocks,
                                        int first, int begin, int64_t bh, int b, int h) {
  const auto bar = [](uint64_t& x) { return smem_addr(&x); };
  const uint32_t q_full = smem_addr(&bars->q_full);
  const auto key_start = [&](int i) {
    const int e = first + i;
    return __ldg(p.col_index + begin + (e >= n_blocks ? e - n_blocks : e)) * kBN;
  };
  regs_increase<232>();  // 128 x 40 + 256 x 232 = 64512 registers
  const int tid = static_cast<int>(threadIdx.x) - 128;  // 0..255 over the consumers
  const int wg = tid >> 7;
  const int lane = tid & 31;
  __nv_bfloat16* og = static_cast<__nv_bfloat16*>(p.out) + b * p.o_sb + h * p.o_sh;

  Tensor sQ = make_tensor(make_smem_ptr(q_smem), SmemLayoutQ{});
  Tensor sK = make_tensor(make_smem_ptr(k_smem), SmemLayoutKV{});
  Tensor sVt = make_tensor(make_smem_ptr(v_smem), SmemLayoutVt{});
  MmaQK mma_qk;
  MmaPV mma_pv;
  auto thr_qk = mma_qk.get_thread_slice(tid);
  auto thr_pv = mma_pv.get_thread_slice(tid);
  Tensor tSrQ = thr_qk.partition_fragment_A(sQ);
  Tensor tSrK = thr_qk.partition_fragment_B(sK);
  Tensor tOrVt = thr_pv.partition_fragment_B(sVt);
  Tensor tSrS = partition_fragment_C(mma_qk, Shape<BM, BN>{});
  Tensor tOrO = partition_fragment_C(mma_pv, Shape<BM, HD>{});
  Tensor tOrP = make_tensor<Element>(partition_shape_A(mma_pv, Shape<BM, BN>{}));
  static_assert(size(tSrS) == 64 && size(tOrO) == 64 && size(tOrP) == 64, "fragment sizes");
  clear(tOrO);
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.f, 0.f}, alpha[2];

  // Per key block: S = Q K^T, softmax, O += P V, each product waited for (the overlapped
  // schedule needs S(t+1), P(t) and O live at once, more than the 168 registers ptxas allots
  // each thread of a 384-thread CTA, setmaxnreg or not: it spilled and serialised the wgmma).
  // Pingpong: warpgroup w issues S(t) after barrier 1 + w and then lets the other go, so the
  // tensor cores run S_0, S_1, PV_0, PV_1, S_0, ... while each warpgroup's softmax runs during
  // the other's product. Warpgroup 0 goes first; warpgroup 1 skips its last hand-over, so
  // that every arrival is matched by a sync.
  if constexpr (kPingpong) {
    if (wg == 1 && n_blocks > 0) named_barrier_arrive(1, kConsumers);
  }
  mbar_wait(q_full, 0);
  for (int t = 0; t < n_blocks; ++t) {
    const int s = t & 1;
    const uint32_t parity = (t >> 1) & 1;
    mbar_wait(bar(bars->k_full[s]), parity);
    if constexpr (kPingpong) named_barrier_sync(1 + wg, kConsumers);
    wg_issue<true>(mma_qk, tSrQ, tSrK(_, _, _, s), tSrS);
    if constexpr (kPingpong) {
      if (wg == 0 || t + 1 < n_blocks) named_barrier_arrive(2 - wg, kConsumers);
    }
    warpgroup_wait<0>();
    warpgroup_fence_operand(tSrS);
    mbar_arrive(bar(bars->k_empty[s]));
    online_softmax(tSrS, key_start(t), p.key_limit, p.scale_log2, row_max, row_sum, alpha,
                   lane);
    rescale_and_convert(tOrO, tSrS, tOrP, alpha);
    mbar_wait(bar(bars->v_full[s]), parity);
    wg_issue<false>(mma_pv, tOrP, tOrVt(_, _, _, s), tOrO);
    warpgroup_wait<0>();
    warpgroup_fence_operand(tOrO);
    mbar_arrive(bar(bars->v_empty[s]));
  }

  store_output(p, og, tOrO, row_max, row_sum, q0, tid, lane, bh);
}

// S for 64 keys at a time: m64n64 accumulators (32 registers) leave room for the overlap.
using MmaQK64 = decltype(make_tiled_mma(
    SM90_64x64x16_F32BF16BF16_SS<GMMA::Major::K, GMMA::Major::K>{}, Layout<Shape<_2, _1, _1>>{}));
using Half = Int<kBN / 2>;

// The consumers with the overlapped schedule on 64-key halves u = 2 t + j of the key blocks:
// S(u) and P(u-1) V(u-1) issued together, the softmax of S(u) while P V runs; S(u), P(u-1)
// and O fit the 168 registers (S and P are half the size of the 128-key ones). K(t) is
// released after S(2t+1), V(t) after P(2t+1) V(2t+1).
template <bool kPingpong>
__device__ __forceinline__ void consume_split(const FwdParams& p, Element* q_smem,
                                              Element* k_smem, Element* v_smem, Barriers* bars,
                                              int q0, int n_blocks, int first, int begin,
                                              int64_t bh, int b, int h) {
  const auto bar = [](uint64_t& x) { return smem_addr(&x); };
  const uint32_t q_full = smem_addr(&bars->q_full);
  const auto key_start = [&](int i) {
    const int e = first + i;
    return __ldg(p.col_index + begin + (e >= n_blocks ? e - n_blocks : e)) * kBN;
  };
  regs_increase<232>();
  const int tid = static_cast<int>(threadIdx.x) - 128;
  const int wg = tid >> 7;
  const int lane = tid & 31;
  __nv_bfloat16* og = static_cast<__nv_bfloat16*>(p.out) + b * p.o_sb + h * p.o_sh;

  Tensor sQ = make_tensor(make_smem_ptr(q_smem), SmemLayoutQ{});
  Tensor sK = make_tensor(make_smem_ptr(k_smem), SmemLayoutKV{});
  Tensor sVt = make_tensor(make_smem_ptr(v_smem), SmemLayoutVt{});
  MmaQK64 mma_qk;
  MmaPV mma_pv;
  auto thr_qk = mma_qk.get_thread_slice(tid);
  auto thr_pv = mma_pv.get_thread_slice(tid);
  Tensor tSrQ = thr_qk.partition_fragment_A(sQ);
  Tensor tSrS = partition_fragment_C(mma_qk, Shape<BM, Half>{});
  Tensor tOrO = partition_fragment_C(mma_pv, Shape<BM, HD>{});
  Tensor tOrP = make_tensor<Element>(partition_shape_A(mma_pv, Shape<BM, Half>{}));
  static_assert(size(tSrS) == 32 && size(tOrO) == 64 && size(tOrP) == 32, "fragment sizes");
  clear(tOrO);
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.f, 0.f}, alpha[2];
  // Fragments of half j of the K and V tiles of `stage` (keys 64 j .. 64 j + 63).
  const auto k_half = [&](int stage, int j) {
    return thr_qk.partition_fragment_B(
        local_tile(sK(_, _, stage), Shape<Half, HD>{}, make_coord(j, 0)));
  };
  const auto v_half = [&](int stage, int j) {
    return thr_pv.partition_fragment_B(
        local_tile(sVt(_, _, stage), Shape<HD, Half>{}, make_coord(0, j)));
  };

  // Pingpong as in consume(), but each warpgroup hands over once its S(u) is done (an arrive
  // between issue and wait, or a branch there, made ptxas serialise the wgmma, C7514), and
  // warpgroup 1 hands over after its last half too, warpgroup 0 taking that arrival after
  // the loop.
  if constexpr (kPingpong) {
    if (wg == 1 && n_blocks > 0) named_barrier_arrive(1, kConsumers);
  }
  mbar_wait(q_full, 0);
  const int n_halves = 2 * n_blocks;
  for (int u = 0; u < n_halves; ++u) {
    const int t = u >> 1, j = u & 1, s = t & 1;
    const int w = u - 1, wt = w >> 1, wj = w & 1, ws = wt & 1;  // the half P V works on
    if (j == 0) mbar_wait(bar(bars->k_full[s]), (t >> 1) & 1);
    if (u > 0 && wj == 0) mbar_wait(bar(bars->v_full[ws]), (wt >> 1) & 1);
    if constexpr (kPingpong) named_barrier_sync(1 + wg, kConsumers);
    auto tSrK = k_half(s, j);
    wg_issue<true>(mma_qk, tSrQ, tSrK, tSrS);
    if (u > 0) {
      auto tOrV = v_half(ws, wj);
      wg_issue<false>(mma_pv, tOrP, tOrV, tOrO);
    }
    if (u > 0) {
      warpgroup_wait<1>();
    } else {
      warpgroup_wait<0>();
    }
    warpgroup_fence_operand(tSrS);
    if constexpr (kPingpong) named_barrier_arrive(2 - wg, kConsumers);
    if (j == 1) mbar_arrive(bar(bars->k_empty[s]));
    online_softmax<8>(tSrS, key_start(t) + j * (kBN / 2), p.key_limit, p.scale_log2, row_max,
                      row_sum, alpha, lane);
    warpgroup_wait<0>();
    warpgroup_fence_operand(tOrO);
    warpgroup_fence_operand(tOrP);
    if (u > 0 && wj == 1) mbar_arrive(bar(bars->v_empty[ws]));
    rescale_and_convert<8>(tOrO, tSrS, tOrP, alpha);
  }
  if constexpr (kPingpong) {  // warpgroup 1's last hand-over (branch-free in the loop)
    if (wg == 0 && n_blocks > 0) named_barrier_sync(1, kConsumers);
  }
  if (n_blocks > 0) {  // the last half's P V (its V stage was waited for with the first half)
    auto tOrV = v_half((n_blocks - 1) & 1, 1);
    wg_issue<false>(mma_pv, tOrP, tOrV, tOrO);
    warpgroup_wait<0>();
    warpgroup_fence_operand(tOrO);
  }
  store_output(p, og, tOrO, row_max, row_sum, q0, tid, lane, bh);
}

template <bool kPingpong, bool kSplit>
__global__ void __launch_bounds__(kWsThreads, 1)
    fwd_hopper_ws_kernel(const FwdParams p, const __grid_constant__ CUtensorMap tq,
                         const __grid_constant__ CUtensorMap tk,
                         const __grid_constant__ CUtensorMap tv) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ unsigned char smem_raw[];
  unsigned char* base = reinterpret_cast<unsigned char*>(
      (reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~static_cast<uintptr_t>(1023));
  Element* q_smem = reinterpret_cast<Element*>(base);
  Element* k_smem = q_smem + kBM * kD;
  Element* v_smem = k_smem + kStages * kBN * kD;
  Barriers* bars = reinterpret_cast<Barriers*>(v_smem + kStages * kBN * kD);
  const uint32_t sq = smem_addr(q_smem), sk = smem_addr(k_smem), sv = smem_addr(v_smem);
  const uint32_t q_full = smem_addr(&bars->q_full);
  const auto bar = [](uint64_t& b) { return smem_addr(&b); };

  const int64_t item = blockIdx.x;
  const int rank = static_cast<int>(item % p.block_rows);
  const int64_t bh = item / p.block_rows;
  const int b = static_cast<int>(bh / p.heads), h = static_cast<int>(bh % p.heads);
  const int qblock = p.row_order != nullptr ? __ldg(p.row_order + rank) : rank;
  const int q0 = qblock * kBM;
  const int begin = __ldg(p.row_offset + qblock);
  const int n_blocks = __ldg(p.row_offset + qblock + 1) - begin;
  const int first = p.row_start != nullptr ? __ldg(p.row_start + qblock) : 0;
  const auto key_start = [&](int i) {
    const int e = first + i;
    return __ldg(p.col_index + begin + (e >= n_blocks ? e - n_blocks : e)) * kBN;
  };

  if (threadIdx.x == 0) {
    mbar_init(q_full, 1);
    for (int s = 0; s < 2; ++s) {
      mbar_init(bar(bars->k_full[s]), 1);
      mbar_init(bar(bars->v_full[s]), 1);
      mbar_init(bar(bars->k_empty[s]), kConsumers);
      mbar_init(bar(bars->v_empty[s]), kConsumers);
    }
    mbar_init_fence();
  }
  __syncthreads();

  if (threadIdx.x < 128) {
    // Producer. K(t) and V(t) go to stage t % 2 once the consumers have released what that
    // stage held (K(t-2) after S(t-2), V(t-2) after P(t-2) V(t-2)).
    regs_decrease<40>();
    if (threadIdx.x == 0) {
      mbar_arrive_expect_tx(q_full, kBM * kD * 2);
      tma_tile(sq, &tq, q_full, q0, h, b);
      for (int t = 0; t < n_blocks; ++t) {
        const int s = t & 1;
        const uint32_t parity = ((t >> 1) - 1) & 1;
        const int key0 = key_start(t);
        if (t >= 2) mbar_wait(bar(bars->k_empty[s]), parity);
        mbar_arrive_expect_tx(bar(bars->k_full[s]), kTileBytes);
        tma_tile(sk + s * kTileBytes, &tk, bar(bars->k_full[s]), key0, h, b);
        if (t >= 2) mbar_wait(bar(bars->v_empty[s]), parity);
        mbar_arrive_expect_tx(bar(bars->v_full[s]), kTileBytes);
        tma_tile(sv + s * kTileBytes, &tv, bar(bars->v_full[s]), key0, h, b);
      }
    }
  } else {
    if constexpr (kSplit) {
      consume_split<kPingpong>(p, q_smem, k_smem, v_smem, bars, q0, n_blocks, first, begin, bh,
                               b, h);
    } else {
      consume<kPingpong>(p, q_smem, k_smem, v_smem, bars, q0, n_blocks, first, begin, bh, b, h);
    }
  }
#endif
}

PFN_cuTensorMapEncodeTiled_v12000 encode_function() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = nullptr;
  static std::once_flag once;
  std::call_once(once, [] {
    void* ptr = nullptr;
    cudaDriverEntryPointQueryResult found{};
    RADIAL_CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &ptr, 12000,
                                                       cudaEnableDefault, &found));
    if (found == cudaDriverEntryPointSuccess) fn = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(ptr);
  });
  if (fn == nullptr) check_cuda(cudaErrorNotSupported, "cuTensorMapEncodeTiled (driver entry point)");
  return fn;
}

// A 4-D map (column, row, head, batch) of one input with 128 x 64 boxes, 128-byte swizzle;
// rows from `rows` on read as zeros. A stride of an extent-1 dimension may be anything (the
// checks allow it); it is never stepped, so it gets the packed value, a multiple of 16 bytes.
CUtensorMap make_map(const void* data, int rows, int heads, int64_t batch, int64_t ss,
                     int64_t sh, int64_t sb) {
  CUtensorMap map;
  const cuuint64_t dims[4] = {static_cast<cuuint64_t>(kD), static_cast<cuuint64_t>(rows),
                              static_cast<cuuint64_t>(heads), static_cast<cuuint64_t>(batch)};
  const auto bytes = [](int64_t stride, int64_t extent, int64_t packed) {
    return static_cast<cuuint64_t>(2 * (extent == 1 ? packed : stride));
  };
  const int64_t s_rows = bytes(ss, rows, kD) / 2;
  const int64_t s_heads = bytes(sh, heads, s_rows * rows) / 2;
  const cuuint64_t strides[3] = {static_cast<cuuint64_t>(2 * s_rows),
                                 static_cast<cuuint64_t>(2 * s_heads),
                                 bytes(sb, batch, s_heads * heads)};
  const cuuint32_t box[4] = {64, static_cast<cuuint32_t>(kBN), 1, 1};
  const cuuint32_t element_strides[4] = {1, 1, 1, 1};
  const CUresult r = encode_function()(
      &map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 4, const_cast<void*>(data), dims, strides, box,
      element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
      CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) check_cuda(cudaErrorInvalidValue, "cuTensorMapEncodeTiled (tensor map)");
  return map;
}

}  // namespace

void launch_fwd_hopper_ws(const FwdParams& p, bool pingpong, bool split, cudaStream_t stream) {
  const int batch = static_cast<int>(p.batch_heads / p.heads);
  const int key_rows = p.key_limit > 0 ? p.key_limit : 1;
  const CUtensorMap tq = make_map(p.q, p.seq, p.heads, batch, p.q_ss, p.q_sh, p.q_sb);
  const CUtensorMap tk = make_map(p.k, key_rows, p.heads, batch, p.k_ss, p.k_sh, p.k_sb);
  const CUtensorMap tv = make_map(p.v, key_rows, p.heads, batch, p.v_ss, p.v_sh, p.v_sb);
  const auto kernel =
      split ? (pingpong ? fwd_hopper_ws_kernel<true, true> : fwd_hopper_ws_kernel<false, true>)
            : (pingpong ? fwd_hopper_ws_kernel<true, false> : fwd_hopper_ws_kernel<false, false>);
  RADIAL_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kWsSmemBytes));
  const int64_t grid = p.batch_heads * p.block_rows;
  kernel<<<static_cast<unsigned>(grid), kWsThreads, kWsSmemBytes, stream>>>(p, tq, tk, tv);
  check_cuda(cudaGetLastError(), "fwd_hopper_ws_kernel<<<...>>> (launch of the Hopper kernel)");
}

}  // namespace radial::cuda_detail
