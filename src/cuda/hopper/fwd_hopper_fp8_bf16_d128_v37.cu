// The FP8 kernel, bf16 output, head dim 128, comparison variant 37 (Fp8Traits::kVariant
// kFp8Library | kFp8Wg3): round 8's library, whose block loop ptxas could not prove
// warp-uniform (descriptors moved by R2UR); built with RADIAL_ABLATION_KERNELS, picked by the
// choice variant=fp8_wg3_round8.
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v37(const FwdParams& p, int ctas, cudaStream_t stream) {
  using T = hopper::Fp8Traits<cutlass::bfloat16_t, 128, hopper::kFp8Library | hopper::kFp8Wg3>;
  hopper::launch<T, kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
