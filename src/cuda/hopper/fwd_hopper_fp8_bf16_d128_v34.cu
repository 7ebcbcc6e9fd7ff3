// The FP8 kernel, bf16 output, head dim 128, comparison variant 34 (Fp8Traits::kVariant
// kFp8Round10D128 | 1048576): the second P V half issued before the first half's add into O
// (Fp8Traits::kPvOverlap); built with RADIAL_ABLATION_KERNELS, picked by the choice
// variant=fp8_wg3_pv_overlap.
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v34(const FwdParams& p, int ctas, cudaStream_t stream) {
  using T = hopper::Fp8Traits<cutlass::bfloat16_t, 128, hopper::kFp8Round10D128 | 1048576>;
  hopper::launch<T, kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
