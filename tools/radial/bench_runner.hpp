// What `radial bench` times: one attention call on one backend, into one of two output slots
// (0: radial plan, 1: dense plan), on inputs fixed at construction.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "radial/dtype.hpp"
#include "radial/plan.hpp"

namespace radial_cli {

struct BenchShape {
  int64_t batch = 1, seq = 0, heads = 1, dim = 128;
  radial::DType dtype = radial::DType::bf16;
  size_t elements() const { return static_cast<size_t>(batch * seq * heads * dim); }
  size_t bytes() const { return elements() * static_cast<size_t>(radial::dtype_size(dtype)); }
  size_t lse_elements() const { return static_cast<size_t>(batch * heads * seq); }
};

using Bytes = std::vector<unsigned char>;

// A [batch, seq, heads, dim] tensor of standard normal values, rounded to the dtype.
Bytes random_tensor(const BenchShape& shape, std::mt19937_64& rng);
// The tensor's values as doubles (bf16 / fp16 widened exactly).
std::vector<double> to_doubles(const Bytes& data, radial::DType dtype);

class AttentionRunner {
 public:
  virtual ~AttentionRunner() = default;
  virtual std::string device() const = 0;
  // Poisons the slot's output and lse (NaN), runs attention with `plan` into it, waits for it,
  // and returns the seconds the call took (poisoning excluded).
  virtual double run(const radial::Plan& plan, int slot) = 0;
  // The slot's output ([batch, seq, heads, dim], dtype bytes) and lse (float, [batch, heads,
  // seq]) as the last run left them.
  virtual Bytes output(int slot) = 0;
  virtual std::vector<float> lse(int slot) = 0;
};

std::unique_ptr<AttentionRunner> make_cpu_runner(const BenchShape& shape, Bytes q, Bytes k,
                                                 Bytes v, int threads);
// True when this build has the CUDA backend and a GPU is visible.
bool cuda_runner_available();
// Throws radial::Error when !cuda_runner_available().
// precision fp8: every run is the FP8 forward (quantisation included).
std::unique_ptr<AttentionRunner> make_cuda_runner(
    const BenchShape& shape, const Bytes& q, const Bytes& k, const Bytes& v,
    radial::Precision precision = radial::Precision::native);

}  // namespace radial_cli
