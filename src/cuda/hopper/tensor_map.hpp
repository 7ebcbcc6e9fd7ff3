// TMA descriptors of the Hopper kernel's inputs (host side).
#pragma once

#include <cuda.h>

#include <cstdint>

#include "cuda/fwd_params.hpp"

namespace radial::cuda_detail::hopper {

struct TensorMaps {
  CUtensorMap q, k, v;
};

// 4-D maps (column, row, head, batch) of Q, K and V with 64-column x 128-row boxes and the
// 128-byte swizzle; K and V end at key_limit, so masked keys read as zeros.
TensorMaps make_tensor_maps(const FwdParams& p, int head_dim, bool f16);

// The FP8 forward's operands (FwdParams::fp8): Q and K as [batch, heads, padded_seq, head_dim]
// bytes with [128 rows, head_dim] boxes (the 128- or 64-byte swizzle: one box a row), V^T as
// [batch, heads, vt_rows, padded_seq] with [vt_rows, 128 keys] boxes (128-byte swizzle; vt_rows
// is head_dim, or head_dim + 8 with the row sums' column of ones, Fp8Workspace::vt_rows).
// q_box_rows: Q's box rows (64 for the three-warpgroup variant's 192-row tiles).
TensorMaps make_fp8_tensor_maps(const FwdParams& p, int head_dim, int vt_rows,
                                int q_box_rows = 128);

// One such map of a [batch, rows, heads, head_dim] tensor (element strides ss, sh, sb) with
// 64-column x box_rows boxes: the backward's 64-row tiles.
CUtensorMap make_rows_map(const void* data, int head_dim, bool f16, int rows, int heads,
                          int64_t batch, int64_t ss, int64_t sh, int64_t sb, int box_rows);

// A 3-D map (column, row, batch x head) of the backward's float32 dQ accumulator
// [batch_heads, rows, head_dim] (packed) with 32-column x box_rows boxes and the 128-byte
// swizzle: the target of the Hopper backward's bulk reduce-adds.
CUtensorMap make_accum_map(float* data, int head_dim, int rows, int64_t batch_heads,
                           int box_rows);

}  // namespace radial::cuda_detail::hopper
