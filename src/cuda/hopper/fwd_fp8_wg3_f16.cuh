// The three-warpgroup FP8 consumers with S in f16 (Fp8Traits::kSF16, round 11; the library's at
// head dim 128), with fwd_fp8_wg3.cuh's tiles, producer and epilogue (it includes this file at
// its end, and its consume_fp8_wg3 calls these).
//
// Why: the softmax on f16 pairs takes half the CUDA-core instructions of the fp32 path for the
// row maxima and the exponents' arguments, and S needs 32 registers instead of 64
// (bench/gpu/HOPPER_NOTES.md, round 11: 1.026-1.036x round 10's kernel on an H200). Comparison
// variants use the freed registers to issue the next kept block's S under this block's P V
// (kLookahead: P V in thirds, P in registers; kSsP: P in shared memory, P V in SS halves), if
// the next block is this warpgroup's; both were slower (0.80-0.91x), and the library's loop
// issues each S after the previous block's P V. Round 16's kPairStep (two key blocks a step, P V
// of both summed in one accumulator before the fp32 add into O) was 1.003-1.022x the library's
// and is a comparison variant only: the library adds each block's P V to O in fp32. Since round
// 17 the library's P comes from softmax_lin_h (kLinExp: no exponentials, 1.09-1.11x).
#pragma once

#include <climits>
#include <type_traits>

#include "cuda/hopper/fwd_fp8_s_f16.cuh"

