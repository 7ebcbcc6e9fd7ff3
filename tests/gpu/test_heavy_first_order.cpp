// The order in which the kernel visits block rows (computed on the host at upload): a
// permutation, heavy rows first on a coarse scale, natural order among similar rows. Needs no
// GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "../../src/cuda/plan_device.hpp"
#include "radial/plan.hpp"

namespace radial {
namespace {

TEST(HeavyFirstOrder, PermutationWithHeavyRowsFirst) {
  Geometry g;
  g.frames = 9, g.tokens_per_frame = 300, g.text_tokens = 150, g.text_valid = 100;
  PlanSpec spec;
  spec.model = Model::hunyuan, spec.decay_factor = 0.95, spec.block_size = 64;
  const Plan plan = make_plan(g, spec);
  const std::vector<int32_t> order = cuda_detail::heavy_first_order(plan);
  ASSERT_EQ(order.size(), static_cast<size_t>(plan.block_rows));
  std::vector<int32_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  for (int32_t r = 0; r < plan.block_rows; ++r) ASSERT_EQ(sorted[r], r);

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

}  // namespace
}  // namespace radial
