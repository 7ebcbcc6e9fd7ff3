// The FP8 kernel, bf16 output, head dim 128, comparison variant 33 (Fp8Traits::kVariant
// kFp8Round10D128 | 32768 | 131072 | 262144): fp8_wg3_ring without the late start: S, S, S, then
// the three P V (Fp8Traits::kRingConvoy); built with RADIAL_ABLATION_KERNELS, picked by the choice
// variant=fp8_wg3_ring_convoy.
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v33(const FwdParams& p, int ctas, cudaStream_t stream) {
  constexpr int kBits = hopper::kFp8Round10D128 | 32768 | 131072 | 262144;
  using T = hopper::Fp8Traits<cutlass::bfloat16_t, 128, kBits>;
  hopper::launch<T, kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
