// Internal entry of the CUDA backend with an explicit kernel variant (benchmarks compare the
// variants on one card; the public attention_cuda picks FwdVariant::hopper where it runs, else
// standard). max_ctas > 0 caps the persistent Hopper kernel's CTAs (default: one per SM), so
// that tests can make each CTA run many tiles.
#pragma once

#include "cuda/fwd_params.hpp"
#include "radial/attention.hpp"

namespace radial::cuda_detail {

void attention_cuda_variant(const Plan& plan, const TensorView& q, const TensorView& k,
                            const TensorView& v, const TensorView& out, float* lse,
                            const AttentionOptions& options, FwdVariant variant,
                            int max_ctas = 0);

}  // namespace radial::cuda_detail
