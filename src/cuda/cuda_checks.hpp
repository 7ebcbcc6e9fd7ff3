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

}  // namespace radial::cuda_detail
