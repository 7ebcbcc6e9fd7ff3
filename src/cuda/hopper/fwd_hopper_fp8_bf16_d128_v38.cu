// The FP8 kernel, bf16 output, head dim 128, comparison variant 38 (Fp8Traits::kVariant
// kFp8LibraryD128 | 2097152 | 4194304): fp8_wg3_early_waits with the staged metadata and the
// warpgroup index broadcast from lane 0 (Fp8Traits::kUniformMeta); built with
// RADIAL_ABLATION_KERNELS, picked by the choice variant=fp8_wg3_early_waits_uniform.
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v38(const FwdParams& p, int ctas, cudaStream_t stream) {
  constexpr int kBits = hopper::kFp8LibraryD128 | 2097152 | 4194304;
  using T = hopper::Fp8Traits<cutlass::bfloat16_t, 128, kBits>;
  hopper::launch<T, kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
