// The FP8 kernel's scores in f16 (Fp8Traits::kSF16, round 11): Q K^T by the e4m3 wgmma with an
// f16 accumulator, 32 registers a thread instead of 64, and the softmax on f16 pairs (HMNMX2 for
// the row maxima, HFMA2 for the exponents' arguments, ex2.approx.f16x2, e4m3 pairs from f16
// pairs), half the CUDA-core instructions of the fp32 path for the maxima and the arguments.
// Round 12's library took a quarter of the exponentials by exp2_poly_h2 instead of MUFU (n-tiles
// 3 and 7 of every eight): 1.1-3.6% on an H200. Since round 17 the library's makes no
// exponentials: softmax_lin_h writes P's e4m3 bits from the exponents (Fp8Traits::kLinExp).
//
// Why it is exact enough: the pass quantises Q and K to at most kFp8SF16Top in e4m3 units
// (fwd_fp8_layout.hpp), so a score's products sum to at most 128 x 22^2 < 65504 in any order:
// the accumulator cannot overflow. f16 keeps 11 bits of a raw score, against e4m3's 4 of each
// operand. The block's exponent offset is rounded up to an f16 number and the row's maximum moved
// to what that offset says, so that alpha and the log-sum-exp describe the P the block gets
// exactly (bench/gpu/fp8_sim.py, scheme s_f16: DiT-like rel. L2 0.0237 against 0.0229). The
// f16 multipliers (s_scale x scale_log2, or s_scale for a wide block) may be subnormal or zero
// for inputs of tiny magnitude: since a raw entry is at most 61952, that costs at most
// 61952 x 2^-25 < 0.002 in an exponent. They and the exponent offsets are clamped to f16's
// range: past it (scores beyond 65504 exp2 units, where e4m3's rounding of Q and K alone errs
// by hundreds of units) the results are wrong but finite, as the fp32 path's are there.
#pragma once

#include <cuda_fp16.h>

#include "cuda/hopper/fwd_fp8_common.cuh"

