// The orders in which the kernels visit a plan's block rows, and where each row starts its
// walk over its kept blocks. Pure host code over a Plan (the plan layer); the CUDA backend
// uploads the result beside the plan (src/cuda/plan_device.hpp) and a kernel choice's
// row_order field (src/api/kernel_choice.hpp) picks one.
#pragma once

#include <cstdint>
#include <vector>

#include "radial/plan.hpp"

namespace radial::schedule {

// Block rows ordered by kept-block count, heaviest first, so that rows with many blocks (the
// dense tail and text rows, rows that see many frames) start early and the launch does not end
// waiting for one of them. Counts are compared on a coarse log scale (steps of 2^(1/4)) and
// ties keep their natural order, so that rows running side by side stay neighbours and share
// key blocks in L2.
std::vector<int32_t> heavy_first_order(const Plan& plan);

// The backward's key-block order: the plan's CSC columns by the same measure (query blocks that
// keep each), heaviest first, so that a column the whole video keeps (Wan's first-frame sink,
// text columns) starts early; columns no query keeps come last.
std::vector<int32_t> heavy_first_columns(const Plan& plan);

// The standard order (locality order): block rows, and for each row a rotation of its block
// list, chosen so that the CTAs resident at one time read the same key blocks at about the same
// time. On long videos a head's K and V far exceed L2; this order cut HBM traffic by a fifth on
// HunyuanVideo 509 frames, which on a power-capped H100 buys clock speed (bench/gpu/NOTES.md).
// Video rows go in chunks of spatial positions (1024 tokens of a frame): all frames of one
// chunk, frame by frame, then the next chunk, so that the far-frame bands of the rows in flight
// cover the same spatial window of every key frame. Each video row starts its list at frame
// f - 1 (its dense neighbourhood first), wrapping around. Text rows (dense, the heaviest) come
// first, unrotated. Dense plans and single frames: heavy-first, unrotated.
struct LocalityOrder {
  std::vector<int32_t> order;  // a permutation of the block rows
  std::vector<int32_t> start;  // per block row: index into its CSR row where the walk begins
};
LocalityOrder locality_order(const Plan& plan);

// The backward's locality order: the key blocks (CSC columns) in chunks of spatial positions,
// all frames of one chunk frame by frame, so that the key blocks in flight share the query rows
// of their far-frame bands (Q, dO and dQ's float32 accumulator, 128 KB a query block read and
// 64 KB written back) in L2. Narrower chunks on longer videos: about `kBackwardChunkColumns`
// key blocks a chunk over all frames (an LRU model of L2, bench/gpu/HOPPER_NOTES.md "Backward
// round 6"), at most a frame; RADIAL_BACKWARD_CHUNK_TOKENS overrides the width, for tuning runs
// (read at each upload; as for the rows' RADIAL_LOCALITY_CHUNK_TOKENS, anything but a whole
// number of tokens from 1 to 2^63 - 1 is a radial::Error naming the variable). Text columns
// (kept by every query) first, columns no query keeps last.
// Lists unrotated (rotating them did not help in the model). Dense plans and single frames:
// heavy_first_columns.
inline constexpr int64_t kBackwardChunkColumns = 400;
std::vector<int32_t> locality_columns(const Plan& plan);

}  // namespace radial::schedule
