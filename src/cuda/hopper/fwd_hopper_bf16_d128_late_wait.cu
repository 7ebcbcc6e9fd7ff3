// The Hopper kernel for bf16, head dim 128, the library's schedule with the wait for P V kept
// below the exponentials (Traits::kLateWait; built with RADIAL_ABLATION_KERNELS, picked by the
// choice variant=bf16_late_wait).
#include "cuda/hopper/fwd_hopper_kernel.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_bf16_d128_late_wait(const FwdParams& p, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Traits<cutlass::bfloat16_t, 128, 2, true>, kDefaultHopperSchedule>(
      p, ctas, stream);
}

}  // namespace radial::cuda_detail
