// The FP8 kernel, bf16 output, head dim 128, comparison variant 23 (Fp8Traits::kVariant 4288:
// the library's with each K stage's first key, K scale and shift staged in shared memory by the producer, and an unsigned block counter;
// built with RADIAL_ABLATION_KERNELS, picked by the choice variant=fp8_staged_meta).
#include "cuda/hopper/fwd_fp8_consumer.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v23(const FwdParams& p, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Fp8Traits<cutlass::bfloat16_t, 128, 4288>, kDefaultHopperSchedule>(
      p, ctas, stream);
}

}  // namespace radial::cuda_detail
