// The FP8 kernel, bf16 output, head dim 128, comparison variant 42 (Fp8Traits::kVariant
// kFp8Round10D128): round 10's library, S with an fp32 accumulator (fwd_fp8_wg3.cuh), to compare
// with round 11's S in f16; built with RADIAL_ABLATION_KERNELS, picked by the choice
// variant=fp8_wg3_round10. (At cc15492 variant 42 was round 11's candidate fp8_wg3_s_f16, the
// library's kernel since.)
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v42(const FwdParams& p, int ctas, cudaStream_t stream) {
  using T = hopper::Fp8Traits<cutlass::bfloat16_t, 128, hopper::kFp8Round10D128>;
  hopper::launch<T, kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
