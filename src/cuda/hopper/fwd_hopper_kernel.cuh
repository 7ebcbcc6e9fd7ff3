// The Hopper forward kernel (sm_90a): warp-specialised, block-sparse.
//
// 384 threads. Warpgroup 0 is the producer: one thread issues TMA copies of each tile's Q and
// of the K and V blocks its plan row names into kStages shared-memory stages, on full/empty
// mbarriers; its registers go to the consumers (setmaxnreg 40/232). Warpgroups 1 and 2 each
// own 64 query rows of the tile (one query block).
//
// Grid: one CTA per tile, or persistent CTAs (one per SM) that take tiles from an atomic
// counter in a host-made order (src/schedule/tile_order.hpp); the producer hands each tile index
// to the consumers through a two-slot mailbox, and the pipeline runs on across tiles, so the next
// tile's Q and first K/V blocks load during this tile's last products and epilogue.
//
// Consumer schedules (HopperSchedule):
//   serial:   S = Q K^T, softmax, O += P V, each product waited for.
//   overlap:  S(t) and P(t-1) V(t-1) issued together; the softmax of S(t) runs while P V is
//             on the tensor cores (FlashAttention-3's intra-warpgroup overlap).
//   pingpong: overlap, and the two warpgroups take turns issuing (mbarriers), so that one
//             warpgroup's softmax also runs under the other's products.
//   q_registers: overlap with Q loaded into registers once per tile (ldmatrix) and
//             Q K^T from registers (RS): a fifth less shared-memory operand traffic.
#pragma once

#include <cuda.h>

#include <cstdint>
#include <type_traits>

#include "cuda/block_walk.cuh"
#include "cuda/check.hpp"

#include "cuda/hopper/fwd_hopper.hpp"
#include "cuda/hopper/fwd_hopper_common.cuh"
#include "cuda/hopper/sm90_ptx.cuh"
#include "cuda/hopper/tensor_map.hpp"

