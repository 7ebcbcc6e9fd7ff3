// The FP8 kernel, bf16 output, head dim 128, comparison variant 15 (Fp8Traits::kVariant 196:
// the library's with fma_o; built with RADIAL_ABLATION_KERNELS, picked by the choice
// variant=fp8_bias_in_v_fma_o).
#include "cuda/hopper/fwd_fp8_consumer.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v15(const FwdParams& p, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Fp8Traits<cutlass::bfloat16_t, 128, 196>, kDefaultHopperSchedule>(
      p, ctas, stream);
}

}  // namespace radial::cuda_detail
