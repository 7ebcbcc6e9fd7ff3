// The FP8 kernel, bf16 output, head dim 128, comparison variant 31 (Fp8Traits::kVariant
// kFp8Round10D128 | 32768 | 131072 | 65536): fp8_wg3_ring with the clock stamps of fp8_wg3_trace;
// built with RADIAL_ABLATION_KERNELS, picked by the choice variant=fp8_wg3_ring_trace.
#define RADIAL_WG3_TRACE  // (the stamps' buffer and print_wg3_trace)
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v31(const FwdParams& p, int ctas, cudaStream_t stream) {
  constexpr int kBits = hopper::kFp8Round10D128 | 32768 | 131072 | 65536;
  using T = hopper::Fp8Traits<cutlass::bfloat16_t, 128, kBits>;
  hopper::launch<T, kDefaultHopperSchedule>(p, ctas, stream);
  hopper::print_wg3_trace<<<1, 1, 0, stream>>>();
}

}  // namespace radial::cuda_detail
