// The FP8 kernel, bf16 output, head dim 128, comparison variant 29 (Fp8Traits::kVariant
// kFp8Round10D128 | 65536): the library's head-dim-128 kernel with clock stamps of one CTA's blocks
// printed (Fp8Traits::kTrace); built with RADIAL_ABLATION_KERNELS, picked by the choice
// variant=fp8_wg3_trace.
#define RADIAL_WG3_TRACE  // (the stamps' buffer and print_wg3_trace)
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v29(const FwdParams& p, int ctas, cudaStream_t stream) {
  using T = hopper::Fp8Traits<cutlass::bfloat16_t, 128, hopper::kFp8Round10D128 | 65536>;
  hopper::launch<T, kDefaultHopperSchedule>(p, ctas, stream);
  hopper::print_wg3_trace<<<1, 1, 0, stream>>>();
}

}  // namespace radial::cuda_detail
