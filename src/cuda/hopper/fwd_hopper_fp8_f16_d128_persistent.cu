// The FP8 (e4m3) Hopper kernel with f16 output, head dim 128, for persistent CTAs (the
// kernel choice's persistent=on): two consumer warpgroups on 128-row tiles
// (fwd_fp8_consumer.cuh), which take their tiles from the counter in the plan's hand-out order.
#include "cuda/hopper/fwd_fp8_consumer.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_f16_d128_persistent(const FwdParams& p, int ctas,
                                               cudaStream_t stream) {
  hopper::launch<hopper::Fp8Traits<cutlass::half_t, 128>, kDefaultHopperSchedule>(p, ctas,
                                                                                  stream);
}

}  // namespace radial::cuda_detail
