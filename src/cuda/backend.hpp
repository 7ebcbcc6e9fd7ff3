// Internal entry of the CUDA backend with an explicit kernel choice (src/api/kernel_choice.hpp),
// for benchmarks and tests that compare kernels on one card; the public attention_cuda lets
// choose_kernel pick. Throws radial::Error naming the field of a choice that is not built or
// does not cover the call.
#pragma once

#include "api/kernel_choice.hpp"
#include "radial/attention.hpp"

namespace radial::cuda_detail {

void attention_cuda_with(const Plan& plan, const TensorView& q, const TensorView& k,
                         const TensorView& v, const TensorView& out, float* lse,
                         const AttentionOptions& options, const KernelChoice& choice);

// The same with gradients: attention_backward_cuda with an explicit choice (direction=backward).
void attention_backward_cuda_with(const Plan& plan, const TensorView& q, const TensorView& k,
                                  const TensorView& v, const TensorView& out,
                                  const TensorView& d_out, const float* lse,
                                  const TensorView& d_q, const TensorView& d_k,
                                  const TensorView& d_v, const AttentionOptions& options,
                                  const KernelChoice& choice);

// A view's element strides of batch, seq and head, as the kernels' params hold them.
inline void fill_strides(const TensorView& t, int64_t& sb, int64_t& ss, int64_t& sh) {
  sb = t.stride_batch, ss = t.stride_seq, sh = t.stride_head;
}

// Compute capability of `device` as major * 10 + minor.
int compute_capability(int device);
// RADIAL_PORTABLE_KERNEL=1 in the environment (read once): the chooser then sees no Hopper
// device, forward and backward alike.
bool portable_only();

// What attention_cuda runs for q (its device's compute capability, dtype, head dim) under the
// plan: choose_kernel's pick, or the portable kernel under RADIAL_PORTABLE_KERNEL=1.
KernelChoice choose_kernel_for(const Plan& plan, const TensorView& q);

}  // namespace radial::cuda_detail
