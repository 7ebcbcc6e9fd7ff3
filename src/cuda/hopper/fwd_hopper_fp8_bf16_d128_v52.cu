// The FP8 kernel, bf16 output, head dim 128, comparison variant 52: round 12's library (rounds
// 12-16: the exponentials by MUFU, a quarter of them by exp2_poly_h2, P converted from f16 to
// e4m3), before round 17 took P's e4m3 bits straight from the exponent (Fp8Traits::kLinExp);
// built with RADIAL_ABLATION_KERNELS, picked by the choice variant=fp8_wg3_round12.
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v52(const FwdParams& p, int ctas, cudaStream_t stream) {
  using T = hopper::Fp8Traits<cutlass::bfloat16_t, 128, hopper::kFp8Round12D128>;
  hopper::launch<T, kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
