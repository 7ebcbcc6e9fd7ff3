// Internal entry of the CUDA backend with an explicit kernel variant (benchmarks compare the
// variants on one card; the public attention_cuda runs FwdVariant::standard).
#pragma once

#include "cuda/fwd_params.hpp"
#include "radial/attention.hpp"

namespace radial::cuda_detail {

void attention_cuda_variant(const Plan& plan, const TensorView& q, const TensorView& k,
                            const TensorView& v, const TensorView& out, float* lse,
                            const AttentionOptions& options, FwdVariant variant);

}  // namespace radial::cuda_detail
