// The FP8 kernel, bf16 output, head dim 128, comparison variant 11 (Fp8Traits::kVariant 60: bits 4,
// 8, 16 and 32: round 3 with the key biases by 16-byte loads; built with RADIAL_ABLATION_KERNELS,
// picked by the choice variant=fp8_round3_bias_vec).
#include "cuda/hopper/fwd_fp8_consumer.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v11(const FwdParams& p, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Fp8Traits<cutlass::bfloat16_t, 128, 60>, kDefaultHopperSchedule>(
      p, ctas, stream);
}

}  // namespace radial::cuda_detail
