// The orders in which the kernel visits block rows (computed on the host at upload): heavy
// rows first on a coarse scale, natural order among similar rows; and the locality order with
// its rotated block lists. Need no GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <tuple>
#include <vector>

#include "schedule/row_order.hpp"
#include "radial/error.hpp"
#include "radial/plan.hpp"

namespace radial {
namespace {

// A HunyuanVideo plan (decay 0.95) with joint text tokens, `valid` of them valid.
Plan hunyuan_plan(int64_t frames, int64_t tokens_per_frame, int64_t text, int64_t valid,
                  int32_t block) {
  Geometry g;
  g.frames = frames, g.tokens_per_frame = tokens_per_frame, g.text_tokens = text,
  g.text_valid = valid;
  PlanSpec spec;
  spec.model = Model::hunyuan, spec.decay_factor = 0.95, spec.block_size = block;
  return make_plan(g, spec);
}

::testing::AssertionResult is_permutation_of_n(const std::vector<int32_t>& order, int32_t n) {
  if (order.size() != static_cast<size_t>(n)) {
    return ::testing::AssertionFailure() << order.size() << " entries for " << n;
  }
  std::vector<int32_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  for (int32_t i = 0; i < n; ++i) {
    if (sorted[i] != i) return ::testing::AssertionFailure() << i << " missing or repeated";
  }
  return ::testing::AssertionSuccess();
}

// Sets an environment variable for a scope (unset again at its end, also when a test fails).
struct ScopedEnv {
  const char* name;
  ScopedEnv(const char* n, const char* value) : name(n) { setenv(name, value, 1); }
  ~ScopedEnv() { unsetenv(name); }
};

TEST(HeavyFirstOrder, PermutationWithHeavyRowsFirst) {
  const Plan plan = hunyuan_plan(9, 300, 150, 100, 64);
  const std::vector<int32_t> order = schedule::heavy_first_order(plan);
  ASSERT_TRUE(is_permutation_of_n(order, plan.block_rows));

  const auto count = [&](int32_t r) { return plan.row_offset[r + 1] - plan.row_offset[r]; };
  const auto bucket = [&](int32_t r) { return std::floor(4.0 * std::log2(count(r))); };
  for (size_t i = 1; i < order.size(); ++i) {
    // Never a row of a clearly lighter class (more than 2^(1/4) lighter) before a heavier one.
    ASSERT_GE(bucket(order[i - 1]), bucket(order[i])) << "position " << i;
    if (bucket(order[i - 1]) == bucket(order[i])) ASSERT_LT(order[i - 1], order[i]);
  }
  // The dense text rows (the heaviest) come first.
  const int32_t heaviest = *std::max_element(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return count(a) < count(b);
  });
  EXPECT_EQ(bucket(order[0]), bucket(heaviest));
  // A text row is dense up to the last key block holding a valid key.
  EXPECT_EQ(count(plan.block_rows - 1), (plan.key_limit - 1) / plan.block_size() + 1);
}

TEST(LocalityOrder, SpatialChunksFrameByFrameAndRotatedLists) {
  const Plan plan = hunyuan_plan(12, 3000, 300, 200, 128);
  const Geometry& g = plan.geometry;
  const schedule::LocalityOrder local = schedule::locality_order(plan);
  ASSERT_TRUE(is_permutation_of_n(local.order, plan.block_rows));
  ASSERT_EQ(local.start.size(), static_cast<size_t>(plan.block_rows));

  // Text rows (first token past the video) first; then spatial chunks of 8 blocks, each over
  // all frames in frame order.
  const int64_t video = g.video_tokens();
  const int32_t text_rows = plan.block_rows - static_cast<int32_t>((video + 127) / 128);
  for (int32_t i = 0; i < text_rows; ++i) EXPECT_GE(local.order[i] * 128LL, video);
  const auto key = [&](int32_t r) {
    const int64_t t = r * 128LL;
    return std::make_tuple((t % 3000) / 128 / 8, t / 3000, (t % 3000) / 128 % 8);
  };
  for (size_t i = static_cast<size_t>(text_rows) + 1; i < local.order.size(); ++i)
    ASSERT_LT(key(local.order[i - 1]), key(local.order[i])) << "position " << i;
  EXPECT_EQ(local.order[text_rows], 0);
  EXPECT_EQ(local.order[text_rows + 1], 1);
  EXPECT_EQ(local.order[text_rows + 8], 3000 / 128 + 1);  // block 24 starts in frame 1 at 72

  // Each video row's walk starts at its first kept block in frame f - 1 or later.
  for (int32_t r = 0; r < plan.block_rows; ++r) {
    const int32_t begin = plan.row_offset[r], count = plan.row_offset[r + 1] - begin;
    ASSERT_GE(local.start[r], 0);
    ASSERT_LT(local.start[r], count);
    const int64_t t = r * 128LL;
    if (t >= video) {
      EXPECT_EQ(local.start[r], 0) << "text row " << r;
      continue;
    }
    const int64_t from = std::max<int64_t>(t / 3000 - 1, 0) * 3000 / 128;
    EXPECT_GE(plan.col_index[begin + local.start[r]], from) << "row " << r;
    if (local.start[r] > 0) EXPECT_LT(plan.col_index[begin + local.start[r] - 1], from);
  }
  // A row in frame 6 starts inside its list, not at the beginning.
  const int32_t mid = static_cast<int32_t>(6 * 3000 / 128 + 5);
  EXPECT_GT(local.start[mid], 0);
}

TEST(LocalityOrder, DensePlansKeepHeavyFirstUnrotated) {
  Geometry g;
  g.frames = 4, g.tokens_per_frame = 500;
  const Plan plan = make_dense_plan(g, 128);
  const schedule::LocalityOrder local = schedule::locality_order(plan);
  EXPECT_EQ(local.order, schedule::heavy_first_order(plan));
  for (int32_t s : local.start) EXPECT_EQ(s, 0);
}

// The backward's key-block order: a permutation of the columns, heavy CSC columns first on the
// same coarse scale, natural order among similar ones, columns no query keeps (past key_limit)
// last.
TEST(HeavyFirstColumns, PermutationWithHeavyColumnsFirstAndEmptyLast) {
  const Plan plan = hunyuan_plan(9, 300, 300, 40, 64);
  const std::vector<int32_t> order = schedule::heavy_first_columns(plan);
  ASSERT_TRUE(is_permutation_of_n(order, plan.block_cols));

  const auto count = [&](int32_t c) { return plan.col_offset[c + 1] - plan.col_offset[c]; };
  const auto bucket = [&](int32_t c) {
    return count(c) > 0 ? std::floor(4.0 * std::log2(count(c))) : -1.0;
  };
  for (size_t i = 1; i < order.size(); ++i) {
    ASSERT_GE(bucket(order[i - 1]), bucket(order[i])) << "position " << i;
    if (bucket(order[i - 1]) == bucket(order[i])) ASSERT_LT(order[i - 1], order[i]);
  }
  // Key blocks wholly past key_limit are kept by no query and come last, in natural order.
  const int32_t first_empty = static_cast<int32_t>((plan.key_limit + 63) / 64);
  ASSERT_LT(first_empty, plan.block_cols);
  for (int32_t c = first_empty; c < plan.block_cols; ++c) {
    EXPECT_EQ(count(c), 0) << "column " << c;
    EXPECT_EQ(order[c], c) << "the empty columns, last and in natural order";
  }
}

// The backward's locality order: text columns first, then chunks of spatial positions over all
// frames, frame by frame (chunk width about kBackwardChunkColumns over the frames, at most a
// frame), columns no query keeps last; RADIAL_BACKWARD_CHUNK_TOKENS overrides the width.
TEST(LocalityColumns, SpatialChunksFrameByFrameTextFirstEmptyLast) {
  const Plan plan = hunyuan_plan(80, 1280, 384, 100, 128);
  const int64_t video = plan.geometry.video_tokens();
  const auto count = [&](int32_t c) { return plan.col_offset[c + 1] - plan.col_offset[c]; };
  const auto check = [&](const std::vector<int32_t>& order, int64_t chunk) {
    ASSERT_TRUE(is_permutation_of_n(order, plan.block_cols));
    // Text columns holding a valid key (kept by every query), then the video's, then the
    // text columns past key_limit (kept by none).
    const int32_t video_cols = static_cast<int32_t>(video / 128);  // 1280 = 10 blocks a frame
    const int32_t kept_text = static_cast<int32_t>((plan.key_limit + 127) / 128) - video_cols;
    const int32_t empty = plan.block_cols - video_cols - kept_text;
    ASSERT_EQ(kept_text, 1);
    ASSERT_EQ(empty, 2);
    for (int32_t i = 0; i < kept_text; ++i) {
      EXPECT_EQ(order[i], video_cols + i);
      EXPECT_EQ(count(order[i]), plan.block_rows) << "a text column is kept by every query";
    }
    for (int32_t i = plan.block_cols - empty; i < plan.block_cols; ++i) {
      EXPECT_EQ(count(order[i]), 0) << "position " << i;
    }
    const auto key = [&](int32_t c) {
      const int64_t s = c % 10;
      return std::make_tuple(s / chunk, c / 10, s % chunk);
    };
    for (int32_t i = kept_text + 1; i < kept_text + video_cols; ++i) {
      ASSERT_LT(key(order[i - 1]), key(order[i])) << "position " << i;
    }
    EXPECT_EQ(order[kept_text + 1], chunk > 1 ? 1 : 10) << "the second column";
  };
  // 400 columns over 80 frames: chunks of 5 blocks.
  check(schedule::locality_columns(plan), 5);
  {
    const ScopedEnv narrow_chunks("RADIAL_BACKWARD_CHUNK_TOKENS", "256");
    check(schedule::locality_columns(plan), 2);
  }

  // Few frames: the chunk is the whole frame (then the order is natural in the video).
  const Plan short_plan = hunyuan_plan(3, 1280, 384, 100, 128);
  const std::vector<int32_t> whole = schedule::locality_columns(short_plan);
  for (int32_t c = 0; c < 30; ++c) EXPECT_EQ(whole[1 + c], c);
}

TEST(LocalityColumns, DensePlansAndSingleFramesKeepHeavyFirst) {
  Geometry g;
  g.frames = 4, g.tokens_per_frame = 500;
  const Plan dense = make_dense_plan(g, 128);
  EXPECT_EQ(schedule::locality_columns(dense), schedule::heavy_first_columns(dense));
  g.frames = 1, g.tokens_per_frame = 2000, g.text_tokens = 100;
  const Plan single = make_plan(g, PlanSpec{});
  EXPECT_EQ(schedule::locality_columns(single), schedule::heavy_first_columns(single));
}

// The chunk-width overrides (tuning runs) take a whole number of tokens from 1 to 2^63 - 1;
// anything else is an error naming the variable, never a silent width. At the extremes that are
// accepted the orders stay permutations (a chunk wider than a frame: one group).
TEST(LocalityOrders, ChunkOverridesRefuseBadValuesAndTakeExtremes) {
  const Plan plan = hunyuan_plan(12, 1280, 200, 90, 128);
  const auto rows = [&] { return schedule::locality_order(plan).order; };
  const auto cols = [&] { return schedule::locality_columns(plan); };
  for (const char* name : {"RADIAL_LOCALITY_CHUNK_TOKENS", "RADIAL_BACKWARD_CHUNK_TOKENS"}) {
    SCOPED_TRACE(name);
    for (const char* bad : {"0", "-1", "-9223372036854775808", "9223372036854775808",
                            "18446744073709551616", "abc", "128x", "", " "}) {
      SCOPED_TRACE(std::string("value \"") + bad + "\"");
      const ScopedEnv env(name, bad);
      try {
        std::string(name) == "RADIAL_LOCALITY_CHUNK_TOKENS" ? rows() : cols();
        ADD_FAILURE() << "accepted";
      } catch (const Error& e) {
        EXPECT_EQ(e.argument(), name);
        EXPECT_NE(std::string(e.what()).find("from 1 to 2^63 - 1"), std::string::npos) << e.what();
      }
    }
    for (const char* good : {"1", "2147483648", "9223372036854775807"}) {
      SCOPED_TRACE(good);
      const ScopedEnv env(name, good);
      EXPECT_TRUE(is_permutation_of_n(rows(), plan.block_rows));
      EXPECT_TRUE(is_permutation_of_n(cols(), plan.block_cols));
    }
  }
}

}  // namespace
}  // namespace radial