namespace radial::cuda_detail::hopper {

// Threads: T::kThreads, the producer warpgroup and T::kConsumerWGs consumer warpgroups
// (two; three in the FP8 kernel's kWg3 variant), T::kConsumers of them consumers.

template <int kStages>
struct Barriers {
  uint64_t q_full, q_empty;
  uint64_t turn[2];  // pingpong: the warpgroups' turns on the tensor cores
  uint64_t tile_full[2], tile_empty[2];  // persistent: the tile-index mailbox
  int32_t tile_slot[2];
  uint64_t k_full[kStages], k_empty[kStages], v_full[kStages], v_empty[kStages];
};

template <class T>
constexpr int smem_bytes() {
  // Q, the K stages, the V stages (1024-aligned for the swizzle), the barriers, + alignment.
  static_assert(sizeof(Barriers<T::kStages>) <= 256, "barriers fit their reserve");
  // (FP8: the K stages' key biases too, kBiasBytes each, and their kMetaBytes; P's tile, if
  // the kernel's P V reads P from shared memory, kPBytes before them.)
  return T::kQBytes + T::kStages * (T::kTileBytes + T::kVtBytes) + T::kPBytes +
         T::kStages * (T::kBiasBytes + T::kMetaBytes) + 256 + 1024;
}

// One tile: a query block of one (batch, head) and the walk over its key blocks.
struct Tile {
  int b, h, q0;
  BlockWalk walk;
  int64_t bh;
};

__device__ __forceinline__ Tile load_tile(const FwdParams& p, int index) {
  int qblock;
  int64_t bh;
  if (p.tile_order != nullptr) {
    const int id = __ldg(p.tile_order + index);
    bh = id / p.block_rows;
    qblock = id - static_cast<int>(bh) * p.block_rows;
  } else {  // one tile per CTA, rows in row_order within each (batch, head)
    const int rank = static_cast<int>(index % p.block_rows);
    bh = index / p.block_rows;
    // block_row_of_rank (block_walk.cuh) written out: with the call, ptxas schedules this
    // kernel differently (same registers, same arithmetic); written out, its SASS is the same
    // as before the shared header.
    qblock = p.row_order != nullptr ? __ldg(p.row_order + rank) : rank;
  }
  Tile t;
  t.bh = bh;
  t.b = static_cast<int>(bh / p.heads);
  t.h = static_cast<int>(bh % p.heads);
  t.q0 = qblock * 128;
  t.walk = block_walk(p, qblock);
  return t;
}

// First key of the i-th block the tile visits (its list rotated to start at walk.first).
// walk_block with the offset added to the pointer, not to begin: the address arithmetic this
// kernel always had (the SASS stays the same).
__device__ __forceinline__ int key_start(const FwdParams& p, const Tile& t, int i) {
  return __ldg(p.col_index + t.walk.begin + walk_offset(t.walk, i)) * 128;
}

// The index of this CTA's j-th tile, or -1 when it has no more. Producer side: takes it from
// the counter and posts it in mailbox slot j % 2 (once the consumers have read what that slot
// held two tiles ago). Consumer side: reads the slot.
template <int kStages>
__device__ __forceinline__ int next_tile_producer(const FwdParams& p, Barriers<kStages>* bars,
                                                  int j) {
  if (p.tile_counter == nullptr) return j == 0 ? static_cast<int>(blockIdx.x) : -1;
  const int s = j & 1;
  if (j >= 2) mbar_wait(smem_addr(&bars->tile_empty[s]), ((j >> 1) - 1) & 1);
  int index = atomicAdd(p.tile_counter, 1);
  if (index >= p.tiles) index = -1;
  *reinterpret_cast<volatile int32_t*>(&bars->tile_slot[s]) = index;
  mbar_arrive(smem_addr(&bars->tile_full[s]));  // release: the slot is visible to the waiters
  return index;
}

template <int kStages>
__device__ __forceinline__ int next_tile_consumer(const FwdParams& p, Barriers<kStages>* bars,
                                                  int j) {
  if (p.tile_counter == nullptr) return j == 0 ? static_cast<int>(blockIdx.x) : -1;
  const int s = j & 1;
  mbar_wait(smem_addr(&bars->tile_full[s]), (j >> 1) & 1);
  const int index = *reinterpret_cast<volatile int32_t*>(&bars->tile_slot[s]);
  mbar_arrive(smem_addr(&bars->tile_empty[s]));
  return index;
}

// A [128, kD] tile at row `row` of (head h, batch b): one TMA box per 64-column slab.
template <class T>
__device__ __forceinline__ void tma_tile(uint32_t dst, const CUtensorMap* map, uint32_t bar,
                                         int row, int h, int b) {
#pragma unroll
  for (int i = 0; i < T::kBoxes; ++i) {
    tma_load_4d(dst + i * T::kBoxBytes, map, bar, i * T::kBoxCols, row, h, b);
  }
}

// The producer thread. K/V block `it` (counted over all of this CTA's tiles) goes to stage
// it % kStages once the consumers have released that stage's previous use; a tile's Q once
// they are done with the previous tile's (after its last S). FP8: the block's key biases go
// with K, and (kStagedMeta) its first key, K scale and (shift, wide) into the stage's float4,
// loaded before the wait for the stage so that their latency is off the consumers' path.
template <class T>
__device__ __forceinline__ void produce(const FwdParams& p, const CUtensorMap* tq,
                                        const CUtensorMap* tk, const CUtensorMap* tv,
                                        uint32_t sq, uint32_t sk, uint32_t sv, uint32_t sb,
                                        float4* meta, Barriers<T::kStages>* bars) {
  constexpr int kS = T::kStages;
  const auto bar = [](uint64_t& x) { return smem_addr(&x); };
  const uint32_t q_full = bar(bars->q_full), q_empty = bar(bars->q_empty);
  int it = 0;
  for (int j = 0;; ++j) {
    const int index = next_tile_producer(p, bars, j);
    if (index < 0) break;
    const Tile tile = load_tile(p, index);
    const auto load_q = [&] {
      if (j > 0) mbar_wait(q_empty, (j - 1) & 1);
      mbar_arrive_expect_tx(q_full, T::kQBytes);
      tma_tile<T>(sq, tq, q_full, tile.q0, tile.h, tile.b);
    };
    if (tile.walk.n_blocks == 0) load_q();
    for (int t = 0; t < tile.walk.n_blocks; ++t, ++it) {
      const int s = it % kS;
      const uint32_t parity = ((it / kS) & 1) ^ 1;  // the previous use's release
      const int key0 = key_start(p, tile, t);
      float4 m;  // kStagedMeta: the stage's (key0, K scale, shift, wide), loaded before the wait
      if constexpr (T::kFp8 && T::kStagedMeta) {
        const int64_t kb = tile.bh * p.block_rows + key0 / 128;
        const float2 shift = __ldg(reinterpret_cast<const float2*>(p.fp8.k_block_shift) + kb);
        m = make_float4(__int_as_float(key0), __ldg(p.fp8.k_scale + kb), shift.x, shift.y);
      }
      if (it >= kS) mbar_wait(bar(bars->k_empty[s]), parity);
      if constexpr (T::kFp8 && T::kStagedMeta) {  // (k_full's arrive releases it)
        asm volatile("st.shared.v4.f32 [%0], {%1, %2, %3, %4};\n" ::"r"(smem_addr(meta + s)),
                     "f"(m.x), "f"(m.y), "f"(m.z), "f"(m.w)
                     : "memory");
      }
      mbar_arrive_expect_tx(bar(bars->k_full[s]), T::kTileBytes + T::kBiasBytes);
      tma_tile<T>(sk + s * T::kTileBytes, tk, bar(bars->k_full[s]), key0, tile.h, tile.b);
      if constexpr (T::kFp8) {  // the block's key biases (FwdParams::fp8.k_bias) with K
        bulk_load(sb + s * T::kBiasBytes,
                  p.fp8.k_bias + tile.bh * p.fp8.padded_seq + key0, T::kBiasBytes,
                  bar(bars->k_full[s]));
      }
      if (t == 0) load_q();
      if (it >= kS) mbar_wait(bar(bars->v_empty[s]), parity);
      mbar_arrive_expect_tx(bar(bars->v_full[s]), T::kVtBytes);
      if constexpr (T::kFp8) {  // V^T: one box of kD rows by the block's 128 keys
        tma_load_4d(sv + s * T::kVtBytes, tv, bar(bars->v_full[s]), key0, 0, tile.h, tile.b);
      } else {
        tma_tile<T>(sv + s * T::kTileBytes, tv, bar(bars->v_full[s]), key0, tile.h, tile.b);
      }
    }
  }
}

// The FP8 kernel with three consumer warpgroups (fwd_fp8_wg3.cuh, included by its instantiation).
template <class T>
__device__ void produce_wg3(const FwdParams& p, const CUtensorMap* tq, const CUtensorMap* tk,
                            const CUtensorMap* tv, uint32_t sq, uint32_t sk, uint32_t sv,
                            uint32_t sb, float4* meta, Barriers<T::kStages>* bars);
template <class T>
__device__ void consume_fp8_wg3(const FwdParams& p, typename T::Element* q_smem,
                                typename T::Element* k_smem, typename T::Element* v_smem,
                                const float* bias_smem, const float4* meta,
                                Barriers<T::kStages>* bars);

// The two consumer warpgroups (threads 128..383).
template <class T, HopperSchedule kSchedule>
__device__ __forceinline__ void consume(const FwdParams& p, typename T::Element* q_smem,
                                        typename T::Element* k_smem,
                                        typename T::Element* v_smem,
                                        Barriers<T::kStages>* bars) {
  using Element = typename T::Element;
  constexpr int kS = T::kStages;
  constexpr bool kPingpong = kSchedule == HopperSchedule::pingpong;
  constexpr bool kQRegs = kSchedule == HopperSchedule::q_registers;
  const auto bar = [](uint64_t& x) { return smem_addr(&x); };
  const uint32_t q_full = bar(bars->q_full), q_empty = bar(bars->q_empty);
  const int tid = static_cast<int>(threadIdx.x) - 128;  // 0..255 over the consumers
  const int wg = tid >> 7;
  const int lane = tid & 31;

  Tensor sQ = make_tensor(make_smem_ptr(q_smem), typename T::SmemLayoutQ{});
  Tensor sK = make_tensor(make_smem_ptr(k_smem), typename T::SmemLayoutKV{});
  Tensor sVt = make_tensor(make_smem_ptr(v_smem), typename T::SmemLayoutVt{});
  std::conditional_t<kQRegs, typename T::MmaQKrs, typename T::MmaQK> mma_qk;
  typename T::MmaPV mma_pv;
  auto thr_qk = mma_qk.get_thread_slice(tid);
  auto thr_pv = mma_pv.get_thread_slice(tid);
  Tensor tSrQ = thr_qk.partition_fragment_A(sQ);
  Tensor tSrK = thr_qk.partition_fragment_B(sK);
  Tensor tOrVt = thr_pv.partition_fragment_B(sVt);
  Tensor tSrS = partition_fragment_C(mma_qk, Shape<typename T::BM, typename T::BN>{});
  Tensor tOrO = partition_fragment_C(mma_pv, Shape<typename T::BM, typename T::HD>{});
  Tensor tOrP =
      make_tensor<Element>(partition_shape_A(mma_pv, Shape<typename T::BM, typename T::BN>{}));
  static_assert(size(tSrS) == 64 && size(tOrP) == 64 && size(tOrO) == T::kD / 2,
                "fragment sizes");

  // Pingpong: warpgroup w waits for its turn on mbarrier turn[w] (the k-th wait, phase k) and,
  // once its S is done, passes the turn to the other (128 arrivals complete a phase).
  // Warpgroup 1 opens. (Named barriers would be the usual tool, but with one anywhere in the
  // consumer path ptxas 13.0 spills and serialises the wgmma, C7512.)
  uint32_t turns = 0;
  const auto turn_wait = [&] {
    if constexpr (kPingpong) mbar_wait(bar(bars->turn[wg]), turns++ & 1);
  };
  const auto turn_pass = [&] {
    if constexpr (kPingpong) mbar_arrive(bar(bars->turn[wg ^ 1]));
  };
  if constexpr (kPingpong) {
    if (wg == 1) mbar_arrive(bar(bars->turn[0]));
  }

  int it = 0;  // K/V blocks consumed so far, over all tiles
  for (int j = 0;; ++j) {
    const int index = next_tile_consumer(p, bars, j);
    if (index < 0) break;
    const Tile tile = load_tile(p, index);
    const int n = tile.walk.n_blocks;
    clear(tOrO);
    float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.f, 0.f}, alpha[2];
    mbar_wait(q_full, j & 1);
    if constexpr (kQRegs) {  // Q into registers once; its shared memory is free again
      load_q_registers<Element>(mma_qk, sQ, tSrQ, tid);
      mbar_arrive(q_empty);
    } else if (n == 0) {
      mbar_arrive(q_empty);
    }

    if constexpr (kSchedule == HopperSchedule::serial) {
      for (int t = 0; t < n; ++t) {
        const int s = (it + t) % kS;
        const uint32_t parity = ((it + t) / kS) & 1;
        mbar_wait(bar(bars->k_full[s]), parity);
        wg_issue<true>(mma_qk, tSrQ, tSrK(_, _, _, s), tSrS);
        warpgroup_wait<0>();
        warpgroup_fence_operand(tSrS);
        if (t == n - 1 && !kQRegs) mbar_arrive(q_empty);
        mbar_arrive(bar(bars->k_empty[s]));
        online_softmax(tSrS, key_start(p, tile, t), p.key_limit, p.scale_log2, row_max,
                       row_sum, alpha, lane);
        rescale(tOrO, alpha);
        convert(tSrS, tOrP);
        mbar_wait(bar(bars->v_full[s]), parity);
        wg_issue<false>(mma_pv, tOrP, tOrVt(_, _, _, s), tOrO);
        warpgroup_wait<0>();
        warpgroup_fence_operand(tOrO);
        mbar_arrive(bar(bars->v_empty[s]));
      }
    } else if (n > 0) {
      {  // block 0: S only
        const int s = it % kS;
        mbar_wait(bar(bars->k_full[s]), (it / kS) & 1);
        turn_wait();
        wg_issue<true>(mma_qk, tSrQ, tSrK(_, _, _, s), tSrS);
        warpgroup_wait<0>();
        warpgroup_fence_operand(tSrS);
        turn_pass();
        if (n == 1 && !kQRegs) mbar_arrive(q_empty);
        mbar_arrive(bar(bars->k_empty[s]));
        online_softmax(tSrS, key_start(p, tile, 0), p.key_limit, p.scale_log2, row_max,
                       row_sum, alpha, lane);
        convert(tSrS, tOrP);
      }
      for (int t = 1; t < n; ++t) {
        const int s = (it + t) % kS, sp = (it + t - 1) % kS;
        mbar_wait(bar(bars->k_full[s]), ((it + t) / kS) & 1);
        mbar_wait(bar(bars->v_full[sp]), ((it + t - 1) / kS) & 1);
        turn_wait();
        wg_issue<true>(mma_qk, tSrQ, tSrK(_, _, _, s), tSrS);
        wg_issue<false>(mma_pv, tOrP, tOrVt(_, _, _, sp), tOrO);
        warpgroup_wait<1>();
        warpgroup_fence_operand(tSrS);
        turn_pass();
        if (t == n - 1 && !kQRegs) mbar_arrive(q_empty);
        mbar_arrive(bar(bars->k_empty[s]));
        online_softmax(tSrS, key_start(p, tile, t), p.key_limit, p.scale_log2, row_max,
                       row_sum, alpha, lane);
        if constexpr (T::kLateWait) end_block(row_sum[0]);
        warpgroup_wait<0>();
        warpgroup_fence_operand(tOrO);
        warpgroup_fence_operand(tOrP);
        mbar_arrive(bar(bars->v_empty[sp]));
        rescale(tOrO, alpha);
        convert(tSrS, tOrP);
      }
      const int sp = (it + n - 1) % kS;  // the last block's P V
      mbar_wait(bar(bars->v_full[sp]), ((it + n - 1) / kS) & 1);
      wg_issue<false>(mma_pv, tOrP, tOrVt(_, _, _, sp), tOrO);
      warpgroup_wait<0>();
      warpgroup_fence_operand(tOrO);
      mbar_arrive(bar(bars->v_empty[sp]));
    }
    it += n;
    Element* og = static_cast<Element*>(p.out) + tile.b * p.o_sb + tile.h * p.o_sh;
    store_output(p, og, tOrO, row_max, row_sum, tile.q0, tid, lane, tile.bh);
  }
}

