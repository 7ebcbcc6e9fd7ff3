// The Hopper kernel for bf16, head dim 128, with the serial schedule (for the benchmark).
#include "cuda/hopper/fwd_hopper_kernel.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_bf16_d128_serial(const FwdParams& p, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Traits<cutlass::bfloat16_t, 128>, HopperSchedule::serial>(p, ctas,
                                                                                    stream);
}

}  // namespace radial::cuda_detail
