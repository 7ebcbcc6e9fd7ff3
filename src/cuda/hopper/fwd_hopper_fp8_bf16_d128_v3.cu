// The FP8 kernel, bf16 output, head dim 128, comparison variant 3 (Fp8Traits::kVariant: both;
// built with RADIAL_ABLATION_KERNELS, picked by the choice variant=fp8_no_key_bias_direct_o).
#include "cuda/hopper/fwd_fp8_consumer.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v3(const FwdParams& p, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Fp8Traits<cutlass::bfloat16_t, 128, 3>, kDefaultHopperSchedule>(
      p, ctas, stream);
}

}  // namespace radial::cuda_detail
