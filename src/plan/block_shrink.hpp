// Step 2 of the rules: shrink one frame pair's token mask to blocks, in O(1) per block.
#pragma once

#include <cstdint>
#include <vector>

namespace radial::plan_detail {

// Kept canvas blocks (p, q) for q in [q_begin, q_end): one run of a canvas block row.
struct BlockRun {
  int32_t p = 0, q_begin = 0, q_end = 0;
};

// The frame pair's band |c - r| <= half_width (T x T spatial grid) placed on a canvas of
// k*B x k*B cells at offset (row_offset, col_offset), k = ceil(T / B). Returns the kept canvas
// blocks (p, q), p and q in 0..k-1, as maximal runs of consecutive q, row by row (so a full
// band of k^2 blocks takes k runs). A column of a block is non-empty when any of its B rows is
// set, dense when more than B/3 are; a block is kept when more than 60% of its non-empty
// columns are dense.
std::vector<BlockRun> shrink_band_to_blocks(int64_t tokens_per_frame, int block_size,
                                            int64_t row_offset, int64_t col_offset,
                                            int64_t half_width);

}  // namespace radial::plan_detail
