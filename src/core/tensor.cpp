#include "radial/tensor.hpp"

namespace radial {

TensorView TensorView::bshd(void* data, DType dtype, int64_t b, int64_t s, int64_t h, int64_t d,
                            Device device) {
  TensorView t;
  t.data = data, t.dtype = dtype, t.device = device;
  t.batch = b, t.seq = s, t.heads = h, t.dim = d;
  t.stride_head = d, t.stride_seq = h * d, t.stride_batch = s * h * d;
  return t;
}

TensorView TensorView::bhsd(void* data, DType dtype, int64_t b, int64_t s, int64_t h, int64_t d,
                            Device device) {
  TensorView t = bshd(data, dtype, b, s, h, d, device);
  t.stride_seq = d, t.stride_head = s * d, t.stride_batch = h * s * d;
  return t;
}

}  // namespace radial
