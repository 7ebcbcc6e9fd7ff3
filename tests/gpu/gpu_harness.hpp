// Shared pieces of the GPU tests: skipping visibly without a GPU, device buffers, strided test
// tensors filled with fresh random values (gaps and outputs poisoned with NaN), and the check
// of a CUDA result against the float64 CPU reference.
#pragma once

#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "radial/attention.hpp"
#include "radial/plan.hpp"

namespace radial::gpu_test {

// Empty when a CUDA device is usable, else why not (printed with every skipped test).
const std::string& gpu_unavailable_reason();

#define RADIAL_REQUIRE_GPU()                                                             \
  do {                                                                                   \
    if (!::radial::gpu_test::gpu_unavailable_reason().empty())                           \
      GTEST_SKIP() << "GPU test skipped: " << ::radial::gpu_test::gpu_unavailable_reason(); \
  } while (0)

// Fails the test (with the call's text) when a CUDA call fails.
#define RADIAL_EXPECT_CUDA(call) ASSERT_EQ((call), cudaSuccess) << #call

class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// How a [B, S, H, D] tensor sits in its buffer.
enum class Layout {
  bshd,    // contiguous [B, S, H, D]
  bhsd,    // contiguous [B, H, S, D]
  packed,  // one third of a fused [B, S, 3, H, D] qkv projection
  padded,  // [B, H, S, D] with gaps after each row, head and batch
};
const char* layout_name(Layout layout);

// A tensor on the host and on the device with the same layout. Every element of the buffer
// that the view does not cover is NaN and must stay so.
struct TestTensor {
  DType dtype = DType::bf16;
  int64_t batch = 0, seq = 0, heads = 0, dim = 0;
  int64_t stride_batch = 0, stride_seq = 0, stride_head = 0;
  std::vector<uint16_t> host;  // raw bf16 / fp16 bits
  DeviceBuffer device;

  TestTensor(DType dtype, Layout layout, int64_t b, int64_t s, int64_t h, int64_t d);
  // Fills the covered elements with N(0, 1) values (gaps stay NaN) and uploads.
  void randomize(uint64_t seed);
  // NaN everywhere, on the device too.
  void poison();
  void download();
  TensorView host_view();
  TensorView device_view() const;
  int64_t index(int64_t b, int64_t s, int64_t h, int64_t d) const {
    return b * stride_batch + s * stride_seq + h * stride_head + d;
  }
  float at(int64_t b, int64_t s, int64_t h, int64_t d) const;
  // Number of buffer elements outside the view that are no longer NaN.
  int64_t touched_gaps() const;
};

struct CaseSpec {
  DType dtype = DType::bf16;
  int64_t batch = 1, heads = 1, dim = 128;
  Layout layout = Layout::bshd;
  double scale = 0.0;
  bool want_lse = true;
  int max_ctas = 0;  // the persistent Hopper kernel's CTA cap (0: one per SM)
};

struct CaseResult {
  double out_rel_error = 0;   // ||out - ref|| / ||ref|| over every element
  double lse_max_error = 0;   // max |lse - ref|
  int64_t non_finite_out = 0; // outputs left NaN (unwritten) or inf
  int64_t bad_lse = 0;        // lse entries not finite (or, without lse, any written)
  int64_t touched_gaps = 0;   // elements outside the out view that were written
  uint64_t seed = 0;
};

// Runs the kernel `choice` names (parse_choice, src/api/kernel_choice.hpp; spec.max_ctas > 0
// caps persistent CTAs) on fresh random inputs and compares with attention_reference.
CaseResult run_case(const Plan& plan, const CaseSpec& spec,
                    const std::string& choice = "family=portable");

// Empty when this build holds the kernel `choice` names, else why not (the instantiations
// that exist only for comparison are built with RADIAL_ABLATION_KERNELS=ON).
std::string choice_not_built(const std::string& choice);

// Relative error bound on the output per dtype: bf16 keeps 8 significant bits (the output and
// the probabilities are rounded to it), fp16 11.
double out_tolerance(DType dtype);
constexpr double kLseTolerance = 1e-3;

// One kernel check: a plan (radial or dense), the inputs' shape and layout, the kernel choice.
struct KernelCase {
  std::string name;
  Geometry geometry;
  PlanSpec spec;
  bool dense = false;
  CaseSpec run;
  std::string choice = "family=portable";
};
// Names the case in test listings (gtest would otherwise print its bytes).
inline void PrintTo(const KernelCase& c, std::ostream* os) { *os << c.name; }

Geometry geo(int64_t frames, int64_t tokens, int64_t text = 0, int64_t valid = -1);
PlanSpec spec(Model model, double decay, int block = 128);
CaseSpec run(DType dtype, int64_t batch, int64_t heads, int64_t dim, Layout layout,
             double scale = 0.0, bool lse = true);

// Runs the case against the float64 reference and asserts every bound (all outputs written
// and finite, nothing outside the view touched, lse, relative error per dtype); prints the
// errors after `label`.
void expect_matches_reference(const KernelCase& c, const std::string& label);

}  // namespace radial::gpu_test
