// The Hopper kernel for f16, head dim 128: the library's schedule only.
#include "cuda/hopper/fwd_hopper_kernel.cuh"
#include "radial/error.hpp"

namespace radial::cuda_detail {

void launch_fwd_hopper_f16_d128(const FwdParams& p, HopperSchedule schedule, int ctas,
                                   cudaStream_t stream) {
  require(schedule == kDefaultHopperSchedule, "variant",
          "the default Hopper schedule (the others are built for bf16, head dim 128 only)",
          static_cast<int>(schedule));
  hopper::launch<hopper::Traits<cutlass::half_t, 128>, kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
