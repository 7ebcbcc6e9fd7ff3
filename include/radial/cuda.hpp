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

// Gradients of attention_cuda() for the same plan and tensors: out and lse are the forward's
// (lse float32 [batch, heads, seq] on the tensors' device, required), d_out the gradient of
// out; d_q, d_k, d_v are overwritten. Key blocks no query keeps get dK = dV = 0. Portable
// sm80+ kernels (bf16/f16, head dim 64/128, block 64/128); dQ by float32 atomics, or with
// options.deterministic by a second pass over the plan's rows (bit-identical run to run). On
// compute capability 9.0 the Hopper kernel (src/cuda/hopper) replaces the portable dK/dV/dQ one
// where it covers the call (bf16/f16, head dim 64/128, block 128, not deterministic), unless
// RADIAL_PORTABLE_KERNEL=1 is in the environment. A
// float32 workspace is taken from the stream's memory pool (cudaMallocAsync) and given back on
// the stream at the end: no host synchronisation. Asynchronous on options.stream.
void attention_backward_cuda(const Plan& plan, const TensorView& q, const TensorView& k,
                             const TensorView& v, const TensorView& out, const TensorView& d_out,
                             const float* lse, const TensorView& d_q, const TensorView& d_k,
                             const TensorView& d_v, const AttentionOptions& options = {});

}  // namespace radial
