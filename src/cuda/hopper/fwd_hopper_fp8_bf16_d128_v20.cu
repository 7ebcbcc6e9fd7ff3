// The FP8 kernel, bf16 output, head dim 128, comparison variant 20 (Fp8Traits::kVariant 1216:
// the library's with half of the exponentials (every second n-tile's) by exp2_poly on the FMA
// pipe; built with RADIAL_ABLATION_KERNELS, picked by the choice variant=fp8_poly_exp_half).
#include "cuda/hopper/fwd_fp8_consumer.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v20(const FwdParams& p, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Fp8Traits<cutlass::bfloat16_t, 128, 1216>, kDefaultHopperSchedule>(
      p, ctas, stream);
}

}  // namespace radial::cuda_detail
