// The FP8 kernel, bf16 output, head dim 128, comparison variant 42: round 10's library with S in
// f16 (Fp8Traits::kSF16: the e4m3 wgmma's f16 accumulator, the softmax on f16 pairs, Q and K
// quantised to at most kFp8SF16Top); built with RADIAL_ABLATION_KERNELS, picked by the choice
// variant=fp8_wg3_s_f16.
#include "cuda/hopper/fwd_fp8_wg3_f16.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v42(const FwdParams& p, int ctas, cudaStream_t stream) {
  using T = hopper::Fp8Traits<cutlass::bfloat16_t, 128,
                              hopper::kFp8LibraryD128 | hopper::kFp8SF16>;
  hopper::launch<T, kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
