// List scheduling of the persistent kernel's tiles (tile_schedule.hpp).
#include "cuda/tile_schedule.hpp"

#include <algorithm>
#include <cstddef>
#include <functional>
#include <limits>
#include <queue>
#include <string>
#include <utility>

#include "radial/error.hpp"

namespace radial::cuda_detail {

TileSchedule make_tile_schedule(const std::vector<int32_t>& row_blocks,
                                const std::vector<int32_t>& row_order, int64_t batch_heads,
                                int ctas) {
  const int64_t rows = static_cast<int64_t>(row_blocks.size());
  require(static_cast<int64_t>(row_order.size()) == rows, "row_order",
          "one entry per block row (" + std::to_string(rows) + ")",
          static_cast<int64_t>(row_order.size()));
  require(batch_heads >= 1, "batch_heads", "at least 1", batch_heads);
  require(ctas >= 1, "ctas", "at least 1", ctas);
  const int64_t total = batch_heads * rows;
  require(total <= std::numeric_limits<int32_t>::max(), "batch x heads x block rows",
          "at most 2^31 - 1 tiles", total);

  for (const int32_t row : row_order) {
    if (row < 0 || row >= rows) {
      throw Error("row_order", "block rows in [0, " + std::to_string(rows) + ")",
                  std::to_string(row));
    }
  }

  // Each CTA's tiles, assigned in the order they would start.
  std::vector<std::vector<int32_t>> per_cta(static_cast<size_t>(ctas));
  using Slot = std::pair<int64_t, int>;  // (work so far, cta): the least loaded on top
  std::priority_queue<Slot, std::vector<Slot>, std::greater<Slot>> free_at;
  for (int c = 0; c < ctas; ++c) free_at.push({0, c});

  const int64_t window = 2 * static_cast<int64_t>(ctas);
  std::vector<std::pair<int32_t, int32_t>> batch;  // (kept blocks, tile id)
  batch.reserve(static_cast<size_t>(window));
  const auto flush = [&] {
    std::stable_sort(batch.begin(), batch.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    for (const auto& [blocks, tile] : batch) {
      auto [load, c] = free_at.top();
      free_at.pop();
      per_cta[static_cast<size_t>(c)].push_back(tile);
      free_at.push({load + blocks + 1, c});
    }
    batch.clear();
  };
  for (int64_t bh = 0; bh < batch_heads; ++bh) {
    for (int64_t i = 0; i < rows; ++i) {
      const int32_t row = row_order[static_cast<size_t>(i)];
      batch.emplace_back(row_blocks[static_cast<size_t>(row)],
                         static_cast<int32_t>(bh * rows + row));
      if (static_cast<int64_t>(batch.size()) == window) flush();
    }
  }
  flush();

  TileSchedule schedule;
  schedule.cta_offset.reserve(static_cast<size_t>(ctas) + 1);
  schedule.tiles.reserve(static_cast<size_t>(total));
  schedule.cta_offset.push_back(0);
  for (const auto& list : per_cta) {
    schedule.tiles.insert(schedule.tiles.end(), list.begin(), list.end());
    schedule.cta_offset.push_back(static_cast<int32_t>(schedule.tiles.size()));
  }
  return schedule;
}

}  // namespace radial::cuda_detail
