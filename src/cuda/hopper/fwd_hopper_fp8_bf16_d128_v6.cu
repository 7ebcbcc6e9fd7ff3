// The FP8 kernel, bf16 output, head dim 128, comparison variant 6
// (Fp8Traits::kVariant: that and P V straight into O; built with RADIAL_ABLATION_KERNELS, picked by RADIAL_FP8_VARIANT=6).
#include "cuda/hopper/fwd_fp8_consumer.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v6(const FwdParams& p, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Fp8Traits<cutlass::bfloat16_t, 128, 6>, kDefaultHopperSchedule>(
      p, ctas, stream);
}

}  // namespace radial::cuda_detail
