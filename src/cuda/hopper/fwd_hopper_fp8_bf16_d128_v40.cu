// The FP8 kernel, bf16 output, head dim 128, comparison variant 40 (Fp8Traits::kVariant
// kFp8LibraryD128 | kFp8SpecMax): each block's exponentials under the rows' current maxima,
// checked after them (speculative_softmax), so that the MUFU stream need not wait for the
// block's maxima; built with RADIAL_ABLATION_KERNELS, picked by the choice
// variant=fp8_wg3_spec_max.
#include "cuda/hopper/fwd_fp8_wg3.cuh"

namespace radial::cuda_detail {

void launch_fwd_hopper_fp8_bf16_d128_v40(const FwdParams& p, int ctas, cudaStream_t stream) {
  using T = hopper::Fp8Traits<cutlass::bfloat16_t, 128,
                              hopper::kFp8LibraryD128 | hopper::kFp8SpecMax>;
  hopper::launch<T, kDefaultHopperSchedule>(p, ctas, stream);
}

}  // namespace radial::cuda_detail
