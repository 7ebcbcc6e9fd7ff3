// The persistent Hopper kernel's work list: which (batch x head, query block) tiles each
// resident CTA runs, and in which order. Built on the host once per plan, batch x heads and
// CTA count, then kept on the device beside the plan (plan_device.hpp).
#pragma once

#include <cstdint>
#include <vector>

namespace radial::cuda_detail {

struct TileSchedule {
  std::vector<int32_t> cta_offset;  // ctas + 1: CTA c runs tiles[cta_offset[c] .. cta_offset[c+1])
  std::vector<int32_t> tiles;       // tile ids: bh * block_rows + block row
};

// Tiles are handed out as a dynamic scheduler would, simulated here so that the kernel needs
// no atomic counter (which two launches sharing a plan on two streams would corrupt):
// walking the tiles in `row_order` within each batch x head (so that CTAs running side by
// side share K/V blocks in L2), the last 2 x ctas tiles longest first, each tile goes to the
// CTA whose work so far (kept blocks + 1 per tile) is least. The launch then ends within about
// one tile of perfect balance, with no long tile starting last.
// row_blocks[r]: kept key blocks of block row r; row_order: a permutation of the block rows.
TileSchedule make_tile_schedule(const std::vector<int32_t>& row_blocks,
                                const std::vector<int32_t>& row_order, int64_t batch_heads,
                                int ctas);

}  // namespace radial::cuda_detail
