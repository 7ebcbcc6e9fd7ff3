// Block-sparse attention driven by a Plan: out = softmax(scale * q k^T + mask) v, per batch and
// head, with the log-sum-exp of each row (natural log, of the scaled scores).
#pragma once

#include <cstdint>
#include <vector>

#include "radial/plan.hpp"
#include "radial/tensor.hpp"

namespace radial {

enum class Backend { automatic, cpu, cuda };

struct AttentionOptions {
  double scale = 0.0;  // 0 means 1 / sqrt(head_dim)
  Backend backend = Backend::automatic;  // automatic: by the tensors' device
  // CPU backend: 0 means OpenMP's default (all hardware threads unless OMP_NUM_THREADS says
  // otherwise). Any count above hardware_threads() is capped to it, so every caller (C++, the
  // C ABI, the CLI, Python) gets the same rule and no count can exhaust the OpenMP runtime.
  int threads = 0;
  void* stream = nullptr;  // CUDA backend: a cudaStream_t (nullptr: the default stream)
  bool deterministic = false;  // CUDA backward: bit-identical gradients run to run (dQ without atomics)
  // fp8: the forward in FP8 e4m3 (Q and K per 128-token block scales, K smoothed, V per-channel
  // scales; docs/fp8.md): CUDA, compute capability 9.0, head dim 64 or 128, block 128; refused
  // by name (options.precision) elsewhere and by the backward.
  Precision precision = Precision::native;
};

// q, k, v, out: [batch, seq, heads, head_dim] views (any strides, head_dim contiguous), all of
// one dtype and device; seq == plan.seq_len. lse: float32 [batch, heads, seq] contiguous, on
// the tensors' device, or nullptr when not wanted. Throws Error on any mismatch before any work.
// On CUDA it runs the Hopper kernel on compute capability 9.0 where that covers the call (bf16
// or f16, head_dim 64 or 128, block 128; RADIAL_PORTABLE_KERNEL=1 in the environment turns it
// off), else the portable sm80+ kernel.
void attention(const Plan& plan, const TensorView& q, const TensorView& k, const TensorView& v,
               const TensorView& out, float* lse, const AttentionOptions& options = {});

// The processors this process may run on (OpenMP's omp_get_num_procs), at least 1: the most
// threads the CPU backend starts.
int hardware_threads();

// Checks what attention() checks; exposed so that every backend validates the same way.
void validate_attention_args(const Plan& plan, const TensorView& q, const TensorView& k,
                             const TensorView& v, const TensorView& out);

// The plainly right version that the fast ones are tested against: token by token, float64
// accumulation, no tiling. out: [batch, seq, heads, head_dim]; lse: [batch, heads, seq].
struct ReferenceResult {
  int64_t batch = 0, seq = 0, heads = 0, dim = 0;
  std::vector<double> out;
  std::vector<double> lse;
  double at(int64_t b, int64_t s, int64_t h, int64_t d) const {
    return out[((b * seq + s) * heads + h) * dim + d];
  }
  double lse_at(int64_t b, int64_t h, int64_t s) const { return lse[(b * heads + h) * seq + s]; }
};
ReferenceResult attention_reference(const Plan& plan, const TensorView& q, const TensorView& k,
                                    const TensorView& v, double scale = 0.0);

// The tiled, multi-threaded CPU backend (online softmax, float32 accumulation).
void attention_cpu(const Plan& plan, const TensorView& q, const TensorView& k,
                   const TensorView& v, const TensorView& out, float* lse,
                   const AttentionOptions& options = {});

// Gradients of attention() for the same plan and tensors. out and lse are the forward's (lse
// float32 [batch, heads, seq] contiguous on the tensors' device; required, not nullptr); d_out
// is the gradient of out; d_q, d_k, d_v receive the gradients (overwritten, not accumulated).
// All views follow the forward's shape, dtype and device rules (any strides, head dim
// contiguous). Exact for the mask the forward applied: kept blocks, key_limit padding, tail
// block, rows keeping only their diagonal; key blocks no query keeps get dK = dV = 0 exactly.
// CPU or CUDA by the tensors' device, like attention().
void attention_backward(const Plan& plan, const TensorView& q, const TensorView& k,
                        const TensorView& v, const TensorView& out, const TensorView& d_out,
                        const float* lse, const TensorView& d_q, const TensorView& d_k,
                        const TensorView& d_v, const AttentionOptions& options = {});

// Checks what attention_backward() checks, common to every backend: the forward's checks on
// plan, q, k, v and out, the plan's CSC, d_out and the gradients like q, lse present.
void validate_backward_args(const Plan& plan, const TensorView& q, const TensorView& k,
                            const TensorView& v, const TensorView& out, const TensorView& d_out,
                            const float* lse, const TensorView& d_q, const TensorView& d_k,
                            const TensorView& d_v);

// The float64 reference backward: token by token, the softmax recomputed from q and k (it
// needs no forward output), gradients in [batch, seq, heads, dim].
struct ReferenceGradients {
  int64_t batch = 0, seq = 0, heads = 0, dim = 0;
  std::vector<double> dq, dk, dv;  // [batch, seq, heads, dim]
  size_t index(int64_t b, int64_t s, int64_t h, int64_t d) const {
    return static_cast<size_t>(((b * seq + s) * heads + h) * dim + d);
  }
};
ReferenceGradients attention_backward_reference(const Plan& plan, const TensorView& q,
                                                const TensorView& k, const TensorView& v,
                                                const TensorView& d_out, double scale = 0.0);

// The tiled, multi-threaded CPU backward (float32 accumulation): dQ by query block rows over
// the plan's CSR, dK and dV by key block columns over its CSC; no atomics, so deterministic.
void attention_backward_cpu(const Plan& plan, const TensorView& q, const TensorView& k,
                            const TensorView& v, const TensorView& out, const TensorView& d_out,
                            const float* lse, const TensorView& d_q, const TensorView& d_k,
                            const TensorView& d_v, const AttentionOptions& options = {});

}  // namespace radial
