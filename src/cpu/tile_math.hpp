// The arithmetic the CPU kernels share (forward and backward): a register-tiled float matrix
// product and a vectorisable 2^x. Always inlined, so that each caller compiles them for the
// instruction set of its own target attribute (see isa.hpp).
#pragma once

#include <bit>
#include <cstdint>

namespace radial::cpu {

// 2^x in float, for x <= 0 (-inf gives 0 and NaN stays NaN). Plain arithmetic that
// vectorises, instead of a libm call per score. Relative error ~1e-7.
[[gnu::always_inline]] inline float exp2_nonpositive(float x) {
  const float clamped = x < -126.0f ? -126.0f : x;        // NaN passes through
  const float shifted = clamped + 0x1.8p23f;               // rounds to an integer n
  const float n = shifted - 0x1.8p23f;
  const float f = clamped - n;                             // in [-0.5, 0.5]
  // Taylor series of 2^f to degree 7: truncation error below 1e-8 on [-0.5, 0.5].
  float p = 1.5252734e-05f;                                // ln2^7 / 7!
  p = p * f + 1.5403530e-04f;
  p = p * f + 1.3333558e-03f;
  p = p * f + 9.6181291e-03f;
  p = p * f + 5.5504109e-02f;
  p = p * f + 2.4022651e-01f;
  p = p * f + 6.9314718e-01f;
  p = p * f + 1.0f;
  const uint32_t biased = std::bit_cast<uint32_t>(shifted) - std::bit_cast<uint32_t>(0x1.8p23f) + 127u;
  const float result = p * std::bit_cast<float>(biased << 23);
  return x < -126.0f ? 0.0f : result;
}

// C (m x n) = or += op(A) (m x k) * B (k x n), all row-major floats; op(A)[i][p] is a[i*lda+p],
// or a[p*lda+i] when kTransA. m % MR == 0 and n % NR == 0. The MR x NR accumulator block lives
// in registers; the widths are chosen per instruction set.
template <int MR, int NR, bool kTransA, bool kAccumulate>
[[gnu::always_inline]] inline void gemm(const float* __restrict a, int lda,
                                        const float* __restrict b, int ldb, float* __restrict c,
                                        int ldc, int m, int n, int k) {
  for (int i0 = 0; i0 < m; i0 += MR) {
    for (int j0 = 0; j0 < n; j0 += NR) {
      float acc[MR][NR];
      for (int r = 0; r < MR; ++r) {
        for (int j = 0; j < NR; ++j) acc[r][j] = kAccumulate ? c[(i0 + r) * ldc + j0 + j] : 0.0f;
      }
      for (int p = 0; p < k; ++p) {
        const float* brow = b + p * ldb + j0;
        for (int r = 0; r < MR; ++r) {
          const float x = kTransA ? a[p * lda + i0 + r] : a[(i0 + r) * lda + p];
          for (int j = 0; j < NR; ++j) acc[r][j] += x * brow[j];
        }
      }
      for (int r = 0; r < MR; ++r) {
        for (int j = 0; j < NR; ++j) c[(i0 + r) * ldc + j0 + j] = acc[r][j];
      }
    }
  }
}

}  // namespace radial::cpu
