// The FP8 forward's consumer warpgroups (fwd_hopper_kernel.cuh runs them for Fp8Traits; the
// producer, the tile hand-out and the epilogue's stores are the bf16 kernel's).
//
// The overlap schedule with Q from shared memory: S(t) = Q K^T(t) (e4m3, fp32 accumulator)
// and P(t-1) V(t-1) issued together, the softmax of S(t) meant to run under P V (ptxas hoists
// the wait for P V above the exponentials unless Fp8Traits::kLateWait). The scores are scaled by
// q_scale x k_scale of the blocks, and Q's smoothing's key bias comes back either through V
// (the library's, kBiasInV: the block's largest bias added through the exponent, each key's V
// and the row sums' extra row of V^T weighted by the pass) or, for wide blocks and round 3's
// kernel, score by score (the biases, which the producer loads with K). P is quantised to e4m3
// in registers (times 2^kPLog2), and each block's P V goes to a zeroed accumulator that is
// added to O in fp32: the FP8 wgmma accumulates with fewer than fp32's bits, so a long row
// (thousands of keys) would otherwise lose precision. The epilogue applies V's per-channel
// scale and adds the smoothing's shift back to the log-sum-exp. Each block's first key, K scale
// and (shift, wide) come from the producer with the K stage (Fp8Traits::kStagedMeta, the
// library's), read once the stage is full; round 5's kernel loaded them from global memory.
#pragma once

#include "cuda/hopper/fwd_fp8_common.cuh"
#include "cuda/hopper/fwd_fp8_pairs.cuh"
#include "cuda/hopper/fwd_hopper_kernel.cuh"

