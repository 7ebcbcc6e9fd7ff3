// The FP8 kernel, bf16 output, head dim 128, comparison variant 22 (Fp8Traits::kVariant 2752:
// the library's with fp8_lazy_rescale's lazy maximum and fp8_poly_exp_quarter's polynomial
// exponentials;
// built with RADIAL_ABLATION_KERNELS, picked by the choice variant=fp8_lazy_poly).
#include "cuda/hopper/fwd_fp8_consumer.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v22(const FwdParams& p, int ctas, cudaStream_t stream) {
  hopper::launch<hopper::Fp8Traits<cutlass::bfloat16_t, 128, 2752>, kDefaultHopperSchedule>(
      p, ctas, stream);
}

}  // namespace radial::cuda_detail
