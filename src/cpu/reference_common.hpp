// What the float64 references (forward and backward) share: one element of a view as a double,
// and the plan's block mask as a plain table read straight from its CSR.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "radial/plan.hpp"
#include "radial/tensor.hpp"

namespace radial::reference {

inline double element(const TensorView& t, int64_t b, int64_t s, int64_t h, int64_t d) {
  const int64_t i = t.offset(b, s, h) + d;
  switch (t.dtype) {
    case DType::f32: return static_cast<const float*>(t.data)[i];
    case DType::bf16: return to_float(static_cast<const bf16_t*>(t.data)[i]);
    case DType::f16: return to_float(static_cast<const f16_t*>(t.data)[i]);
  }
  return std::nan("");
}

// kept[r * block_cols + c] != 0 when block row r keeps key block c.
inline std::vector<char> kept_blocks(const Plan& plan) {
  const int64_t cols = plan.block_cols;
  std::vector<char> kept(static_cast<size_t>(plan.block_rows) * cols, 0);
  for (int64_t r = 0; r < plan.block_rows; ++r) {
    for (int32_t i = plan.row_offset[r]; i < plan.row_offset[r + 1]; ++i) {
      kept[r * cols + plan.col_index[i]] = 1;
    }
  }
  return kept;
}

}  // namespace radial::reference
