// The order in which the persistent Hopper kernel hands out its tiles (batch x head, query
// block): pure host code of the plan layer, built once per plan, batch x heads and SM count,
// then kept on the device beside the plan (src/cuda/plan_device.hpp). The CTAs take the next
// tile of this order from an atomic counter whenever they finish one, so the hand-out adapts
// to how fast each SM really goes.
#pragma once

#include <cstdint>
#include <vector>

namespace radial::schedule {

// Tile ids (bh * block_rows + block row) in hand-out order: each batch x head in turn, its rows
// in `row_order` (so that CTAs running side by side share K/V blocks in L2), except that the
// last `tail` tiles go longest first (kept blocks, row_blocks[row]), so that no long tile
// starts last. Sorting earlier would scramble the locality order and cost L2 hits.
std::vector<int32_t> handout_order(const std::vector<int32_t>& row_blocks,
                                   const std::vector<int32_t>& row_order, int64_t batch_heads,
                                   int64_t tail);

// The order of the three-warpgroup FP8 kernel's 192-row tiles within each (batch, head)
// (src/cuda/hopper/fwd_fp8_wg3.cuh: tile t holds query rows 192 t .. 192 t + 191 of a sequence
// of `seq` tokens): the tiles in the order of the block rows of `row_order`, each tile where
// the first of its block rows comes, so that CTAs running side by side share K/V blocks in L2
// as the one-block tiles of the other kernels do. A permutation of 0 .. ceil(seq / 192) - 1.
std::vector<int32_t> tile192_order(const std::vector<int32_t>& row_order, int64_t seq);

}  // namespace radial::schedule
