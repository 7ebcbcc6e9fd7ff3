// The FP8 kernel, bf16 output, head dim 128, comparison variant 26 (Fp8Traits::kVariant 53440:
// the library's head-dim-128 kernel with P V as one product, fwd_fp8_wg3.cuh; built with
// RADIAL_ABLATION_KERNELS, picked by the choice variant=fp8_wg3_whole_pv).
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v26(const FwdParams& p, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Fp8Traits<cutlass::bfloat16_t, 128, 53440>, kDefaultHopperSchedule>(
      p, ctas, stream);
}

}  // namespace radial::cuda_detail
