// The FP8 kernel, bf16 output, head dim 128, comparison variant 44: the library (S in f16) with P
// in shared memory and P V as two SS products (Fp8Traits::kSsP), the next block's S issued after
// the second (kLookahead), so that P's registers are free while it runs; built with
// RADIAL_ABLATION_KERNELS, picked by the choice variant=fp8_wg3_s_f16_ss_p. (At cc15492 the S
// was issued after the first product: 0.80-0.83x the library then.)
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v44(const FwdParams& p, int ctas, cudaStream_t stream) {
  using T = hopper::Fp8Traits<cutlass::bfloat16_t, 128,
                              hopper::kFp8Round11D128 | hopper::kFp8Lookahead | hopper::kFp8SsP>;
  hopper::launch<T, kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
