// Test tensors: a buffer of one dtype holding a [batch, seq, heads, dim] view in one of
// several layouts, with raw access for filling, poisoning and reading back. Shared by the
// CPU attention tests (forward and backward).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "radial/dtype.hpp"
#include "radial/tensor.hpp"

namespace radial {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

enum class Layout { bshd, bhsd, slice };  // slice: a view inside a bigger [B, S+3, H+1, D+5]

const char* layout_name(Layout l) {
  return l == Layout::bshd ? "bshd" : l == Layout::bhsd ? "bhsd" : "slice";
}

unsigned fresh_seed() { return std::random_device{}(); }

// A tensor of one dtype in one of the layouts, owning its (possibly larger) buffer.
struct Tensor {
  DType dtype = DType::f32;
  std::vector<unsigned char> bytes;
  TensorView view;

  Tensor(DType dt, Layout layout, int64_t b, int64_t s, int64_t h, int64_t d) : dtype(dt) {
    const int64_t size = dtype_size(dt);
    if (layout == Layout::slice) {
      const int64_t S = s + 3, H = h + 1, D = d + 5;
      bytes.resize(static_cast<size_t>(b * S * H * D * size));
      // Start one token and one head in, so every edge of the view has outside neighbours.
      view = TensorView::bshd(bytes.data() + (1 * H * D + 1 * D) * size, dt, b, s, h, d);
      view.stride_head = D, view.stride_seq = H * D, view.stride_batch = S * H * D;
    } else {
      bytes.resize(static_cast<size_t>(b * s * h * d * size));
      view = layout == Layout::bshd ? TensorView::bshd(bytes.data(), dt, b, s, h, d)
                                    : TensorView::bhsd(bytes.data(), dt, b, s, h, d);
    }
  }
  Tensor(const Tensor&) = delete;  // the view points into `bytes`; a move keeps the buffer
  Tensor(Tensor&&) = default;
  int64_t elements() const { return static_cast<int64_t>(bytes.size()) / dtype_size(dtype); }
  // Raw access by flat index of the whole buffer, and by view coordinates.
  void set_flat(int64_t i, float x) {
    switch (dtype) {
      case DType::f32: reinterpret_cast<float*>(bytes.data())[i] = x; break;
      case DType::bf16: reinterpret_cast<bf16_t*>(bytes.data())[i] = from_float<bf16_t>(x); break;
      case DType::f16: reinterpret_cast<f16_t*>(bytes.data())[i] = from_float<f16_t>(x); break;
    }
  }
  double get_flat(int64_t i) const {
    switch (dtype) {
      case DType::f32: return reinterpret_cast<const float*>(bytes.data())[i];
      case DType::bf16: return to_float(reinterpret_cast<const bf16_t*>(bytes.data())[i]);
      case DType::f16: return to_float(reinterpret_cast<const f16_t*>(bytes.data())[i]);
    }
    return kNaN;
  }
  int64_t flat(int64_t b, int64_t s, int64_t h, int64_t d) const {
    const int64_t base = (static_cast<const unsigned char*>(view.data) - bytes.data()) /
                         dtype_size(dtype);
    return base + view.offset(b, s, h) + d;
  }
  void set(int64_t b, int64_t s, int64_t h, int64_t d, float x) { set_flat(flat(b, s, h, d), x); }
  double get(int64_t b, int64_t s, int64_t h, int64_t d) const { return get_flat(flat(b, s, h, d)); }

  // Every element of the buffer, inside the view or not.
  void fill_random(std::mt19937& rng, float stddev) {
    std::normal_distribution<float> dist(0.0f, stddev);
    for (int64_t i = 0; i < elements(); ++i) set_flat(i, dist(rng));
  }
  void fill(float x) {
    for (int64_t i = 0; i < elements(); ++i) set_flat(i, x);
  }
};

}  // namespace
}  // namespace radial