// The FP8 consumers (fwd_fp8_consumer.cuh, included by the FP8 instantiations).
template <class T>
__device__ void consume_fp8(const FwdParams& p, typename T::Element* q_smem,
                            typename T::Element* k_smem, typename T::Element* v_smem,
                            const float* bias_smem, const float4* meta,
                            Barriers<T::kStages>* bars);

template <class T, HopperSchedule kSchedule>
__global__ void __launch_bounds__(T::kThreads, 1)
    fwd_hopper_kernel(const FwdParams p, const __grid_constant__ CUtensorMap tq,
                      const __grid_constant__ CUtensorMap tk,
                      const __grid_constant__ CUtensorMap tv) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using Element = typename T::Element;
  constexpr int kS = T::kStages;
  extern __shared__ unsigned char smem_raw[];
  unsigned char* base = reinterpret_cast<unsigned char*>(
      (reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~static_cast<uintptr_t>(1023));
  Element* q_smem = reinterpret_cast<Element*>(base);
  Element* k_smem = q_smem + T::kBM * T::kD;
  Element* v_smem = k_smem + kS * T::kBN * T::kD;
  float* bias_smem = reinterpret_cast<float*>(reinterpret_cast<unsigned char*>(v_smem) +
                                              kS * T::kVtBytes + T::kPBytes);
  auto* meta = reinterpret_cast<float4*>(reinterpret_cast<unsigned char*>(bias_smem) +
                                         kS * T::kBiasBytes);
  auto* bars = reinterpret_cast<Barriers<kS>*>(reinterpret_cast<unsigned char*>(meta) +
                                               kS * T::kMetaBytes);

  if (threadIdx.x == 0) {
    mbar_init(smem_addr(&bars->q_full), 1);
    mbar_init(smem_addr(&bars->q_empty), T::kConsumers);
    mbar_init(smem_addr(&bars->turn[0]), 128);
    mbar_init(smem_addr(&bars->turn[1]), 128);
    for (int s = 0; s < 2; ++s) {
      mbar_init(smem_addr(&bars->tile_full[s]), 1);
      mbar_init(smem_addr(&bars->tile_empty[s]), T::kConsumers);
    }
    for (int s = 0; s < kS; ++s) {
      mbar_init(smem_addr(&bars->k_full[s]), 1);
      mbar_init(smem_addr(&bars->v_full[s]), 1);
      mbar_init(smem_addr(&bars->k_empty[s]), T::kConsumers);
      mbar_init(smem_addr(&bars->v_empty[s]), T::kConsumers);
    }
    mbar_init_fence();
  }
  __syncthreads();

  if (threadIdx.x < 128) {
    regs_decrease<T::kProducerRegs>();
    if (threadIdx.x == 0) {
      if constexpr (T::kWg3) {
        produce_wg3<T>(p, &tq, &tk, &tv, smem_addr(q_smem), smem_addr(k_smem),
                       smem_addr(v_smem), smem_addr(bias_smem), meta, bars);
      } else {
        produce<T>(p, &tq, &tk, &tv, smem_addr(q_smem), smem_addr(k_smem), smem_addr(v_smem),
                   smem_addr(bias_smem), meta, bars);
      }
    }
  } else {
    // bf16: 128 x 40 + 256 x 232 = 64512 of the 65536 registers
    regs_increase<T::kConsumerRegs>();
    if constexpr (T::kWg3) {
      consume_fp8_wg3<T>(p, q_smem, k_smem, v_smem, bias_smem, meta, bars);
    } else if constexpr (T::kFp8) {
      consume_fp8<T>(p, q_smem, k_smem, v_smem, bias_smem, meta, bars);
    } else {
      consume<T, kSchedule>(p, q_smem, k_smem, v_smem, bars);
    }
  }
#endif
}

