#include "cuda/cuda_checks.hpp"

#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>

#include "cuda/check.hpp"
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

void validate_cuda_backward_inputs(const Plan& plan, const TensorView& q, const TensorView& k,
                                   const TensorView& v, const TensorView& out,
                                   const TensorView& d_out, const float* lse,
                                   const TensorView& d_q, const TensorView& d_k,
                                   const TensorView& d_v, int smem_bytes) {
  validate_cuda_inputs(plan, q, k, v, out, lse);
  check_view(d_out, "d_out", q.device_index);
  check_view(d_q, "d_q", q.device_index);
  check_view(d_k, "d_k", q.device_index);
  check_view(d_v, "d_v", q.device_index);
  const size_t kept = plan.col_index.size();
  require(plan.col_offset.size() == static_cast<size_t>(plan.block_cols) + 1 &&
              plan.col_offset.front() == 0 &&
              plan.col_offset.back() == static_cast<int64_t>(kept) && plan.row_index.size() == kept,
          "plan.col_offset",
          std::to_string(plan.block_cols + 1) + " offsets from 0 to " + std::to_string(kept) +
              " (the CSC of the plan's kept blocks)",
          std::to_string(plan.col_offset.size()) + " offsets, " +
              std::to_string(plan.row_index.size()) + " row indices");
  int limit = 0;
  RADIAL_CUDA_CHECK(
      cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, q.device_index));
  require(smem_bytes <= limit, "q.device_index",
          "a device with " + std::to_string(smem_bytes) +
              " bytes of shared memory per block for the backward at head dim " +
              std::to_string(q.dim) + ", block " + std::to_string(plan.block_size()) +
              " (A100, H100, H200; use block 64 or head dim 64 on smaller cards)",
          std::to_string(limit) + " bytes on cuda:" + std::to_string(q.device_index));
}

}  // namespace radial::cuda_detail
