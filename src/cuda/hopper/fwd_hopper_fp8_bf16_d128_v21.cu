// The FP8 kernel, bf16 output, head dim 128, comparison variant 21 (Fp8Traits::kVariant 2240:
// the library's with the row maximum moved only past kLazyLog2 and O's rescale skipped when
// no row of the warp moved;
// built with RADIAL_ABLATION_KERNELS, picked by the choice variant=fp8_lazy_rescale).
#include "cuda/hopper/fwd_fp8_consumer.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v21(const FwdParams& p, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Fp8Traits<cutlass::bfloat16_t, 128, 2240>, kDefaultHopperSchedule>(
      p, ctas, stream);
}

}  // namespace radial::cuda_detail
