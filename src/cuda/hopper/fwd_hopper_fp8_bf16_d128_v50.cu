// The FP8 kernel, bf16 output, head dim 128, comparison variant 50: round 12's library with the
// next block's S (if it is this warpgroup's) issued once P V's second product is done, before
// that product's adds into O (Fp8Traits::kSLate, bit 2048 on kSF16, round 12); built with
// RADIAL_ABLATION_KERNELS, picked by the choice variant=fp8_wg3_f16_s_late.
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v50(const FwdParams& p, int ctas, cudaStream_t stream) {
  constexpr int kBits = hopper::kFp8Round12D128 | 2048;
  using T = hopper::Fp8Traits<cutlass::bfloat16_t, 128, kBits>;
  hopper::launch<T, kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
