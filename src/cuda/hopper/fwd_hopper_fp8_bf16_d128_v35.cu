// The FP8 kernel, bf16 output, head dim 128, comparison variant 35 (Fp8Traits::kVariant
// kFp8Round10D128 | 32768 | 131072 | 524288): fp8_wg3_ring with S as fp8_wg3_s_halves' two products
// (one turn); built with RADIAL_ABLATION_KERNELS, picked by the choice
// variant=fp8_wg3_ring_s_halves.
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v35(const FwdParams& p, int ctas, cudaStream_t stream) {
  constexpr int kBits = hopper::kFp8Round10D128 | 32768 | 131072 | 524288;
  using T = hopper::Fp8Traits<cutlass::bfloat16_t, 128, kBits>;
  hopper::launch<T, kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
