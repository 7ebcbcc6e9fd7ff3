// The FP8 kernel, bf16 output, head dim 128, comparison variant 46: round 11's library (S in
// f16) with half of the exponentials (n-tiles 1 and 3 of every four) by exp2_poly_h2 on f16
// pairs instead of MUFU (Fp8Traits bit 1024 on kSF16, round 12); built with
// RADIAL_ABLATION_KERNELS, picked by the choice variant=fp8_wg3_f16_poly_half.
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v46(const FwdParams& p, int ctas, cudaStream_t stream) {
  constexpr int kBits = hopper::kFp8Round11D128 | hopper::kFp8PolyHalf;
  using T = hopper::Fp8Traits<cutlass::bfloat16_t, 128, kBits>;
  hopper::launch<T, kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