namespace radial::cuda_detail::hopper {

__device__ __forceinline__ __half2 as_h2(uint32_t u) {
  __half2 h;
  memcpy(&h, &u, 4);
  return h;
}
__device__ __forceinline__ uint32_t as_u32(__half2 h) {
  uint32_t u;
  memcpy(&u, &h, 4);
  return u;
}

// exp2 of both halves (two MUFU.EX2.F16).
__device__ __forceinline__ uint32_t ex2_h2(uint32_t x) {
  uint32_t y;
  asm("ex2.approx.f16x2 %0, %1;\n" : "=r"(y) : "r"(x));
  return y;
}

// exp2 of both halves without MUFU (the n-tiles of Fp8Traits::kPolyTiles, round 12), for
// c = relu(x + kPolyOffset), x the exponent as ex2_h2 would take it: six instructions for two
// exponentials against two MUFU and a PRMT. c x 2^-24 rounds to the subnormal whose bits are
// k = round(c) (0..20); f = c - k in [-0.5, 0.5]; a degree-2 polynomial, its coefficients
// scaled by 2^-kPolyOffset (p(0) = 1 exactly, relative error 2.1e-3), gives 2^(f - kPolyOffset),
// a normal f16 number, whose exponent field takes k by an integer add (both halves in one
// 32-bit add: k x 1024 carries no bits across the halves). Clamped entries (c = 0, x at most
// -kPolyOffset) give 2^-12, below half e4m3's smallest subnormal, so zero in P, as ex2_h2's
// results there. c's f16 rounding (2^-6 at c >= 16) adds at most 0.54% to an entry's error
// (e4m3's own step is 6-12%).
constexpr float kPolyOffset = 12.f;
__device__ __forceinline__ uint32_t exp2_poly_h2(__half2 c) {
  const __half2 tiny = __half2half2(__ushort_as_half(0x0001));  // 2^-24
  const __half2 t = __hmul2(c, tiny);                            // bits: round(c)
  const __half2 u = __hmul2(t, __half2half2(__ushort_as_half(0x6c00)));   // k x 2^-12
  const __half2 f = __hfma2(u, __half2half2(__ushort_as_half(0xec00)), c);  // c - k (-4096)
  const __half2 q = __hfma2(f, __half2half2(__ushort_as_half(0x03d8)),      // 0.24013 x 2^-12
                            __half2half2(__ushort_as_half(0x09a0)));       // 0.70333 x 2^-12
  const __half2 p = __hfma2(q, f, __half2half2(__ushort_as_half(0x0c00)));  // 2^-12
  return as_u32(t) * 1024u + as_u32(p);
}

// The entries of a 128-key block at key_limit and past it to -inf (f16 S; cold: the last block).
template <class TR>
__device__ __forceinline__ void mask_past_key_limit_h(TR& r, int key0, int key_limit, int lane) {
  if (__any_sync(0xffffffffu, crosses_key_limit(key0, 128, key_limit))) {
#pragma unroll
    for (int i = 0; i < 32; ++i) {  // register i: n-tile i / 2, row half i % 2, both columns
      const int k = fragment_key(key0, i >> 1, 0, lane);
      __half2 h = as_h2(r(i));
      if (k >= key_limit) h.x = __float2half(-INFINITY);
      if (k + 1 >= key_limit) h.y = __float2half(-INFINITY);
      r(i) = as_u32(h);
    }
  }
}

// Each row's largest raw entry over its quad, both row halves at once: two HMNMX2 chains a row
// half (even and odd n-tiles), the two halves' candidates folded into one pair, two shuffles.
template <class TR>
__device__ __forceinline__ void raw_row_max_h(const TR& r, float (&m)[2]) {
  __half2 x[2][2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    x[half][0] = as_h2(r(half)), x[half][1] = as_h2(r(2 + half));
#pragma unroll
    for (int nt = 2; nt < 16; ++nt) {
      x[half][nt & 1] = __hmax2(x[half][nt & 1], as_h2(r(2 * nt + half)));
    }
  }
  const __half2 a = __hmax2(x[0][0], x[0][1]), b = __hmax2(x[1][0], x[1][1]);
  __half2 y = __hmax2(__lows2half2(a, b), __highs2half2(a, b));  // (row half 0, row half 1)
  y = __hmax2(y, as_h2(__shfl_xor_sync(0xffffffffu, as_u32(y), 1)));
  y = __hmax2(y, as_h2(__shfl_xor_sync(0xffffffffu, as_u32(y), 2)));
  const float2 f = __half22float2(y);
  m[0] = f.x, m[1] = f.y;
}

// A wide block's scores: raw x s_scale + the key's bias, in f16 (the biases from shared memory).
template <class TR>
__device__ __forceinline__ void dequantise_h(TR& r, const float* bias, float s_scale, int lane) {
  const __half2 sc = __float2half2_rn(fminf(s_scale, 65504.f));
#pragma unroll
  for (int nt = 0; nt < 16; ++nt) {
    float2 b;
    asm volatile("ld.shared.v2.f32 {%0, %1}, [%2];\n"
                 : "=f"(b.x), "=f"(b.y)
                 : "r"(smem_addr(bias + nt * 8 + (lane & 3) * 2)));
    const __half2 bh = __floats2half2_rn(b.x, b.y);
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      r(2 * nt + half) = as_u32(__hfma2(as_h2(r(2 * nt + half)), sc, bh));
    }
  }
}

// A block's exponentials exp2(raw x e + nb) in place (nb: the exponent offset of each row half),
// the n-tiles of kPolyTiles by exp2_poly_h2.
template <unsigned kPolyTiles, class TR>
__device__ __forceinline__ void exp2_block_h(TR& r, __half2 e, const __half2 (&nb)[2]) {
#pragma unroll
  for (int i = 0; i < 32; ++i) {  // register i: n-tile i / 2, row half i % 2
    if ((kPolyTiles >> ((i >> 1) % 8)) & 1) {
      const __half2 off = __float2half2_rn(kPolyOffset);  // (exact while |base| < 8192)
      r(i) = exp2_poly_h2(__hfma2_relu(as_h2(r(i)), e, __hadd2(nb[i & 1], off)));
    } else {
      r(i) = ex2_h2(as_u32(__hfma2(as_h2(r(i)), e, nb[i & 1])));
    }
  }
}

