// The FP8 kernel, bf16 output, head dim 128, comparison variant 25 (Fp8Traits::kVariant 4288,
// kFp8Library: round 6's library kernel, two consumer warpgroups on 128-row tiles, one CTA per
// tile; built with RADIAL_ABLATION_KERNELS, picked by the choice variant=fp8_two_warpgroups).
#include "cuda/hopper/fwd_fp8_consumer.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v25(const FwdParams& p, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Fp8Traits<cutlass::bfloat16_t, 128, hopper::kFp8Library>,
                 kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
