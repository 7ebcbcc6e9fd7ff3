// The FP8 kernel, bf16 output, head dim 128, comparison variant 27: the library's head-dim-128
// kernel (three consumer warpgroups, fwd_fp8_wg3.cuh) with five K/V stages instead of four
// (193 KB of shared memory); built with RADIAL_ABLATION_KERNELS, picked by the choice
// variant=fp8_wg3_five_stages.
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v27(const FwdParams& p, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Fp8Traits<cutlass::bfloat16_t, 128, hopper::kFp8Round10D128, 5>,
                 kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
