// The FP8 kernel, bf16 output, head dim 128, comparison variant 24 (Fp8Traits::kVariant 12480:
// the library's with Q in registers, loaded once per tile, and Q K^T from registers;
// built with RADIAL_ABLATION_KERNELS, picked by the choice variant=fp8_q_registers).
#include "cuda/hopper/fwd_fp8_consumer.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v24(const FwdParams& p, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Fp8Traits<cutlass::bfloat16_t, 128, 12480>, kDefaultHopperSchedule>(
      p, ctas, stream);
}

}  // namespace radial::cuda_detail