// softmax_from_max for f16 S (raw: each row half's quad maximum of the raw entries): the
// exponents exp2(raw x s_scale x scale_log2 - base) x 2^kPLog2 by HFMA2 and ex2.approx.f16x2,
// with base (the block's, s_shift included) rounded up to an f16 number; row_max becomes the
// maximum that the rounded base stands for (inv_scale_log2 = 1 / scale_log2).
// The exponentials of the n-tiles nt with bit nt % 8 of kPolyTiles set by exp2_poly_h2 (on the
// FMA and ALU pipes instead of MUFU; Fp8Traits::kPolyTiles).
template <unsigned kPolyTiles = 0, class TR>
__device__ __forceinline__ void softmax_from_max_h(TR& r, const float (&raw)[2], float scale_log2,
                                                   float inv_scale_log2, float (&row_max)[2],
                                                   float (&alpha)[2], float s_scale,
                                                   float s_shift) {
  __half2 neg_base[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const float m = fmaxf(row_max[half], fmaf(raw[half], s_scale, s_shift));
    const float shift = kPLog2 + s_shift * scale_log2;
    // (clamped to f16's range: only rows whose largest score is beyond 65504 exp2 units get
    // there, where e4m3's rounding of Q and K alone is off by hundreds of units; they stay
    // finite)
    const __half b16 =
        __float2half_ru(fminf(fmaxf(softmax_base(m, scale_log2) - shift, -65504.f), 65504.f));
    const float base = __half2float(b16) + shift;  // >= m x scale_log2
    alpha[half] = softmax_alpha(row_max[half], base, scale_log2);
    row_max[half] = m == -INFINITY ? -INFINITY : base * inv_scale_log2;
    neg_base[half] = __half2half2(__hneg(b16));
  }
  exp2_block_h<kPolyTiles>(r, __float2half2_rn(fminf(scale_log2 * s_scale, 65504.f)), neg_base);
}

// A block's exponent offset from a step's base, shift - base (shift: kPLog2 plus the block's
// s_shift x scale_log2), as the f16 it is when both are whole numbers below 2048 apart (clamped
// to f16's range: finite past it).
__device__ __forceinline__ __half2 step_offset_h(float base, float shift) {
  return __half2half2(__float2half_rn(fminf(fmaxf(shift - base, -65504.f), 65504.f)));
}

// The base of a step of two blocks (Fp8Traits::kPairStep), a row half at a time from each
// block's largest score m1, m2 (score units; -inf for an absent second block): one base for
// both, the whole number of exp2 units at or next above both, so that each block's exponent
// offset from it (nb1, nb2: kPLog2 plus the block's s_shift x scale_log2, a whole number too by
// the pass's shift grid, less the base) is an exact f16 number while below 2048 exp2 units;
// alpha and row_max as softmax_from_max_h's. The exponentials are exp2_block_h's, a block at a
// time.
__device__ __forceinline__ void step_base_h(const float (&m1)[2], const float (&m2)[2],
                                            float scale_log2, float inv_scale_log2, float sh1,
                                            float sh2, float (&row_max)[2], float (&alpha)[2],
                                            __half2 (&nb1)[2], __half2 (&nb2)[2]) {
  const float shift1 = kPLog2 + rintf(sh1 * scale_log2), shift2 = kPLog2 + rintf(sh2 * scale_log2);
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const float m = fmaxf(row_max[half], fmaxf(m1[half], m2[half]));
    const float base = ceilf(softmax_base(m, scale_log2));  // (>= m x scale_log2)
    alpha[half] = softmax_alpha(row_max[half], base, scale_log2);
    row_max[half] = m == -INFINITY ? -INFINITY : base * inv_scale_log2;
    nb1[half] = step_offset_h(base, shift1);  // (P = exp2(score x scale_log2 - base) x 2^kPLog2)
    nb2[half] = step_offset_h(base, shift2);
  }
}

// An e4m3 pair from an f16 pair (one F2FP).
__device__ __forceinline__ uint32_t e4m3x2_h(uint32_t x) {
  return __nv_cvt_halfraw2_to_fp8x2(static_cast<__half2_raw>(as_h2(x)), __NV_SATFINITE,
                                    __NV_E4M3);
}

