// The Hopper kernels' tile orders (tile_order.hpp).
#include "schedule/tile_order.hpp"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <string>
#include <utility>

#include "radial/error.hpp"

namespace radial::schedule {
namespace {

// row_order has one entry per block row, each a block row.
void check_row_order(const std::vector<int32_t>& row_order, int64_t rows) {
  require(static_cast<int64_t>(row_order.size()) == rows, "row_order",
          "one entry per block row (" + std::to_string(rows) + ")",
          static_cast<int64_t>(row_order.size()));
  for (const int32_t row : row_order) {
    if (row < 0 || row >= rows) {
      throw Error("row_order", "block rows in [0, " + std::to_string(rows) + ")",
                  std::to_string(row));
    }
  }
}

}  // namespace

std::vector<int32_t> handout_order(const std::vector<int32_t>& row_blocks,
                                   const std::vector<int32_t>& row_order, int64_t batch_heads,
                                   int64_t tail) {
  const int64_t rows = static_cast<int64_t>(row_blocks.size());
  check_row_order(row_order, rows);
  require(batch_heads >= 1, "batch_heads", "at least 1", batch_heads);
  require(tail >= 0, "tail", "at least 0", tail);
  const int64_t total = batch_heads * rows;
  require(total <= std::numeric_limits<int32_t>::max(), "batch x heads x block rows",
          "at most 2^31 - 1 tiles", total);

  std::vector<int32_t> order;
  order.reserve(static_cast<size_t>(total));
  for (int64_t bh = 0; bh < batch_heads; ++bh) {
    for (const int32_t row : row_order) order.push_back(static_cast<int32_t>(bh * rows + row));
  }
  const auto blocks = [&](int32_t tile) { return row_blocks[static_cast<size_t>(tile % rows)]; };
  std::stable_sort(order.end() - std::min(tail, total), order.end(),
                   [&](int32_t a, int32_t b) { return blocks(a) > blocks(b); });
  return order;
}

std::vector<int32_t> tile192_order(const std::vector<int32_t>& row_order, int64_t seq) {
  require(seq >= 1 && seq <= std::numeric_limits<int32_t>::max(), "seq",
          "1 to 2^31 - 1 tokens", seq);
  const int64_t rows = (seq + 127) / 128, tiles = (seq + 191) / 192;
  check_row_order(row_order, rows);
  std::vector<int32_t> order;
  order.reserve(static_cast<size_t>(tiles));
  std::vector<bool> placed(static_cast<size_t>(tiles), false);
  for (const int32_t row : row_order) {
    // The tiles that hold the block row's first and last token (a 128-row block spans one or
    // two 192-row tiles).
    const int64_t last = std::min<int64_t>(128 * static_cast<int64_t>(row) + 127, seq - 1);
    for (const int64_t tile : {128 * static_cast<int64_t>(row) / 192, last / 192}) {
      if (placed[static_cast<size_t>(tile)]) continue;
      placed[static_cast<size_t>(tile)] = true;
      order.push_back(static_cast<int32_t>(tile));
    }
  }
  require(static_cast<int64_t>(order.size()) == tiles, "row_order",
          "a permutation of the block rows", "a list that leaves tiles out");
  return order;
}

}  // namespace radial::schedule
