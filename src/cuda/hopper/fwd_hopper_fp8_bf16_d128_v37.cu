// The FP8 kernel, bf16 output, head dim 128, comparison variant 37 (Fp8Traits::kVariant
// kFp8LibraryD128 | 2097152): the library's head-dim-128 kernel with the next block's K stage
// waited for under P V and V's under S (Fp8Traits::kEarlyWaits); built with
// RADIAL_ABLATION_KERNELS, picked by the choice variant=fp8_wg3_early_waits.
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v37(const FwdParams& p, int ctas, cudaStream_t stream) {
  using T = hopper::Fp8Traits<cutlass::bfloat16_t, 128, hopper::kFp8LibraryD128 | 2097152>;
  hopper::launch<T, kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
