// The FP8 (e4m3) Hopper kernel with bf16 output, head dim 128: three consumer warpgroups on
// 192-row tiles (fwd_fp8_wg3.cuh), one CTA per tile.
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128(const FwdParams& p, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Fp8Traits<cutlass::bfloat16_t, 128, hopper::kFp8LibraryD128>,
                 kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
