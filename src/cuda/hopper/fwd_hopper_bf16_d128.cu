// The Hopper kernel for bf16, head dim 128, with the library's schedule.
#include "cuda/hopper/fwd_hopper_kernel.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_bf16_d128(const FwdParams& p, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Traits<cutlass::bfloat16_t, 128>, kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
