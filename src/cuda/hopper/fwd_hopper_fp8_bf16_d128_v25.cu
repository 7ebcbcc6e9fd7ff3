// The FP8 kernel, bf16 output, head dim 128, comparison variant 25 (Fp8Traits::kVariant 20672:
// the library's with three consumer warpgroups on 192-row tiles, fwd_fp8_wg3.cuh; built with
// RADIAL_ABLATION_KERNELS, picked by the choice variant=fp8_three_warpgroups).
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v25(const FwdParams& p, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Fp8Traits<cutlass::bfloat16_t, 128, 20672>, kDefaultHopperSchedule>(
      p, ctas, stream);
}

}  // namespace radial::cuda_detail
