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

}  // namespace radial
