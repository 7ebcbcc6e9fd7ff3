// The FP8 kernel, bf16 output, head dim 128, comparison variant 52: round 17's candidate, the
// library with P's e4m3 bits straight from the exponents (Fp8Traits::kLinExp,
// fwd_fp8_s_f16.cuh's softmax_lin_h: no exponentials; blocks with extreme or far scores keep
// them); built with RADIAL_ABLATION_KERNELS, picked by the choice variant=fp8_wg3_lin_exp.
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v52(const FwdParams& p, int ctas, cudaStream_t stream) {
  using T = hopper::Fp8Traits<cutlass::bfloat16_t, 128, hopper::kFp8Round17D128>;
  hopper::launch<T, kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
