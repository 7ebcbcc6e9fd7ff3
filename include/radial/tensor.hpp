// A non-owning view of a [batch, seq, heads, dim] tensor with arbitrary element strides, so
// both [B, S, H, D] and [B, H, S, D] layouts (and slices of larger buffers) pass unchanged.
#pragma once

#include <cstdint>

#include "radial/dtype.hpp"

namespace radial {

enum class Device { cpu, cuda };

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::bf16;
  Device device = Device::cpu;
  int device_index = 0;
  int64_t batch = 0, seq = 0, heads = 0, dim = 0;
  // Strides in elements; the head dimension is contiguous (stride 1).
  int64_t stride_batch = 0, stride_seq = 0, stride_head = 0;

  // Contiguous [B, S, H, D].
  static TensorView bshd(void* data, DType dtype, int64_t b, int64_t s, int64_t h, int64_t d,
                         Device device = Device::cpu);
  // Contiguous [B, H, S, D].
  static TensorView bhsd(void* data, DType dtype, int64_t b, int64_t s, int64_t h, int64_t d,
                         Device device = Device::cpu);

  int64_t offset(int64_t b, int64_t s, int64_t h) const {
    return b * stride_batch + s * stride_seq + h * stride_head;
  }
};

}  // namespace radial
