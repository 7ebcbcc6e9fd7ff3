// The FP8 kernel, bf16 output, head dim 128, comparison variant 18 (Fp8Traits::kVariant 448:
// the library's with two key blocks a step, fwd_fp8_pairs.cuh; built with
// RADIAL_ABLATION_KERNELS, picked by the choice variant=fp8_pairs).
#include "cuda/hopper/fwd_fp8_consumer.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v18(const FwdParams& p, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Fp8Traits<cutlass::bfloat16_t, 128, 448>, kDefaultHopperSchedule>(
      p, ctas, stream);
}

}  // namespace radial::cuda_detail
