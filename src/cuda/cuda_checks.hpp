// Checks that only the CUDA backend needs, run after the generic validate_attention_args and
// before anything touches the device: a clear radial::Error naming the argument.
#pragma once

#include "radial/attention.hpp"

namespace radial::cuda_detail {

// q, k, v, out on one visible CUDA device (their pointers really in that device's memory),
// bf16 or fp16, head dim 64 or 128, data pointers and strides 16-byte aligned, the grid within
// CUDA's limits; lse (when given) float32 memory on the same device.
void validate_cuda_inputs(const Plan& plan, const TensorView& q, const TensorView& k,
                          const TensorView& v, const TensorView& out, const float* lse);

// The same for the backward (after validate_backward_args): also d_out, d_q, d_k, d_v; lse
// float32 device memory; the plan's CSC consistent with its CSR size; the device's shared
// memory enough for the backward kernels (`smem_bytes`, bwd_smem_bytes).
void validate_cuda_backward_inputs(const Plan& plan, const TensorView& q, const TensorView& k,
                                   const TensorView& v, const TensorView& out,
                                   const TensorView& d_out, const float* lse,
                                   const TensorView& d_q, const TensorView& d_k,
                                   const TensorView& d_v, int smem_bytes);

}  // namespace radial::cuda_detail
