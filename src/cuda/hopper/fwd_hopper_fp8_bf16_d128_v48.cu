// The FP8 kernel, bf16 output, head dim 128, comparison variant 48: round 11's library (S in
// f16, every exponential by MUFU; kFp8Round11D128); built with RADIAL_ABLATION_KERNELS, picked by
// the choice variant=fp8_wg3_round11.
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v48(const FwdParams& p, int ctas, cudaStream_t stream) {
  using T = hopper::Fp8Traits<cutlass::bfloat16_t, 128, hopper::kFp8Round11D128>;
  hopper::launch<T, kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
