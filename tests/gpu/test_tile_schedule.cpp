// The persistent Hopper kernel's tile schedule (src/cuda/tile_schedule.hpp), built on the host:
// every tile exactly once, CTAs balanced within one tile of each other, the row order kept
// (tiles of one head together) but for the tail, longest first. Needs no GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "../../src/cuda/plan_device.hpp"
#include "../../src/cuda/tile_schedule.hpp"
#include "radial/error.hpp"
#include "radial/plan.hpp"

namespace radial {
namespace {

using cuda_detail::make_tile_schedule;
using cuda_detail::TileSchedule;

struct Loads {
  std::vector<int64_t> per_cta;
  int64_t heaviest_tile = 0;
};

// Checks that the schedule is a partition of all tiles and returns each CTA's work (kept
// blocks + 1 per tile, the cost model of the scheduler).
Loads check_partition(const TileSchedule& s, const std::vector<int32_t>& row_blocks,
                      int64_t batch_heads, int ctas) {
  const int64_t rows = static_cast<int64_t>(row_blocks.size());
  Loads loads;
  EXPECT_EQ(s.cta_offset.size(), static_cast<size_t>(ctas) + 1);
  EXPECT_EQ(s.cta_offset.front(), 0);
  EXPECT_EQ(s.cta_offset.back(), static_cast<int32_t>(s.tiles.size()));
  std::vector<int> seen(static_cast<size_t>(batch_heads * rows), 0);
  for (int c = 0; c < ctas; ++c) {
    EXPECT_LE(s.cta_offset[c], s.cta_offset[c + 1]);
    int64_t load = 0;
    for (int32_t i = s.cta_offset[c]; i < s.cta_offset[c + 1]; ++i) {
      const int32_t tile = s.tiles[static_cast<size_t>(i)];
      EXPECT_GE(tile, 0);
      EXPECT_LT(tile, batch_heads * rows);
      ++seen[static_cast<size_t>(tile)];
      const int64_t cost = row_blocks[static_cast<size_t>(tile % rows)] + 1;
      load += cost;
      loads.heaviest_tile = std::max(loads.heaviest_tile, cost);
    }
    loads.per_cta.push_back(load);
  }
  for (size_t t = 0; t < seen.size(); ++t) EXPECT_EQ(seen[t], 1) << "tile " << t;
  return loads;
}

TEST(TileSchedule, EveryTileOnceAndBalancedWithinOneTile) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    const int rows = 1 + static_cast<int>(rng() % 300);
    const int64_t batch_heads = 1 + rng() % 12;
    const int ctas = 1 + static_cast<int>(rng() % 140);
    std::vector<int32_t> row_blocks(static_cast<size_t>(rows));
    for (auto& b : row_blocks) b = static_cast<int32_t>(rng() % 200);
    std::vector<int32_t> order(static_cast<size_t>(rows));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    const TileSchedule s = make_tile_schedule(row_blocks, order, batch_heads, ctas);
    const Loads loads = check_partition(s, row_blocks, batch_heads, ctas);
    const auto [lo, hi] = std::minmax_element(loads.per_cta.begin(), loads.per_cta.end());
    // List scheduling: a CTA gets a tile only while it is the least loaded, so no CTA ends
    // more than one tile after another (unless there are fewer tiles than CTAs).
    if (batch_heads * rows >= ctas) {
      EXPECT_LE(*hi - *lo, loads.heaviest_tile) << "trial " << trial;
    }
  }
}

TEST(TileSchedule, RowOrderThenTheTailLongestFirst) {
  // One CTA: its list is the row order within each head, heads in order, except the last
  // 2 tiles (2 x ctas), longest first.
  const std::vector<int32_t> row_blocks = {3, 9, 1, 5, 7};
  const std::vector<int32_t> order = {4, 0, 1, 2, 3};
  const TileSchedule one = make_tile_schedule(row_blocks, order, 2, 1);
  // ids bh * 5 + row; the tail is bh 1 rows 2 (1 block) and 3 (5 blocks).
  const std::vector<int32_t> expected = {4, 0, 1, 2, 3, 9, 5, 6, 8, 7};
  EXPECT_EQ(one.tiles, expected);
}

TEST(TileSchedule, WanVideoOnAnH100SizedGrid) {
  // Wan 2.1 at 69 frames, 720p (the bench's first case), 40 heads over 132 CTAs.
  Geometry g;
  g.frames = 18, g.tokens_per_frame = 3840;
  PlanSpec spec;
  spec.model = Model::wan, spec.decay_factor = 0.2;
  const Plan plan = make_plan(g, spec);
  std::vector<int32_t> row_blocks(static_cast<size_t>(plan.block_rows));
  for (int32_t r = 0; r < plan.block_rows; ++r) row_blocks[r] = plan.row_offset[r + 1] - plan.row_offset[r];
  const std::vector<int32_t> order = cuda_detail::locality_order(plan).order;
  const TileSchedule s = make_tile_schedule(row_blocks, order, 40, 132);
  const Loads loads = check_partition(s, row_blocks, 40, 132);
  const double mean =
      std::accumulate(loads.per_cta.begin(), loads.per_cta.end(), 0.0) / loads.per_cta.size();
  const double worst = *std::max_element(loads.per_cta.begin(), loads.per_cta.end());
  EXPECT_LT(worst / mean, 1.01) << "the last CTA ends at most 1% after the average";
  // CTAs side by side work on neighbouring tiles: the k-th tiles of all CTAs span at most
  // three heads (of 40; each CTA runs about 164 tiles).
  for (int k : {0, 50, 100}) {
    int32_t lo = INT32_MAX, hi = 0;
    for (int c = 0; c < 132; ++c) {
      const int32_t tile = s.tiles[static_cast<size_t>(s.cta_offset[c] + k)];
      lo = std::min(lo, tile / plan.block_rows), hi = std::max(hi, tile / plan.block_rows);
    }
    EXPECT_LE(hi - lo, 2) << "k-th tiles of the CTAs span heads " << lo << ".." << hi;
  }
}

TEST(TileSchedule, BadArgumentsNameTheArgument) {
  const std::vector<int32_t> blocks = {1, 2, 3};
  const auto argument = [](auto&& call) {
    try {
      call();
    } catch (const Error& e) {
      return e.argument();
    }
    return std::string("(nothing thrown)");
  };
  EXPECT_EQ(argument([&] { make_tile_schedule(blocks, {0, 1}, 1, 4); }), "row_order");
  EXPECT_EQ(argument([&] { make_tile_schedule(blocks, {0, 1, 3}, 1, 4); }), "row_order");
  EXPECT_EQ(argument([&] { make_tile_schedule(blocks, {0, 1, 2}, 0, 4); }), "batch_heads");
  EXPECT_EQ(argument([&] { make_tile_schedule(blocks, {0, 1, 2}, 1, 0); }), "ctas");
}

}  // namespace
}  // namespace radial
