// The FP8 kernel, bf16 output, head dim 128, comparison variant 30 (Fp8Traits::kVariant
// kFp8Round10D128 | 32768 | 131072): P V as one product, the three warpgroups issuing their
// products in turn, the second one turn late (Fp8Traits::kRing); built with
// RADIAL_ABLATION_KERNELS, picked by the choice variant=fp8_wg3_ring.
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v30(const FwdParams& p, int ctas, cudaStream_t stream) {
  using T = hopper::Fp8Traits<cutlass::bfloat16_t, 128, hopper::kFp8Round10D128 | 32768 | 131072>;
  hopper::launch<T, kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
