// The order of V^T's keys for the FP8 P V product, shared by the quantisation pass (which
// writes V^T so) and the kernel (whose P registers follow it; fwd_fp8_common.cuh).
#pragma once

namespace radial::cuda_detail::hopper {

// The key that position p (0..15) of each group of 16 in V^T holds. The 8-bit A fragment gives
// thread t of a quad the k positions 4t..4t+3 (and 16 + those), while the fp32 accumulator
// gives it keys 2t, 2t+1, 8+2t, 9+2t (and 16 + those); so P goes into the A registers as it
// lies in the accumulator, and V^T's keys follow the same order.
__host__ __device__ constexpr int fp8_vt_key(int p) {
  return 8 * ((p & 3) >> 1) + 2 * (p >> 2) + (p & 1);
}

// Where key k (0..15) of a group goes in V^T (the inverse of fp8_vt_key).
__host__ __device__ constexpr int fp8_vt_position(int k) {
  return 4 * ((k & 7) >> 1) + 2 * (k >> 3) + (k & 1);
}

static_assert(fp8_vt_position(fp8_vt_key(5)) == 5 && fp8_vt_position(fp8_vt_key(14)) == 14 &&
                  fp8_vt_key(4) == 2 && fp8_vt_key(2) == 8,
              "fp8_vt_position inverts fp8_vt_key");

}  // namespace radial::cuda_detail::hopper