namespace radial::cuda_detail::hopper {

// Two products into one accumulator as one group, the first zeroing it: a1 b1 + a2 b2
// (Fp8Traits::kPairStep: P V of a step's two key blocks).
template <class Mma, class TA, class TB, class TC>
__device__ __forceinline__ void wg_issue_two(Mma& mma, TA& a1, TB const& b1, TA& a2, TB const& b2,
                                             TC& c) {
  warpgroup_fence_operand(a1);
  warpgroup_fence_operand(a2);
  warpgroup_fence_operand(c);
  warpgroup_arrive();
  mma.accumulate_ = GMMA::ScaleOut::Zero;
  CUTE_UNROLL
  for (int k = 0; k < size<2>(a1); ++k) {
    cute::gemm(mma, a1(_, _, k), b1(_, _, k), c);
    mma.accumulate_ = GMMA::ScaleOut::One;
  }
  CUTE_UNROLL
  for (int k = 0; k < size<2>(a2); ++k) cute::gemm(mma, a2(_, _, k), b2(_, _, k), c);
  warpgroup_commit_batch();
}

template <class T>
__device__ void consume_fp8_wg3_f16(const FwdParams& p, typename T::Element* q_smem,
                                    typename T::Element* k_smem, typename T::Element* v_smem,
                                    const float* bias_smem, const float4* meta,
                                    Barriers<T::kStages>* bars) {
  using Element = typename T::Element;
  constexpr uint32_t kS = T::kStages;
  const auto bar = [](uint64_t& x) { return smem_addr(&x); };
  const uint32_t q_full = bar(bars->q_full), q_empty = bar(bars->q_empty);
  const int tid = static_cast<int>(threadIdx.x) - 128;  // 0..383 over the consumers
  // (warp votes: values ptxas knows to be the same in all lanes; fwd_fp8_wg3.cuh's kUniform)
  const auto uniform = [](bool x) { return __any_sync(0xffffffffu, x) != 0; };
  const int wg = uniform(tid & 128) | uniform(tid & 256) << 1;
  const int lane = tid & 31;

  Tensor sQ = make_tensor(make_smem_ptr(q_smem), typename T::SmemLayoutQ{});
  Tensor sK = make_tensor(make_smem_ptr(k_smem), typename T::SmemLayoutKV{});
  typename T::MmaQK16 mma_qk;
  typename T::MmaPV mma_pv;  // (O's fragment: the head dim and the row sums' columns)
  typename T::MmaPVa mma_pva;
  typename T::MmaPVb mma_pvb;
  auto thr_qk = mma_qk.get_thread_slice(wg * 128);
  auto thr_pva = mma_pva.get_thread_slice(wg * 128);
  auto thr_pvb = mma_pvb.get_thread_slice(wg * 128);
  Tensor tSrQ = thr_qk.partition_fragment_A(sQ);
  Tensor tSrK = thr_qk.partition_fragment_B(sK);
  Tensor tSrS = partition_fragment_C(mma_qk, Shape<typename T::BM, typename T::BN>{});
  Tensor rS = recast<uint32_t>(tSrS);  // f16 pairs: register i is n-tile i / 2, row half i % 2
  // (kPairStep: the step's second block's S and P)
  Tensor tSrS2 = partition_fragment_C(mma_qk, Shape<typename T::BM, typename T::BN>{});
  Tensor rS2 = recast<uint32_t>(tSrS2);
  Tensor tOrO = partition_fragment_C(mma_pv, Shape<typename T::BM, typename T::HDV>{});
  Tensor tOrOa = partition_fragment_C(mma_pva, Shape<typename T::BM, _64>{});
  Tensor tOrOb = partition_fragment_C(mma_pvb, Shape<typename T::BM, Int<T::kVtRows - 64>>{});
  Tensor tOrP =
      make_tensor<Element>(partition_shape_A(mma_pva, Shape<typename T::BM, typename T::BN>{}));
  Tensor tOrP2 = make_tensor<Element>(layout(tOrP));
  static_assert(size(tSrS) == 64 && size(rS) == 32 && size(tOrP) == 64 &&
                    size(tOrOa) + size(tOrOb) == size(tOrO),
                "fragment sizes");
  // (kLookahead: V^T's rows 0-47, 48-95, 96-135)
  typename T::MmaPV48 mma_pv48;
  typename T::MmaPV40 mma_pv40;
  auto thr_pv48 = mma_pv48.get_thread_slice(wg * 128);
  auto thr_pv40 = mma_pv40.get_thread_slice(wg * 128);
  Tensor tOr48 = partition_fragment_C(mma_pv48, Shape<typename T::BM, _48>{});
  Tensor tOr40 = partition_fragment_C(mma_pv40, Shape<typename T::BM, _40>{});
  static_assert(size(tOr48) == 24 && size(tOr40) == 20 && 48 + 48 + 40 == T::kVtRows, "thirds");
  // (kSsP: P from shared memory, kPBytes before the key biases, and SS halves of P V)
  auto* p_smem = reinterpret_cast<Element*>(
      reinterpret_cast<unsigned char*>(const_cast<float*>(bias_smem)) - T::kPBytes);
  Tensor sP = make_tensor(make_smem_ptr(p_smem), typename T::SmemLayoutP{});
  typename T::MmaPVaSS mma_pva_ss;
  typename T::MmaPVbSS mma_pvb_ss;
  auto thr_pva_ss = mma_pva_ss.get_thread_slice(wg * 128);
  auto thr_pvb_ss = mma_pvb_ss.get_thread_slice(wg * 128);
  Tensor tPa = thr_pva_ss.partition_fragment_A(sP);
  Tensor tPb = thr_pvb_ss.partition_fragment_A(sP);
  // V^T's parts of stage s: rows 0-63 and 64-135 (RS or SS slices), or 0-47, 48-95 and 96-135
  const auto vt_a = [&](const auto& thr, uint32_t s) {
    return vt_rows<T, typename T::SmemLayoutVtA>(thr, v_smem, s, 0);
  };
  const auto vt_b = [&](const auto& thr, uint32_t s) {
    return vt_rows<T, typename T::SmemLayoutVtB>(thr, v_smem, s, 64);
  };
  const auto vt_48 = [&](uint32_t s, int row0) {
    return vt_rows<T, typename T::SmemLayoutVt48>(thr_pv48, v_smem, s, row0);
  };
  const auto vt_40 = [&](uint32_t s) {
    return vt_rows<T, typename T::SmemLayoutVt40>(thr_pv40, v_smem, s, 96);
  };

  const float inv_scale_log2 = 1.f / p.scale_log2;
  uint32_t it = 0;  // K/V blocks of the merged lists so far, over all tiles
  for (int j = 0;; ++j) {
    const int index = next_tile_consumer(p, bars, j);
    if (uniform(index < 0)) break;
    const Wg3Tile tile = load_wg3_tile(p, index);
    const int my_q = min((tile.q0 + 64 * wg) / 128, p.block_rows - 1);
    const int my_bit = my_q == tile.qa ? kWg3KeptByA : kWg3KeptByB;
    bool more = uniform(__ldg(p.row_offset + tile.qa + 1) > __ldg(p.row_offset + tile.qa) ||
                        __ldg(p.row_offset + tile.qb + 1) > __ldg(p.row_offset + tile.qb));
    const float q_scale = __ldg(p.fp8.q_scale + tile.bh * p.block_rows + my_q);
    clear(tOrO);
    float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.f, 0.f}, alpha[2];
    mbar_wait(q_full, j & 1);
    // From block `it` on, below `limit`: waits for each K stage, releases the blocks that are not
    // this warpgroup's, and issues the S of the first that is, block `cur` (false: none before
    // the limit or the list's end; every call passes UINT_MAX since the look-ahead takes only
    // the next block itself, left so because it is the code that was measured). Only `cur`
    // crosses the loop's back edge: the block's metadata is read again from its stage, which
    // stays this warpgroup's until it releases K.
    uint32_t cur = 0;
    // (into_s: the S registers; kEmpty: an empty group committed when no block is found, as a
    // step's search for its second block does, so that the step's waits are the same either way)
    const auto advance_into = [&](uint32_t limit, auto& into_s, auto empty) {
      while (more && it < limit) {
        const uint32_t s = it % kS, parity = (it / kS) & 1;
        mbar_wait(bar(bars->k_full[s]), parity);
        const int word = __float_as_int(meta[s].x);
        more = uniform((word & kWg3Last) == 0);
        cur = it++;
        if (uniform((word & my_bit) == 0)) {  // not this warpgroup's block: release both stages
          mbar_arrive(bar(bars->k_empty[s]));
          mbar_wait(bar(bars->v_full[s]), parity);
          mbar_arrive(bar(bars->v_empty[s]));
          continue;
        }
        wg_issue<true>(mma_qk, tSrQ, tSrK(_, _, _, s), into_s);
        return true;
      }
      if constexpr (decltype(empty)::value) warpgroup_commit_batch();
      return false;
    };
    const auto advance = [&](uint32_t limit) {
      return advance_into(limit, tSrS, std::false_type{});
    };
    // (Fp8Traits::kPairStep: a step's second block, its S into tSrS2)
    const auto advance2 = [&](uint32_t limit) {
      return advance_into(limit, tSrS2, std::true_type{});
    };
    // Fp8Traits::kPairStep (round 16, not the library's): two kept blocks a step where the
    // second is within the stage window (so that its stage can be filled while the first's is
    // held), S of both in flight together, one base and rescale for both (step_base_h), and P V
    // of both into one accumulator, added to O in fp32 once a step. A block with no partner in
    // the window runs as a step of one. The waits are the same on both paths (ptxas serialises
    // the wgmma around a wait in a branch): a step of one commits an empty group for the second
    // S and multiplies a zero P by its own V^T stage. (A lambda, instantiated only by the
    // variant: with the same loop written inline in the tile loop ptxas spilled 424/476 bytes
    // instead of 116/108.)
    const auto step_loop = [&](const auto& adv) {
      for (bool have = adv(UINT_MAX); have;) {
        const uint32_t c1 = cur;
        const bool two = advance2(c1 + kS);
        const uint32_t c2 = two ? cur : c1;
        const uint32_t s1 = c1 % kS, s2 = c2 % kS;
        float sc1 = q_scale * meta[s1].y, sh1 = meta[s1].z;
        warpgroup_wait<1>();
        warpgroup_fence_operand(tSrS);
        prepare_scores_h(rS, __float_as_int(meta[s1].x) & ~127, p.key_limit, lane, sc1, sh1,
                         uniform(meta[s1].w != 0.f), bias_smem + s1 * T::kBN);
        mbar_arrive(bar(bars->k_empty[s1]));
        float m1[2], m2[2] = {-INFINITY, -INFINITY};
        raw_row_max_h(rS, m1);
        m1[0] = fmaf(m1[0], sc1, sh1), m1[1] = fmaf(m1[1], sc1, sh1);
        float sc2 = sc1, sh2 = sh1;
        warpgroup_wait<0>();
        warpgroup_fence_operand(tSrS2);
        if (two) {
          sc2 = q_scale * meta[s2].y, sh2 = meta[s2].z;
          prepare_scores_h(rS2, __float_as_int(meta[s2].x) & ~127, p.key_limit, lane, sc2, sh2,
                           uniform(meta[s2].w != 0.f), bias_smem + s2 * T::kBN);
          mbar_arrive(bar(bars->k_empty[s2]));
          raw_row_max_h(rS2, m2);
          m2[0] = fmaf(m2[0], sc2, sh2), m2[1] = fmaf(m2[1], sc2, sh2);
        }
        __half2 nb1[2], nb2[2];
        step_base_h(m1, m2, p.scale_log2, inv_scale_log2, sh1, sh2, row_max, alpha, nb1, nb2);
        exp2_block_h<T::kPolyTiles>(rS, __float2half2_rn(fminf(p.scale_log2 * sc1, 65504.f)), nb1);
        convert_fp8_h(rS, tOrP);
        if (two) {
          exp2_block_h<T::kPolyTiles>(rS2, __float2half2_rn(fminf(p.scale_log2 * sc2, 65504.f)),
                                      nb2);
          convert_fp8_h(rS2, tOrP2);
        } else {
          clear(tOrP2);
        }
        mbar_wait(bar(bars->v_full[s1]), (c1 / kS) & 1);
        if (two) mbar_wait(bar(bars->v_full[s2]), (c2 / kS) & 1);
        // (P V in thirds of V^T's rows: with both P live beside O, halves spill 372 bytes)
        wg_issue_two(mma_pv48, tOrP, vt_48(s1, 0), tOrP2, vt_48(s2, 0), tOr48);
        warpgroup_wait<0>();
        warpgroup_fence_operand(tOr48);
        fma_into<0>(tOrO, tOr48, alpha);
        wg_issue_two(mma_pv48, tOrP, vt_48(s1, 48), tOrP2, vt_48(s2, 48), tOr48);
        warpgroup_wait<0>();
        warpgroup_fence_operand(tOr48);
        fma_into<24>(tOrO, tOr48, alpha);
        wg_issue_two(mma_pv40, tOrP, vt_40(s1), tOrP2, vt_40(s2), tOr40);
        warpgroup_wait<0>();
        warpgroup_fence_operand(tOr40);
        warpgroup_fence_operand(tOrP);
        warpgroup_fence_operand(tOrP2);
        mbar_arrive(bar(bars->v_empty[s1]));
        if (two) mbar_arrive(bar(bars->v_empty[s2]));
        fma_into<48>(tOrO, tOr40, alpha);
        have = adv(UINT_MAX);
      }
    };
    if constexpr (T::kPairStep) {
      step_loop(advance);
      warpgroup_wait<0>();
      mbar_arrive(q_empty);
      store_fp8_output<T>(p, tOrO, row_max, row_sum, tile.q0, tile.bh, tile.b, tile.h, tid, lane);
      continue;
    }
    for (bool have = advance(UINT_MAX); have;) {
      const uint32_t s = cur % kS, parity = (cur / kS) & 1;
      float4 m;
      asm volatile("ld.shared.v4.f32 {%0, %1, %2, %3}, [%4];\n"
                   : "=f"(m.x), "=f"(m.y), "=f"(m.z), "=f"(m.w)
                   : "r"(smem_addr(meta + s)));
      float s_scale = q_scale * m.y, s_shift = m.z;
      warpgroup_wait<0>();
      warpgroup_fence_operand(tSrS);
      prepare_scores_h(rS, __float_as_int(m.x) & ~127, p.key_limit, lane, s_scale, s_shift,
                       uniform(m.w != 0.f), bias_smem + s * T::kBN);
      mbar_arrive(bar(bars->k_empty[s]));
      float raw[2];
      raw_row_max_h(rS, raw);
      if constexpr (T::kLinExp) {
        softmax_lin_h<T::kPolyTiles>(rS, raw, p.scale_log2, inv_scale_log2, row_max, alpha,
                                     s_scale, s_shift, tOrP);
      } else {
        softmax_from_max_h<T::kPolyTiles>(rS, raw, p.scale_log2, inv_scale_log2, row_max, alpha,
                                          s_scale, s_shift);
      }
      if constexpr (T::kSsP) {  // P to shared memory, visible to the warpgroup's products
        store_p_smem(rS, sP, wg * 64 + (tid & 127) / 32 * 16 + lane / 4, (lane & 3) * 32);
        fence_proxy_async();
        asm volatile("bar.sync %0, 128;\n" ::"r"(1 + wg) : "memory");
      } else if constexpr (!T::kLinExp) {  // (kLinExp: P made by softmax_lin_h)
        convert_fp8_h(rS, tOrP);
      }
      mbar_wait(bar(bars->v_full[s]), parity);
      // The next block, if it is this warpgroup's (a block between is left to advance, after V's
      // release): its S, or an empty group, so that one wait serves both paths (ptxas serialises
      // the wgmma around a wait in a branch or in a look-ahead loop, C7514).
      const auto look_ahead = [&] {
        bool next = false;
        if (more) {
          const uint32_t s1 = it % kS;
          mbar_wait(bar(bars->k_full[s1]), (it / kS) & 1);
          const int word = __float_as_int(meta[s1].x);
          if (uniform((word & my_bit) != 0)) {
            more = uniform((word & kWg3Last) == 0);
            cur = it++;
            wg_issue<true>(mma_qk, tSrQ, tSrK(_, _, _, s1), tSrS);
            next = true;
          }
        }
        if (!next) warpgroup_commit_batch();
        return next;
      };
      bool next = false;
      if constexpr (T::kSsP) {  // (P V's halves, the next S behind the second on the tensor cores)
        wg_issue<true>(mma_pva_ss, tPa, vt_a(thr_pva_ss, s), tOrOa);
        warpgroup_wait<0>();
        warpgroup_fence_operand(tOrOa);
        fma_into<0>(tOrO, tOrOa, alpha);
        wg_issue<true>(mma_pvb_ss, tPb, vt_b(thr_pvb_ss, s), tOrOb);
        next = look_ahead();
        warpgroup_wait<1>();
        warpgroup_fence_operand(tOrOb);
        mbar_arrive(bar(bars->v_empty[s]));
        fma_into<32>(tOrO, tOrOb, alpha);
      } else if constexpr (T::kLookahead) {  // (P V's thirds; the next S beside one third's)
        wg_issue<true>(mma_pv48, tOrP, vt_48(s, 0), tOr48);
        next = look_ahead();
        warpgroup_wait<1>();
        warpgroup_fence_operand(tOr48);
        fma_into<0>(tOrO, tOr48, alpha);
        wg_issue<true>(mma_pv48, tOrP, vt_48(s, 48), tOr48);
        warpgroup_wait<0>();
        warpgroup_fence_operand(tOr48);
        fma_into<24>(tOrO, tOr48, alpha);
        wg_issue<true>(mma_pv40, tOrP, vt_40(s), tOr40);
        warpgroup_wait<0>();
        warpgroup_fence_operand(tOr40);
        warpgroup_fence_operand(tOrP);
        mbar_arrive(bar(bars->v_empty[s]));
        fma_into<48>(tOrO, tOr40, alpha);
      } else {
        wg_issue<true>(mma_pva, tOrP, vt_a(thr_pva, s), tOrOa);
        warpgroup_wait<0>();
        warpgroup_fence_operand(tOrOa);
        fma_into<0>(tOrO, tOrOa, alpha);
        wg_issue<true>(mma_pvb, tOrP, vt_b(thr_pvb, s), tOrOb);
        warpgroup_wait<0>();
        warpgroup_fence_operand(tOrOb);
        warpgroup_fence_operand(tOrP);
        mbar_arrive(bar(bars->v_empty[s]));
        // (kSLate: the tensor cores are idle now, so the next S runs under the adds below and the
        // loop's top instead of queueing behind a P V product as kLookahead's does)
        if constexpr (T::kSLate) next = look_ahead();
        fma_into<32>(tOrO, tOrOb, alpha);
      }
      have = next || advance(UINT_MAX);
    }
    warpgroup_wait<0>();  // (nothing in flight; without it ptxas serialises the wgmma, C7518)
    mbar_arrive(q_empty);
    store_fp8_output<T>(p, tOrO, row_max, row_sum, tile.q0, tile.bh, tile.b, tile.h, tid, lane);
  }
}

}  // namespace radial::cuda_detail::hopper
