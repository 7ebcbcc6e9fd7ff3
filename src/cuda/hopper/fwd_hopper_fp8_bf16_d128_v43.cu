// The FP8 kernel, bf16 output, head dim 128, comparison variant 43: the library (S in f16) with the
// next block's S issued under this block's P V (Fp8Traits::kLookahead; P V in thirds, P in
// registers: spills); built with RADIAL_ABLATION_KERNELS, picked by the choice
// variant=fp8_wg3_s_f16_lookahead.
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v43(const FwdParams& p, int ctas, cudaStream_t stream) {
  using T = hopper::Fp8Traits<cutlass::bfloat16_t, 128,
                              hopper::kFp8Round11D128 | hopper::kFp8Lookahead>;
  hopper::launch<T, kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
