// The Hopper kernel for bf16, head dim 64: the library's schedule only (the dispatcher checks).
#include "cuda/hopper/fwd_hopper_kernel.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_bf16_d64(const FwdParams& p, HopperSchedule, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Traits<cutlass::bfloat16_t, 64>, kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
