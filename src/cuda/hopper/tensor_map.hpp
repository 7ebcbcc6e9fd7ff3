// TMA descriptors of the Hopper kernel's inputs (host side).
#pragma once

#include <cuda.h>

#include "cuda/fwd_params.hpp"

namespace radial::cuda_detail::hopper {

struct TensorMaps {
  CUtensorMap q, k, v;
};

// 4-D maps (column, row, head, batch) of Q, K and V with 64-column x 128-row boxes and the
// 128-byte swizzle; K and V end at key_limit, so masked keys read as zeros.
TensorMaps make_tensor_maps(const FwdParams& p, int head_dim, bool f16);

}  // namespace radial::cuda_detail::hopper
