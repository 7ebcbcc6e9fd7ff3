// The FP8 kernel, bf16 output, head dim 128, comparison variant 15 (Fp8Traits::kVariant 192:
// the key bias in V, row sums by the tensor cores; built with RADIAL_ABLATION_KERNELS, picked by the choice variant=fp8_bias_in_v_sum_tensor).
#include "cuda/hopper/fwd_fp8_consumer.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v15(const FwdParams& p, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Fp8Traits<cutlass::bfloat16_t, 128, 192>, kDefaultHopperSchedule>(
      p, ctas, stream);
}

}  // namespace radial::cuda_detail
