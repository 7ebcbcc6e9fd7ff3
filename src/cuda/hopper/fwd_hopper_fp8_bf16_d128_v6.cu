// The FP8 kernel, bf16 output, head dim 128, comparison variant 6 (Fp8Traits::kVariant 12: bits 4
// and 8; built with RADIAL_ABLATION_KERNELS, picked by the choice variant=fp8_fma_o_late_wait).
#include "cuda/hopper/fwd_fp8_consumer.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v6(const FwdParams& p, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Fp8Traits<cutlass::bfloat16_t, 128, 12>, kDefaultHopperSchedule>(
      p, ctas, stream);
}

}  // namespace radial::cuda_detail
