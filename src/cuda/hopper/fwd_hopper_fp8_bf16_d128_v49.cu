// The FP8 kernel, bf16 output, head dim 128, comparison variant 49: round 11's library (S in f16)
// with three eighths of the exponentials (n-tiles 3, 5 and 7 of every eight) by exp2_poly_h2 on f16
// pairs instead of MUFU (Fp8Traits bit 1073741824 on kSF16, round 12); built with
// RADIAL_ABLATION_KERNELS, picked by the choice variant=fp8_wg3_f16_poly_three_eighths.
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v49(const FwdParams& p, int ctas, cudaStream_t stream) {
  constexpr int kBits = hopper::kFp8Round11D128 | hopper::kFp8PolyThreeEighths;
  using T = hopper::Fp8Traits<cutlass::bfloat16_t, 128, kBits>;
  hopper::launch<T, kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