namespace radial::cuda_detail::hopper {

// O = (O + Ot) x alpha per row.
template <class TO>
__device__ __forceinline__ void add_rescale(TO& o, const TO& ot, const float (&alpha)[2]) {
#pragma unroll
  for (int i = 0; i < size(o); ++i) o(i) = (o(i) + ot(i)) * alpha[(i >> 1) & 1];
}

template <class TO>
__device__ __forceinline__ void add(TO& o, const TO& ot) {
#pragma unroll
  for (int i = 0; i < size(o); ++i) o(i) += ot(i);
}

// O = O x alpha + Ot per row, one FFMA an entry (Fp8Traits::kFmaO: O then holds the blocks
// before the last under the maximum before the last, and alpha is the previous block's).
template <class TO>
__device__ __forceinline__ void fma_add(TO& o, const TO& ot, const float (&alpha)[2]) {
#pragma unroll
  for (int i = 0; i < size(o); ++i) o(i) = fmaf(o(i), alpha[(i >> 1) & 1], ot(i));
}

template <class T>
__device__ void consume_fp8(const FwdParams& p, typename T::Element* q_smem,
                            typename T::Element* k_smem, typename T::Element* v_smem,
                            const float* bias_smem, const float4* meta,
                            Barriers<T::kStages>* bars) {
  using Element = typename T::Element;
  constexpr int kS = T::kStages;
  const auto bar = [](uint64_t& x) { return smem_addr(&x); };
  const uint32_t q_full = bar(bars->q_full), q_empty = bar(bars->q_empty);
  const int tid = static_cast<int>(threadIdx.x) - 128;  // 0..255 over the consumers
  const int lane = tid & 31;

  Tensor sQ = make_tensor(make_smem_ptr(q_smem), typename T::SmemLayoutQ{});
  Tensor sK = make_tensor(make_smem_ptr(k_smem), typename T::SmemLayoutKV{});
  Tensor sVt = make_tensor(make_smem_ptr(v_smem), typename T::SmemLayoutVt{});
  std::conditional_t<T::kQRegs, typename T::MmaQKrs, typename T::MmaQK> mma_qk;
  typename T::MmaPV mma_pv;
  auto thr_qk = mma_qk.get_thread_slice(tid);
  auto thr_pv = mma_pv.get_thread_slice(tid);
  Tensor tSrQ = thr_qk.partition_fragment_A(sQ);
  Tensor tSrK = thr_qk.partition_fragment_B(sK);
  Tensor tOrVt = thr_pv.partition_fragment_B(sVt);
  Tensor tSrS = partition_fragment_C(mma_qk, Shape<typename T::BM, typename T::BN>{});
  Tensor tOrO = partition_fragment_C(mma_pv, Shape<typename T::BM, typename T::HDV>{});
  Tensor tOrOt = partition_fragment_C(mma_pv, Shape<typename T::BM, typename T::HDV>{});
  Tensor tOrP =
      make_tensor<Element>(partition_shape_A(mma_pv, Shape<typename T::BM, typename T::BN>{}));
  static_assert(size(tSrS) == 64 && size(tOrP) == 64 && size(tOrO) == T::kVtRows / 2,
                "fragment sizes");
  // kPairs: the second block's scores and P.
  Tensor tSrS1 = partition_fragment_C(mma_qk, Shape<typename T::BM, typename T::BN>{});
  Tensor tOrP1 =
      make_tensor<Element>(partition_shape_A(mma_pv, Shape<typename T::BM, typename T::BN>{}));

  // K/V blocks consumed so far, over all tiles (kStagedMeta: unsigned, so that the stage and
  // phase are a mask and a shift)
  std::conditional_t<T::kStagedMeta, uint32_t, int> it = 0;
  for (int j = 0;; ++j) {
    const int index = next_tile_consumer(p, bars, j);
    if (index < 0) break;
    const Tile tile = load_tile(p, index);
    const int n = tile.walk.n_blocks;
    const float* k_scale = p.fp8.k_scale + tile.bh * p.block_rows;
    const float q_scale = __ldg(p.fp8.q_scale + tile.bh * p.block_rows + tile.q0 / 128);
    clear(tOrO);
    float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.f, 0.f}, alpha[2];
    mbar_wait(q_full, j & 1);
    if constexpr (T::kQRegs) {  // Q into registers once; its shared memory is free again
      load_q_registers<Element>(mma_qk, sQ, tSrQ, tid);
      mbar_arrive(q_empty);
    } else if (n == 0) {
      mbar_arrive(q_empty);
    }

    if (n > 0) {
      // Block t's first key and its S dequantisation scale. kPrefetch: loaded ahead so that no
      // load is waited for before S is issued: block t+2's first key and block t+1's K scale
      // go out during block t (the K scale's address needs the key loaded a block earlier).
      int key0_next = 0, key0_after = 0;  // kPrefetch: blocks t+1 and t+2 (clamped to n-1)
      float k_scale_next = 0.f;            // kPrefetch: block t+1's
      if constexpr (T::kPrefetch) {
        key0_next = key_start(p, tile, 0);
        k_scale_next = __ldg(k_scale + key0_next / 128);
        key0_after = key_start(p, tile, min(1, n - 1));
      }
      const float2* k_shift =
          reinterpret_cast<const float2*>(p.fp8.k_block_shift) + tile.bh * p.block_rows;
      float2 shift = make_float2(0.f, 0.f);  // kBiasInV: the block's (shift, wide)
      const auto block_scale = [&](int t, int& key0, float& s_scale) {
        if constexpr (T::kStagedMeta) {
          // (the staged metadata is read after the stage's wait: staged_scale)
        } else if constexpr (T::kBiasInV) {
          static_assert(!T::kPrefetch, "kBiasInV loads the block's shift with its K scale");
          key0 = key_start(p, tile, t);
          s_scale = q_scale * __ldg(k_scale + key0 / 128);
          shift = __ldg(k_shift + key0 / 128);
        } else if constexpr (T::kPrefetch) {
          key0 = key0_next;
          s_scale = q_scale * k_scale_next;
          k_scale_next = __ldg(k_scale + key0_after / 128);
          key0_next = key0_after;
          key0_after = key_start(p, tile, min(t + 2, n - 1));
        } else {
          key0 = key_start(p, tile, t);
          s_scale = q_scale * __ldg(k_scale + key0 / 128);
        }
      };
      // kStagedMeta: stage s's metadata, after its k_full wait.
      const auto staged_scale = [&](int s, int& key0, float& s_scale) {
        if constexpr (T::kStagedMeta) {
          float4 m;
          asm volatile("ld.shared.v4.f32 {%0, %1, %2, %3}, [%4];\n"
                       : "=f"(m.x), "=f"(m.y), "=f"(m.z), "=f"(m.w)
                       : "r"(smem_addr(meta + s)));
          key0 = __float_as_int(m.x);
          s_scale = q_scale * m.y;
          shift = make_float2(m.z, m.w);
        }
      };
      // The block's softmax, then K's stage (with its key biases or weights) goes back.
      const auto softmax = [&](int s, int key0, float s_scale) {  // (s_scale: a copy)
        if constexpr (T::kBiasInV) {
          float s_shift = shift.x;
          if (shift.y != 0.f) {  // a wide block: its biases score by score, as round 3's
            dequantise(tSrS, bias_smem + s * T::kBN, s_scale, lane);
            s_scale = 1.f, s_shift = 0.f;
          }
          mbar_arrive(bar(bars->k_empty[s]));
          online_softmax_shifted<T::kPolyExp, T::kLazy>(tSrS, key0, p.key_limit, p.scale_log2,
                                                        row_max, alpha, lane, s_scale, s_shift);
        } else {
          mbar_arrive(bar(bars->k_empty[s]));
          online_softmax<true>(tSrS, key0, p.key_limit, p.scale_log2, row_max, row_sum, alpha,
                               lane, T::kKeyBias ? 1.f : s_scale, kPLog2);
        }
      };
      float alpha_prev[2];  // kFmaO: the previous block's alpha
      if constexpr (T::kPairs) {
        for (int t = 0; t < n; t += 2) {  // blocks t and t + 1 (if any)
          const bool two = t + 1 < n;
          const int s0 = (it + t) % kS, s1 = (it + t + 1) % kS;
          int key0, key1 = 0;  // (key1, c1, shift1: only read when two)
          float c0, c1 = 0.f;
          block_scale(t, key0, c0);
          float2 shift0 = shift, shift1 = make_float2(0.f, 0.f);
          if (two) {
            block_scale(t + 1, key1, c1);
            shift1 = shift;
          }
          mbar_wait(bar(bars->k_full[s0]), ((it + t) / kS) & 1);
          wg_issue<true>(mma_qk, tSrQ, tSrK(_, _, _, s0), tSrS);
          if (two) {
            mbar_wait(bar(bars->k_full[s1]), ((it + t + 1) / kS) & 1);
            wg_issue<true>(mma_qk, tSrQ, tSrK(_, _, _, s1), tSrS1);
          }
          warpgroup_wait<0>();
          warpgroup_fence_operand(tSrS);
          warpgroup_fence_operand(tSrS1);
          if (t + 2 >= n) mbar_arrive(q_empty);
          if (shift0.y != 0.f) {  // wide blocks: their biases score by score
            dequantise(tSrS, bias_smem + s0 * T::kBN, c0, lane);
            c0 = 1.f, shift0.x = 0.f;
          }
          if (two && shift1.y != 0.f) {
            dequantise(tSrS1, bias_smem + s1 * T::kBN, c1, lane);
            c1 = 1.f, shift1.x = 0.f;
          }
          mbar_arrive(bar(bars->k_empty[s0]));
          if (two) {
            mbar_arrive(bar(bars->k_empty[s1]));
          } else {
#pragma unroll
            for (int i = 0; i < size(tSrS1); ++i) tSrS1(i) = -INFINITY;
          }
          online_softmax_pair(tSrS, tSrS1, tOrP, tOrP1, key0, key1, p.key_limit, p.scale_log2,
                              row_max, alpha, lane, c0, shift0.x, c1, shift1.x);
          mbar_wait(bar(bars->v_full[s0]), ((it + t) / kS) & 1);
          // (Zeroed here, not by the product's scale-d: its operand constraints would keep the
          // last step's Ot live across the softmax, 68 registers more than fit.)
          clear(tOrOt);
          wg_issue<false>(mma_pv, tOrP, tOrVt(_, _, _, s0), tOrOt);
          if (two) {
            mbar_wait(bar(bars->v_full[s1]), ((it + t + 1) / kS) & 1);
            wg_issue<false>(mma_pv, tOrP1, tOrVt(_, _, _, s1), tOrOt);
          }
          warpgroup_wait<0>();
          warpgroup_fence_operand(tOrOt);
          warpgroup_fence_operand(tOrP);
          warpgroup_fence_operand(tOrP1);
          mbar_arrive(bar(bars->v_empty[s0]));
          if (two) mbar_arrive(bar(bars->v_empty[s1]));
          fma_add(tOrO, tOrOt, alpha);  // (Ot is under the current maximum: exact)
        }
      } else {
      {  // block 0: S only
        const int s = it % kS;
        int key0;
        float s_scale;
        block_scale(0, key0, s_scale);
        mbar_wait(bar(bars->k_full[s]), (it / kS) & 1);
        wg_issue<true>(mma_qk, tSrQ, tSrK(_, _, _, s), tSrS);
        staged_scale(s, key0, s_scale);
        warpgroup_wait<0>();
        warpgroup_fence_operand(tSrS);
        if (n == 1 && !T::kQRegs) mbar_arrive(q_empty);
        if constexpr (T::kKeyBias && T::kBiasVec) {
          dequantise_vec(tSrS, bias_smem + s * T::kBN, s_scale, lane);
        } else if constexpr (T::kKeyBias) {
          dequantise(tSrS, bias_smem + s * T::kBN, s_scale, lane);
        }
        softmax(s, key0, s_scale);
        alpha_prev[0] = alpha[0], alpha_prev[1] = alpha[1];
        convert_fp8(tSrS, tOrP);
      }
      for (int t = 1; t < n; ++t) {
        const int s = (it + t) % kS, sp = (it + t - 1) % kS;
        int key0;
        float s_scale;
        block_scale(t, key0, s_scale);
        mbar_wait(bar(bars->k_full[s]), ((it + t) / kS) & 1);
        mbar_wait(bar(bars->v_full[sp]), ((it + t - 1) / kS) & 1);
        wg_issue<true>(mma_qk, tSrQ, tSrK(_, _, _, s), tSrS);
        if constexpr (T::kAddPerBlock) {
          wg_issue<true>(mma_pv, tOrP, tOrVt(_, _, _, sp), tOrOt);
        } else {
          wg_issue<false>(mma_pv, tOrP, tOrVt(_, _, _, sp), tOrO);
        }
        staged_scale(s, key0, s_scale);
        warpgroup_wait<1>();
        warpgroup_fence_operand(tSrS);
        if (t == n - 1 && !T::kQRegs) mbar_arrive(q_empty);
        if constexpr (T::kKeyBias && T::kBiasVec) {
          dequantise_vec(tSrS, bias_smem + s * T::kBN, s_scale, lane);
        } else if constexpr (T::kKeyBias) {
          dequantise(tSrS, bias_smem + s * T::kBN, s_scale, lane);
        }
        softmax(s, key0, s_scale);
        // (With kSumTensor the FADDs of row_sum[0] then stay, and only row 0's exponentials are
        // kept above the wait: the other half may sink below the branch.)
        if constexpr (T::kLateWait) end_block(row_sum[0]);
        warpgroup_wait<0>();
        warpgroup_fence_operand(T::kAddPerBlock ? tOrOt : tOrO);
        warpgroup_fence_operand(tOrP);
        mbar_arrive(bar(bars->v_empty[sp]));
        if constexpr (T::kFmaO) {
          fma_add(tOrO, tOrOt, alpha_prev);
          alpha_prev[0] = alpha[0], alpha_prev[1] = alpha[1];
        } else if constexpr (T::kAddPerBlock) {
          if (T::kLazy && !__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) {
            add(tOrO, tOrOt);  // (no row of the warp moved its maximum)
          } else {
            add_rescale(tOrO, tOrOt, alpha);
          }
        } else {
          rescale(tOrO, alpha);
        }
        convert_fp8(tSrS, tOrP);
      }
      const int sp = (it + n - 1) % kS;  // the last block's P V
      mbar_wait(bar(bars->v_full[sp]), ((it + n - 1) / kS) & 1);
      if constexpr (T::kAddPerBlock) {
        wg_issue<true>(mma_pv, tOrP, tOrVt(_, _, _, sp), tOrOt);
      } else {
        wg_issue<false>(mma_pv, tOrP, tOrVt(_, _, _, sp), tOrO);
      }
      warpgroup_wait<0>();
      warpgroup_fence_operand(T::kAddPerBlock ? tOrOt : tOrO);
      mbar_arrive(bar(bars->v_empty[sp]));
      if constexpr (T::kFmaO) {
        fma_add(tOrO, tOrOt, alpha_prev);
      } else if constexpr (T::kAddPerBlock) {
        add(tOrO, tOrOt);
      }
      }  // (the pair schedule's else)
    }
    it += n;
    store_fp8_output<T>(p, tOrO, row_max, row_sum, tile.q0, tile.bh, tile.b, tile.h, tid, lane);
  }
}

}  // namespace radial::cuda_detail::hopper