// Builds the tensor maps and launches `ctas` CTAs (one per tile, or persistent).
template <class T, HopperSchedule kSchedule>
void launch(const FwdParams& p, int ctas, cudaStream_t stream) {
  TensorMaps maps;
  if constexpr (T::kFp8) {
    maps = make_fp8_tensor_maps(p, T::kD, T::kVtRows, T::kWg3 ? 64 : 128);
  } else {
    maps = make_tensor_maps(p, T::kD, std::is_same_v<typename T::Element, cutlass::half_t>);
  }
  const auto kernel = fwd_hopper_kernel<T, kSchedule>;
  constexpr int kSmem = smem_bytes<T>();
  RADIAL_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
  if constexpr (T::kWg3) {  // one CTA per kBM-row tile (its own count; no persistent hand-out)
    ctas = static_cast<int>(p.batch_heads * (p.seq / T::kBM + (p.seq % T::kBM != 0)));
  }
  kernel<<<static_cast<unsigned>(ctas), T::kThreads, kSmem, stream>>>(p, maps.q, maps.k,
                                                                      maps.v);
  cuda_detail::check_cuda(cudaGetLastError(),
                          "fwd_hopper_kernel<<<...>>> (launch of the Hopper kernel)");
}

}  // namespace radial::cuda_detail::hopper
