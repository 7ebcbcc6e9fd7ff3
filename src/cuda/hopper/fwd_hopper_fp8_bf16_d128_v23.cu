// The FP8 kernel, bf16 output, head dim 128, comparison variant 23 (Fp8Traits::kVariant 192:
// the library's of rounds 4 and 5, each block's first key, K scale and shift read by the
// consumers' dependent global loads instead of staged in shared memory by the producer;
// built with RADIAL_ABLATION_KERNELS, picked by the choice variant=fp8_global_meta).
#include "cuda/hopper/fwd_fp8_consumer.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v23(const FwdParams& p, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Fp8Traits<cutlass::bfloat16_t, 128, 192>, kDefaultHopperSchedule>(
      p, ctas, stream);
}

}  // namespace radial::cuda_detail
