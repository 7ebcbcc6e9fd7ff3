// Pieces of the CUDA backward tests: one case's tensors on the device (inputs random, gradients
// poisoned with NaN), the forward that gives out and lse, the backward, and the comparison of
// dQ, dK and dV with a float64 reference.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "gpu_harness.hpp"

namespace radial::gpu_test {

// The float64 reference backward of the library (radial::attention_backward_reference, which
// the CPU tests check against finite differences), on the host copies of the inputs.
using Gradients64 = ReferenceGradients;
Gradients64 reference_backward(const Plan& plan, const TestTensor& q, const TestTensor& k,
                               const TestTensor& v, const TestTensor& d_out, double scale);

// One backward case on the device: q, k, v, d_out random N(0, 1); out and lse from the CUDA
// forward; d_q, d_k, d_v poisoned before each backward. Gradients use the padded layout
// whenever the inputs are not bshd, so that strided stores are checked.
struct BackwardCase {
  const Plan& plan;
  CaseSpec spec;
  uint64_t seed;
  std::unique_ptr<TestTensor> q, k, v, out, d_out, d_q, d_k, d_v;
  std::unique_ptr<DeviceBuffer> lse;

  BackwardCase(const Plan& plan, const CaseSpec& spec, uint64_t seed);
  // Runs attention_cuda for out and lse.
  void forward();
  // Poisons the gradients, runs attention_backward_cuda, waits and downloads them.
  void backward(bool deterministic);
  float* lse_ptr() const { return static_cast<float*>(lse->get()); }
};

struct GradientErrors {
  double dq = 0, dk = 0, dv = 0;  // ||grad - ref|| / ||ref|| over every element
  int64_t non_finite = 0;         // gradient elements left NaN (unwritten) or inf
  int64_t touched_gaps = 0;       // elements outside the gradient views that were written
  int64_t masked_not_zero = 0;    // dK or dV of keys >= key_limit that are not exactly 0
};
GradientErrors compare(const BackwardCase& c, const Gradients64& ref);

// Relative error bound on each gradient: bf16 keeps 8 significant bits, fp16 11 (P and dS are
// rounded to the input dtype for the tensor-core products, like the output of the forward).
double grad_tolerance(DType dtype);

}  // namespace radial::gpu_test
