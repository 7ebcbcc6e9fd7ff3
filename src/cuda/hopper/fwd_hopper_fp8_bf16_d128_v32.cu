// The FP8 kernel, bf16 output, head dim 128, comparison variant 32 (Fp8Traits::kVariant
// kFp8Round10D128 | 524288): S as two 64-key products, the first half's row maxima taken while the
// second runs (Fp8Traits::kSHalves); built with RADIAL_ABLATION_KERNELS, picked by the choice
// variant=fp8_wg3_s_halves.
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v32(const FwdParams& p, int ctas, cudaStream_t stream) {
  using T = hopper::Fp8Traits<cutlass::bfloat16_t, 128, hopper::kFp8Round10D128 | 524288>;
  hopper::launch<T, kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
