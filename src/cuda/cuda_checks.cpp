#include "cuda/cuda_checks.hpp"

#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>

#include "radial/error.hpp"

namespace radial::cuda_detail {
namespace {

std::string cuda_name(int device) { return "cuda:" + std::to_string(device); }

std::string hex(const void* p) {
  char text[32];
  std::snprintf(text, sizeof text, "%p", p);
  return text;
}

// Asks the driver where `p` lives; a plain host pointer is not device memory.
void require_device_memory(const void* p, const std::string& name, int device) {
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, p) != cudaSuccess) {
    cudaGetLastError();
    attr.type = cudaMemoryTypeUnregistered;
  }
  const bool on_device = attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged;
  const std::string expected = "memory of " + cuda_name(device) + " (the tensors' device)";
  require(on_device, name, expected,
          attr.type == cudaMemoryTypeHost ? "pinned host memory (" + hex(p) + ")"
                                          : "host memory unknown to CUDA (" + hex(p) + ")");
  require(attr.device == device, name, expected, "memory of " + cuda_name(attr.device));
}

void check_view(const TensorView& t, const std::string& name, int device) {
  require_device_memory(t.data, name + ".data", device);
  require(reinterpret_cast<uintptr_t>(t.data) % 16 == 0, name + ".data",
          "a 16-byte aligned address (the CUDA backend copies 16-byte chunks)", hex(t.data));
  const auto aligned = [&](int64_t stride, int64_t extent, const char* field) {
    // 8 elements of 2 bytes: every row then starts on a 16-byte boundary.
    require(extent == 1 || stride % 8 == 0, name + "." + field,
            "a multiple of 8 elements (16 bytes) for the CUDA backend", stride);
  };
  aligned(t.stride_batch, t.batch, "stride_batch");
  aligned(t.stride_seq, t.seq, "stride_seq");
  aligned(t.stride_head, t.heads, "stride_head");
}

}  // namespace

void validate_cuda_inputs(const Plan& plan, const TensorView& q, const TensorView& k,
                          const TensorView& v, const TensorView& out, const float* lse) {
  require(q.device == Device::cuda, "q.device", "cuda (the CUDA backend)", "cpu");
  require(q.dtype == DType::bf16 || q.dtype == DType::f16, "q.dtype",
          "bfloat16 or float16 (the CUDA backend)", dtype_name(q.dtype));
  require(q.dim == 64 || q.dim == 128, "q.dim", "64 or 128 (the CUDA backend)", q.dim);

  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    count = 0;
  }
  require(count > 0, "q.device_index", "a visible CUDA device", "none (no GPU or no driver)");
  require(q.device_index >= 0 && q.device_index < count, "q.device_index",
          "0.." + std::to_string(count - 1) + " (the visible CUDA devices)", q.device_index);

  check_view(q, "q", q.device_index);
  check_view(k, "k", q.device_index);
  check_view(v, "v", q.device_index);
  check_view(out, "out", q.device_index);
  if (lse != nullptr) {
    require_device_memory(lse, "lse", q.device_index);
    require(reinterpret_cast<uintptr_t>(lse) % alignof(float) == 0, "lse",
            "a 4-byte aligned float32 address", hex(lse));
  }
  const int64_t ctas = q.batch * q.heads * static_cast<int64_t>(plan.block_rows);
  require(ctas <= std::numeric_limits<int32_t>::max(), "q.batch * q.heads",
          "at most 2^31-1 CTAs (batch * heads * block rows)", ctas);
}

}  // namespace radial::cuda_detail
