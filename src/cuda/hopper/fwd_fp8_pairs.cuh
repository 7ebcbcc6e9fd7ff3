// The FP8 consumers' pair schedule (Fp8Traits::kPairs, a comparison variant): each step takes
// two kept key blocks of the row's list (256 keys; any two, not only neighbours), so that the
// per-step costs (the row maxima's shuffles, the rescale of O and its fp32 add, the waits)
// come once per 256 keys instead of once per 128, as FlashAttention-3's FP8 kernel takes 224
// keys a step. Registers rule out the overlap schedule (two S blocks, O, the per-step P V
// accumulator and P would need 296 a thread): a warpgroup issues S for both blocks, runs the
// softmax over both, then P V for both into one zeroed accumulator, and adds it to O in fp32;
// the other warpgroup's products fill the tensor cores meanwhile. An odd last block goes alone
// (its partner's scores set to -inf). The key bias: kBiasInV's shift per block, or score by
// score for wide blocks, as the library's.
#pragma once

#include "cuda/hopper/fwd_fp8_common.cuh"

namespace radial::cuda_detail::hopper {

// The online softmax of two blocks' scores (kBiasInV's form, per block: raw products times c
// plus shift b), P in e4m3 out (p0, p1); row_max, alpha as online_softmax_shifted's. Block 0's
// probabilities are converted before block 1's exponentials, so that its scores die first.
template <class TS, class TP>
__device__ __forceinline__ void online_softmax_pair(TS& s0, TS& s1, TP& p0, TP& p1, int key0,
                                                    int key1, int key_limit, float scale_log2,
                                                    float (&row_max)[2], float (&alpha)[2],
                                                    int lane, float c0, float b0, float c1,
                                                    float b1) {
  constexpr int kNT = 16;
  mask_past_key_limit(s0, key0, key_limit, lane);
  mask_past_key_limit(s1, key1, key_limit, lane);
  float base0[2], base1[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    float m0 = -INFINITY, m1 = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt) {
      m0 = fmaxf(m0, fmaxf(s0(nt * 4 + half * 2), s0(nt * 4 + half * 2 + 1)));
      m1 = fmaxf(m1, fmaxf(s1(nt * 4 + half * 2), s1(nt * 4 + half * 2 + 1)));
    }
    // (Per thread first: the blocks' scales are the same for all the quad's threads.)
    const float m = fmaxf(row_max[half], quad_max(fmaxf(fmaf(m0, c0, b0), fmaf(m1, c1, b1))));
    const float base = softmax_base(m, scale_log2);
    alpha[half] = softmax_alpha(row_max[half], base, scale_log2);
    row_max[half] = m;
    base0[half] = base - kPLog2 - b0 * scale_log2;
    base1[half] = base - kPLog2 - b1 * scale_log2;
  }
  const float e0 = scale_log2 * c0, e1 = scale_log2 * c1;
#pragma unroll
  for (int i = 0; i < kNT * 4; ++i) s0(i) = softmax_exp(s0(i), e0, base0[(i >> 1) & 1]);
  convert_fp8(s0, p0);
#pragma unroll
  for (int i = 0; i < kNT * 4; ++i) s1(i) = softmax_exp(s1(i), e1, base1[(i >> 1) & 1]);
  convert_fp8(s1, p1);
}

}  // namespace radial::cuda_detail::hopper
