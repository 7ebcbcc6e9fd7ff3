// The FP8 (e4m3) Hopper kernel with bf16 output, head dim 64.
#include "cuda/hopper/fwd_fp8_consumer.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d64(const FwdParams& p, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Fp8Traits<cutlass::bfloat16_t, 64>, kDefaultHopperSchedule>(p, ctas,
                                                                                     stream);
}

}  // namespace radial::cuda_detail