// P in e4m3 from the f16 probabilities, in convert_fp8's register order (entries b, b + 1 are
// f16 register b / 2).
template <class TR, class TP>
__device__ __forceinline__ void convert_fp8_h(const TR& r, TP& pf) {
  Tensor regs = recast<uint32_t>(pf);
#pragma unroll
  for (int ks = 0; ks < 4; ++ks) {
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const int i = 8 * ks + 4 * (q >> 1) + (q & 1);
      regs(ks * 4 + q) = e4m3x2_h(r(i)) | e4m3x2_h(r(i + 2)) << 16;
    }
  }
}

// P's e4m3 bits straight from the exponent (Fp8Traits::kLinExp, round 17), without an
// exponential: e4m3's bits read as an integer n are about 8 log2(x) + 56 (3 mantissa bits above a
// 4-bit exponent biased by 7), with the mantissa linear between powers of two. So
// n = round(8 x + kLinBias), x the exponent exp2_block_h would take, is P = 2^x within the
// linear interpolation's 0-6% (mean 4%, which kLinBias's half step below 56 takes to -0.4%),
// and the row sums, from the same e4m3 P by the tensor cores, match what P V sums, so that the
// interpolation's error is noise on each weight (relative spread 3.1% against e4m3 rounding's
// 2.6%): bench/gpu/fp8_sim.py, scheme s_f16_lin8, DiT-like rel. L2 0.0241 against 0.0240,
// Gaussians 0.058 against 0.054 (worst of 6 seeds). Two instructions a pair and a PRMT for four
// entries, against two MUFU, a PRMT and an F2FP a pair. x <= kPLog2 = 8 gives n <= 120 (256);
// x below -7 (P below 2^-15 of the row's largest) gives 0.
constexpr float kLinBias = 55.5f;
// Where n stays a finite e4m3 number: the multiplier's f16 rounding (at most 2^-11 of the raw
// score) moves x past 8 by at most kLinRawTop x 2^-11 = 0.5 (n <= 124; 127 is NaN, 128 on
// negative), and the offset kLinBias - 8 (base - shift) stays inside f16's range. Blocks of rows
// beyond that (scores of thousands of exp2 units, where e4m3's rounding of Q and K alone errs by
// tens) take the exponentials' path. So do blocks whose largest entry in some row is more than
// kLinBelowTop exp2 units below the row's maximum (P below 1 there): the interpolation has no
// subnormals (n < 8 stands for 0-7 x 2^-9, not 2^(n/8 - 7)), so entries below 2^-6 come out
// low or 0, and a row whose mass is spread over many such far blocks (long rows under an
// outlier key) lost up to 0.25 of its log-sum-exp (fp8_sim.py, DiT-like 4096-key rows; 0.10
// with this bound, with 97% of the row blocks still on this path).
constexpr float kLinRawTop = 1024.f, kLinBaseTop = 8000.f, kLinBelowTop = kPLog2;

// Two entries' e4m3 bits (the low bytes of the two halves) from f16 scores: relu(raw x e8 + c)
// is 8 x + kLinBias clamped at 0 (e8 = 8 e, c = kLinBias - 8 (base - shift)), and adding 1024
// rounds it to an integer (f16's step there is 1), which is then the low byte of its half. (A NaN
// stays NaN, whose low byte is e4m3's NaN.)
__device__ __forceinline__ uint32_t lin_e4m3_pair_h(uint32_t raw, __half2 e8, __half2 c) {
  return as_u32(__hadd2(__hfma2_relu(as_h2(raw), e8, c), __float2half2_rn(1024.f)));
}

