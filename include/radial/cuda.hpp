// The CUDA backend's entry points (compiled when the library is built with RADIAL_CUDA).
#pragma once

#include "radial/attention.hpp"

namespace radial {

// True when this build has CUDA and at least one device is visible.
bool cuda_available();

// Block-sparse attention on the GPU: same contract as attention() (tensors on one CUDA device,
// lse float32 [batch, heads, seq] on that device or nullptr). The plan is uploaded to the
// device on first use and cached in plan.device_cache; no allocation or host synchronisation
// per call afterwards. Asynchronous on options.stream.
void attention_cuda(const Plan& plan, const TensorView& q, const TensorView& k,
                    const TensorView& v, const TensorView& out, float* lse,
                    const AttentionOptions& options = {});

// Gradients of attention_cuda(): same contract as attention_backward() (every tensor and lse on
// one CUDA device). Asynchronous on options.stream; options.deterministic gives bit-identical
// gradients run to run.
void attention_backward_cuda(const Plan& plan, const TensorView& q, const TensorView& k,
                             const TensorView& v, const TensorView& out, const TensorView& d_out,
                             const float* lse, const TensorView& d_q, const TensorView& d_k,
                             const TensorView& d_v, const AttentionOptions& options = {});

}  // namespace radial
