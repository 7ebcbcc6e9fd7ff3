// The FP8 kernel, bf16 output, head dim 128, comparison variant 4 (Fp8Traits::kVariant 4: O = O x
// alpha(t-1) + P V(t-1), one FFMA per entry; built with RADIAL_ABLATION_KERNELS, picked by the
// choice variant=fp8_fma_o).
#include "cuda/hopper/fwd_fp8_consumer.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v4(const FwdParams& p, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Fp8Traits<cutlass::bfloat16_t, 128, 4>, kDefaultHopperSchedule>(
      p, ctas, stream);
}

}  // namespace radial::cuda_detail
