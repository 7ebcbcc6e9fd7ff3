// The FP8 kernel, bf16 output, head dim 128, comparison variant 38 (Fp8Traits::kVariant
// kFp8Round9D128): round 9's library, the row maxima by one chain a row half and the stage index
// by a vote a bit; built with RADIAL_ABLATION_KERNELS, picked by the choice
// variant=fp8_wg3_round9.
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v38(const FwdParams& p, int ctas, cudaStream_t stream) {
  using T = hopper::Fp8Traits<cutlass::bfloat16_t, 128, hopper::kFp8Round9D128>;
  hopper::launch<T, kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
