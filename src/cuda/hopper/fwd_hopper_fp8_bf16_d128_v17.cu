// The FP8 kernel, bf16 output, head dim 128, comparison variant 17 (Fp8Traits::kVariant 0:
// the key bias added to every score: round 3's library kernel; built with
// RADIAL_ABLATION_KERNELS, picked by the choice variant=fp8_key_bias).
#include "cuda/hopper/fwd_fp8_consumer.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v17(const FwdParams& p, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Fp8Traits<cutlass::bfloat16_t, 128, 0>, kDefaultHopperSchedule>(
      p, ctas, stream);
}

}  // namespace radial::cuda_detail