// softmax_from_max_h and convert_fp8_h in one for Fp8Traits::kLinExp: the base (the block's,
// s_shift included) moved up to where kLinBias - 8 (base - shift) is an f16 number, row_max to
// what it says, and P's e4m3 bits by lin_e4m3_pair_h into pf (convert_fp8_h's register order).
// Blocks past kLinRawTop, kLinBaseTop or kLinBelowTop in any row of the warp, or with a NaN,
// take softmax_from_max_h and convert_fp8_h (a uniform branch).
template <unsigned kPolyTiles, class TR, class TP>
__device__ __forceinline__ void softmax_lin_h(TR& r, const float (&raw)[2], float scale_log2,
                                              float inv_scale_log2, float (&row_max)[2],
                                              float (&alpha)[2], float s_scale, float s_shift,
                                              TP& pf) {
  float m[2], shift[2], off[2];
  bool fits = true;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const float top = fmaf(raw[half], s_scale, s_shift);  // (the block's largest score)
    m[half] = fmaxf(row_max[half], top);
    shift[half] = kPLog2 + s_shift * scale_log2;
    off[half] = softmax_base(m[half], scale_log2) - shift[half];
    fits = fits && raw[half] * s_scale * scale_log2 <= kLinRawTop &&
           fabsf(off[half]) <= kLinBaseTop && (m[half] - top) * scale_log2 <= kLinBelowTop;
  }
  if (__any_sync(0xffffffffu, !fits)) {
    softmax_from_max_h<kPolyTiles>(r, raw, scale_log2, inv_scale_log2, row_max, alpha, s_scale,
                                   s_shift);
    convert_fp8_h(r, pf);
    return;
  }
  __half2 c[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const __half c16 = __float2half_rd(kLinBias - 8.f * off[half]);  // (so the base rounds up)
    const float base = (kLinBias - __half2float(c16)) * 0.125f + shift[half];  // >= m x sl2
    alpha[half] = softmax_alpha(row_max[half], base, scale_log2);
    row_max[half] = m[half] == -INFINITY ? -INFINITY : base * inv_scale_log2;
    c[half] = __half2half2(c16);
  }
  const __half2 e8 = __float2half2_rn(fminf(8.f * scale_log2 * s_scale, 65504.f));
  Tensor regs = recast<uint32_t>(pf);
#pragma unroll
  for (int ks = 0; ks < 4; ++ks) {
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const int i = 8 * ks + 4 * (q >> 1) + (q & 1);  // (row half q & 1, as i + 2)
      regs(ks * 4 + q) = __byte_perm(lin_e4m3_pair_h(r(i), e8, c[q & 1]),
                                     lin_e4m3_pair_h(r(i + 2), e8, c[q & 1]), 0x6420);
    }
  }
}

// P in e4m3 into shared memory (Fp8Traits::kSsP): this thread's 32 entries of each of its rows
// (row, and row + 8) as the 32 bytes from column col (V^T's keys in fp8_vt_position_ss's order),
// two 16-byte stores a row.
template <class TR, class TSP>
__device__ __forceinline__ void store_p_smem(const TR& r, TSP& sp, int row, int col) {
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    uint32_t w[8];  // bytes 4 m .. 4 m + 3: n-tiles 2 m and 2 m + 1, both columns
#pragma unroll
    for (int m = 0; m < 8; ++m) {
      w[m] = e4m3x2_h(r(4 * m + half)) | e4m3x2_h(r(4 * m + 2 + half)) << 16;
    }
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      asm volatile("st.shared.v4.b32 [%0], {%1, %2, %3, %4};\n" ::"r"(
                       smem_addr(&sp(row + 8 * half, col + 16 * c))),
                   "r"(w[4 * c]), "r"(w[4 * c + 1]), "r"(w[4 * c + 2]), "r"(w[4 * c + 3])
                   : "memory");
    }
  }
}

// A block's f16 S made ready for raw_row_max_h: past key_limit masked; a wide block's biases
// added score by score (they come from the K stage's shared memory, so this runs before the
// stage's release), s_scale and s_shift then 1 and 0.
template <class TR>
__device__ __forceinline__ void prepare_scores_h(TR& r, int key0, int key_limit, int lane,
                                                 float& s_scale, float& s_shift, bool wide,
                                                 const float* bias) {
  mask_past_key_limit_h(r, key0, key_limit, lane);
  if (wide) {
    dequantise_h(r, bias, s_scale, lane);
    s_scale = 1.f, s_shift = 0.f;
  }
}

}  // namespace radial::cuda_detail::hopper
