// The FP8 kernel, bf16 output, head dim 128, comparison variant 51: round 12's library with two
// kept key blocks a step (Fp8Traits::kPairStep, round 16: one row maximum and rescale for both, P V
// of both into one accumulator added to O in fp32 once a step; the pass's shifts on the whole
// exp2 grid); built with RADIAL_ABLATION_KERNELS, picked by the choice
// variant=fp8_wg3_pair_step.
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v51(const FwdParams& p, int ctas, cudaStream_t stream) {
  constexpr int kBits = hopper::kFp8Round12D128 | hopper::kFp8PairStep;
  using T = hopper::Fp8Traits<cutlass::bfloat16_t, 128, kBits>;
  hopper::launch<T, kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
