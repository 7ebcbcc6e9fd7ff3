// The Hopper kernels' tile orders (src/schedule/tile_order.hpp), built on the host. The
// persistent kernel's hand-out order: every tile exactly once, the row order within each batch
// x head, heads in turn, and the tail longest first. The three-warpgroup FP8 kernel's 192-row
// tiles: every tile once, each where the first block row that overlaps it comes. Needs no GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "schedule/tile_order.hpp"
#include "radial/error.hpp"
#include "error_checks.hpp"

namespace radial {
namespace {

using schedule::handout_order;
using schedule::tile192_order;

// The argument that call()'s Error names, or kNothingThrown.
std::string argument(const std::function<void()>& call) { return thrown_by(call).argument; }

TEST(TileHandout, RowOrderPerHeadThenTheTailLongestFirst) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    const int rows = 1 + static_cast<int>(rng() % 300);
    const int64_t batch_heads = 1 + rng() % 12;
    const int64_t total = batch_heads * rows;
    const int64_t tail = rng() % (total + 5);
    std::vector<int32_t> row_blocks(static_cast<size_t>(rows));
    for (auto& b : row_blocks) b = static_cast<int32_t>(rng() % 200);
    std::vector<int32_t> row_order(static_cast<size_t>(rows));
    std::iota(row_order.begin(), row_order.end(), 0);
    std::shuffle(row_order.begin(), row_order.end(), rng);

    const std::vector<int32_t> order = handout_order(row_blocks, row_order, batch_heads, tail);
    ASSERT_EQ(static_cast<int64_t>(order.size()), total);
    std::vector<int32_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    for (int64_t t = 0; t < total; ++t) ASSERT_EQ(sorted[static_cast<size_t>(t)], t);

    const int64_t head_end = total - std::min(tail, total);
    for (int64_t i = 0; i < head_end; ++i) {  // before the tail: exactly the row order
      const int64_t bh = i / rows;
      ASSERT_EQ(order[static_cast<size_t>(i)], bh * rows + row_order[static_cast<size_t>(i % rows)])
          << "trial " << trial << " position " << i;
    }
    for (int64_t i = head_end + 1; i < total; ++i) {  // the tail: never a longer tile later
      ASSERT_GE(row_blocks[static_cast<size_t>(order[static_cast<size_t>(i - 1)] % rows)],
                row_blocks[static_cast<size_t>(order[static_cast<size_t>(i)] % rows)])
          << "trial " << trial << " position " << i;
    }
  }
}

TEST(TileHandout, SmallExample) {
  const std::vector<int32_t> row_blocks = {3, 9, 1, 5, 7};
  const std::vector<int32_t> row_order = {4, 0, 1, 2, 3};
  // ids bh * 5 + row; the tail (3 tiles) is bh 1 rows 1 (9 blocks), 2 (1), 3 (5).
  const std::vector<int32_t> expected = {4, 0, 1, 2, 3, 9, 5, 6, 8, 7};
  EXPECT_EQ(handout_order(row_blocks, row_order, 2, 3), expected);
}

TEST(TileHandout, BadArgumentsNameTheArgument) {
  const std::vector<int32_t> blocks = {1, 2, 3};
  EXPECT_EQ(argument([&] { handout_order(blocks, {0, 1}, 1, 4); }), "row_order");
  EXPECT_EQ(argument([&] { handout_order(blocks, {0, 1, 3}, 1, 4); }), "row_order");
  EXPECT_EQ(argument([&] { handout_order(blocks, {0, 1, 2}, 0, 4); }), "batch_heads");
  EXPECT_EQ(argument([&] { handout_order(blocks, {0, 1, 2}, 1, -1); }), "tail");
  // 3 x 2^30 tiles do not fit the kernel's 32-bit tile ids (refused before any allocation).
  EXPECT_EQ(argument([&] { handout_order(blocks, {0, 1, 2}, int64_t{1} << 30, 0); }),
            "batch x heads x block rows");
}

// The 192-row tiles that a block row's tokens fall in, token by token (independent of the
// order's arithmetic).
std::vector<int32_t> tiles_of_row(int32_t row, int64_t seq) {
  std::vector<int32_t> tiles;
  for (int64_t s = 128 * static_cast<int64_t>(row); s < std::min<int64_t>(128 * (row + 1), seq);
       ++s) {
    const auto tile = static_cast<int32_t>(s / 192);
    if (tiles.empty() || tiles.back() != tile) tiles.push_back(tile);
  }
  return tiles;
}

TEST(Tile192Order, EachTileWhereItsFirstBlockRowComes) {
  std::mt19937 rng(11);
  for (const int64_t seq : {1, 100, 128, 191, 192, 193, 256, 383, 384, 385, 1000, 69120}) {
    SCOPED_TRACE("seq " + std::to_string(seq));
    const int64_t rows = (seq + 127) / 128, tiles = (seq + 191) / 192;
    std::vector<int32_t> row_order(static_cast<size_t>(rows));
    std::iota(row_order.begin(), row_order.end(), 0);
    // Natural rows give natural tiles.
    std::vector<int32_t> natural(static_cast<size_t>(tiles));
    std::iota(natural.begin(), natural.end(), 0);
    EXPECT_EQ(tile192_order(row_order, seq), natural);
    for (int trial = 0; trial < 3; ++trial) {
      std::shuffle(row_order.begin(), row_order.end(), rng);
      std::vector<int32_t> expected;
      for (const int32_t row : row_order)
        for (const int32_t tile : tiles_of_row(row, seq))
          if (std::find(expected.begin(), expected.end(), tile) == expected.end())
            expected.push_back(tile);
      ASSERT_EQ(static_cast<int64_t>(expected.size()), tiles);
      EXPECT_EQ(tile192_order(row_order, seq), expected);
    }
  }
}

TEST(Tile192Order, SmallExample) {
  // 640 tokens: block rows 0-4, tiles 0-3 (rows 0-191, 192-383, 384-575, 576-639). Row 4
  // (512-639) lies in tiles 2 and 3, row 1 (128-255) in 0 and 1, row 3 (384-511) in 2.
  EXPECT_EQ(tile192_order({4, 1, 3, 0, 2}, 640), (std::vector<int32_t>{2, 3, 0, 1}));
}

TEST(Tile192Order, BadArgumentsNameTheArgument) {
  EXPECT_EQ(argument([] { tile192_order({0, 1}, 300); }), "row_order");      // 3 rows
  EXPECT_EQ(argument([] { tile192_order({0, 1, 3}, 300); }), "row_order");   // row 3
  EXPECT_EQ(argument([] { tile192_order({0, -1, 2}, 300); }), "row_order");  // row -1
  EXPECT_EQ(argument([] { tile192_order({0, 0, 0}, 300); }), "row_order");   // tiles left out
  EXPECT_EQ(argument([] { tile192_order({}, 0); }), "seq");
  EXPECT_EQ(argument([] { tile192_order({}, -1); }), "seq");
  EXPECT_EQ(argument([] { tile192_order({}, int64_t{1} << 31); }), "seq");
  EXPECT_EQ(argument([] { tile192_order({}, std::numeric_limits<int64_t>::max()); }), "seq");
}

}  // namespace
}  // namespace radial
