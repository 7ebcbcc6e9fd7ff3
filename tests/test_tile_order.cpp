// The persistent Hopper kernel's hand-out order (src/schedule/tile_order.hpp), built on the
// host: every tile exactly once, the row order within each batch x head, heads in turn, and
// the tail longest first. Needs no GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "schedule/tile_order.hpp"
#include "radial/error.hpp"

namespace radial {
namespace {

using schedule::handout_order;

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
  const auto argument = [](auto&& call) {
    try {
      call();
    } catch (const Error& e) {
      return e.argument();
    }
    return std::string("(nothing thrown)");
  };
  EXPECT_EQ(argument([&] { handout_order(blocks, {0, 1}, 1, 4); }), "row_order");
  EXPECT_EQ(argument([&] { handout_order(blocks, {0, 1, 3}, 1, 4); }), "row_order");
  EXPECT_EQ(argument([&] { handout_order(blocks, {0, 1, 2}, 0, 4); }), "batch_heads");
  EXPECT_EQ(argument([&] { handout_order(blocks, {0, 1, 2}, 1, -1); }), "tail");
  // 3 x 2^30 tiles do not fit the kernel's 32-bit tile ids (refused before any allocation).
  EXPECT_EQ(argument([&] { handout_order(blocks, {0, 1, 2}, int64_t{1} << 30, 0); }),
            "batch x heads x block rows");
}

}  // namespace
}  // namespace radial
