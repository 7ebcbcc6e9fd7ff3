// The FP8 kernel, bf16 output, head dim 128, comparison variant 28 (Fp8Traits::kVariant 21184):
// the library's head-dim-128 kernel (three consumer warpgroups, fwd_fp8_wg3.cuh) with every
// fourth n-tile's exponentials on the FMA pipe (exp2_poly, round 5's fp8_poly_exp_quarter);
// built with RADIAL_ABLATION_KERNELS, picked by the choice variant=fp8_wg3_poly_exp_quarter.
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v28(const FwdParams& p, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Fp8Traits<cutlass::bfloat16_t, 128, 21184>, kDefaultHopperSchedule>(
      p, ctas, stream);
}

}  // namespace radial::cuda_detail
