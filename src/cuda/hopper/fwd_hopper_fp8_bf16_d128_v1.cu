// The FP8 kernel, bf16 output, head dim 128, comparison variant 1 (Fp8Traits::kVariant: no key
// bias; built with RADIAL_ABLATION_KERNELS, picked by the choice variant=fp8_no_key_bias).
#include "cuda/hopper/fwd_fp8_consumer.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v1(const FwdParams& p, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Fp8Traits<cutlass::bfloat16_t, 128, 1>, kDefaultHopperSchedule>(
      p, ctas, stream);
}

}  // namespace radial::cuda_detail
