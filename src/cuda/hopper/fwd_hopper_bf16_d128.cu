// The Hopper kernel for bf16, head dim 128: every schedule (the benchmark compares them).
#include "cuda/hopper/fwd_hopper_kernel.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_bf16_d128(const FwdParams& p, HopperSchedule schedule, int ctas,
                                   cudaStream_t stream) {
  using T = hopper::Traits<cutlass::bfloat16_t, 128>;
  switch (schedule) {
    case HopperSchedule::serial:
      return hopper::launch<T, HopperSchedule::serial>(p, ctas, stream);
    case HopperSchedule::overlap:
      return hopper::launch<T, HopperSchedule::overlap>(p, ctas, stream);
    case HopperSchedule::pingpong:
      return hopper::launch<T, HopperSchedule::pingpong>(p, ctas, stream);
    case HopperSchedule::overlap_q_registers:
      return hopper::launch<T, HopperSchedule::overlap_q_registers>(p, ctas, stream);
  }
}

}  // namespace radial::cuda_detail
