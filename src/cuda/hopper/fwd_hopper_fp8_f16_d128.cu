// The FP8 (e4m3) Hopper kernel with f16 output, head dim 128.
#include "cuda/hopper/fwd_fp8_consumer.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_f16_d128(const FwdParams& p, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Fp8Traits<cutlass::half_t, 128>, kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
