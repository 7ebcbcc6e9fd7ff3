// The CUDA backend's entry points (compiled when the library is built with RADIAL_CUDA).
#pragma once

#include "radial/attention.hpp"

namespace radial {

// True when this build has CUDA and at least one device is visible.
bool cuda_available();

// Block-sparse attention on the GPU: same contract as attention() (tensors on one CUDA device,
// lse float32 [batch, heads, seq] on that device or nullptr). The plan is uploaded to the
// device on first use and cached with the plan (shared by its copies); no allocation or host
// synchronisation per call afterwards. Asynchronous on options.stream.
void attention_cuda(const Plan& plan, const TensorView& q, const TensorView& k,
                    const TensorView& v, const TensorView& out, float* lse,
                    const AttentionOptions& options = {});

}  // namespace radial
