// The FP8 kernel, bf16 output, head dim 128, comparison variant 41 (Fp8Traits::kVariant
// kFp8Round9D128 | kFp8UniformLoop): round 9's library with round 10's uniform block counter but
// its one maximum chain a row half, to tell the two changes apart; built with
// RADIAL_ABLATION_KERNELS, picked by the choice variant=fp8_wg3_round9_uniform_loop.
// (Variant 40, fp8_wg3_spec_max, was timed at 6094bf2 and removed: HOPPER_NOTES round 10.)
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v41(const FwdParams& p, int ctas, cudaStream_t stream) {
  using T = hopper::Fp8Traits<cutlass::bfloat16_t, 128,
                              hopper::kFp8Round9D128 | hopper::kFp8UniformLoop>;
  hopper::launch<T, kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
