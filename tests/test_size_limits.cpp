// Sizes at and past the limits: products that would wrap, plans past kMaxKeptBlocks, strides
// whose largest offset overflows, thread counts past the machine's. Each is a radial::Error
// naming the argument (or, for threads, the same answer as a sane count), never a wrapped value.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "../src/core/checked_math.hpp"
#include "radial/attention.hpp"
#include "radial/error.hpp"
#include "radial/plan.hpp"
#include "error_checks.hpp"

namespace radial {
namespace {

constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();

Geometry geom(int64_t F, int64_t T, int64_t text = 0) {
  Geometry g;
  g.frames = F, g.tokens_per_frame = T, g.text_tokens = text;
  return g;
}

PlanSpec spec_of(Model model, int block = 128, double decay = 1.0) {
  PlanSpec s;
  s.model = model;
  s.block_size = block;
  s.decay_factor = decay;
  return s;
}

TEST(CheckedMath, ReportsOverflowAtTheEdges) {
  EXPECT_EQ(checked::mul(int64_t{1} << 31, int64_t{1} << 31), int64_t{1} << 62);
  EXPECT_FALSE(checked::mul(int64_t{1} << 32, int64_t{1} << 31).has_value());
  EXPECT_FALSE(checked::mul(kI64Min, -1).has_value());
  EXPECT_EQ(checked::add(kI64Max - 1, 1), kI64Max);
  EXPECT_FALSE(checked::add(kI64Max, 1).has_value());
  EXPECT_FALSE(checked::add(kI64Min, -1).has_value());
  // 6148914691236517206 * 3 wraps to 2 in 64 bits: the product the bench once allocated.
  EXPECT_FALSE(checked::product({6148914691236517206, 3}).has_value());
  EXPECT_EQ(checked::product({2, 3, 5, 7}), 210);
  EXPECT_EQ(checked::mul_or_max(kI64Max, 2), kI64Max);
  EXPECT_EQ(checked::add_or_max(kI64Max, 2), kI64Max);
}

TEST(SizeLimits, TokenCountsAreCheckedBeforeTheyAreCompared) {
  // 1 video token + 2^63 - 1 text tokens wrapped to a negative total, which passed.
  expect_error([] { make_plan(geom(1, 1, kI64Max), spec_of(Model::wan)); }, "total tokens",
               {"at most 2147483647", "9223372036854775807 text tokens"});
  // 2^33 frames of 2^31 tokens wrap to 0 in 64 bits.
  expect_error([] { make_plan(geom(int64_t{1} << 33, int64_t{1} << 31), spec_of(Model::wan)); },
               "frames * tokens_per_frame", {"at most 2147483647"});
  expect_error([] { make_plan(geom(kI64Max, kI64Max), spec_of(Model::wan)); },
               "frames * tokens_per_frame", {"9223372036854775807 * 9223372036854775807"});
}

TEST(SizeLimits, PixelSizesWhoseTokenProductWrapsAreRefusedByName) {
  // (4386832 / 16) * (1076486740971536 / 16) is 2^64 + 1: it wrapped to 1 token per frame.
  expect_error([] { geometry_from_video(Model::wan, 1, 4386832, 1076486740971536); },
               "height * width", {"at most 2147483647 tokens per frame", "4386832 * 1076486740971536"});
  // Products that wrapped to 0 were reported as "tokens_per_frame ... got 0".
  expect_error([] { geometry_from_video(Model::hunyuan, 1, int64_t{1} << 36, int64_t{1} << 36); },
               "height * width", {"68719476736 * 68719476736"});
}

TEST(SizeLimits, SizeHintsNeverOverflow) {
  // The hint's "nearest" sizes stay within int64 (a negative one was printed).
  try {
    geometry_from_video(Model::wan, kI64Max, 16, 16);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.find("-"), std::string::npos) << message;
    EXPECT_NE(message.find("9223372036854775805"), std::string::npos) << message;
  }
  // The most negative values (the C ABI passes them unchecked) give plain hints.
  expect_error([] { geometry_from_video(Model::wan, kI64Min, 16, 16); }, "video_frames",
               {"such as 1"});
  expect_error([] { geometry_from_video(Model::wan, 1, kI64Min, 16); }, "height", {"such as 16"});
  expect_error([] { geometry_from_video(Model::wan, 1, 16, kI64Min + 15); }, "width", {"16"});
  // A valid 4k + 1 count of 2^61 latent frames is refused for its tokens, not wrapped.
  expect_error([] { geometry_from_video(Model::wan, kI64Max - 2, 16, 16); },
               "frames * tokens_per_frame", {"at most 2147483647"});
}

TEST(SizeLimits, PlansPastTheKeptBlockLimitAreRefusedBeforeTheyAreBuilt) {
  // One frame of 2^31 - 2 tokens would keep 2.8e14 blocks (it allocated until killed).
  expect_error([] { make_plan(geom(1, 2147483646), spec_of(Model::wan)); }, "geometry",
               {"at most 268435456 kept blocks", "kMaxKeptBlocks", "at least", "1 frames x 2147483646"});
  // Dense plans: 16,384 block rows fit exactly; one more token-block does not.
  EXPECT_EQ(kMaxKeptBlocks, int64_t{16384} * 16384);
  expect_error([] { make_dense_plan(geom(1, 16384 * 64 + 1), 64); }, "geometry",
               {"kMaxKeptBlocks", "268468225 kept blocks"});
  // A radial plan refused by the count of its pairs (lower bound past the limit).
  expect_error([] { make_plan(geom(300000, 3600), spec_of(Model::hunyuan, 128, 0.95)); },
               "geometry", {"kMaxKeptBlocks", "300000 frames x 3600 tokens"});
}

TEST(SizeLimits, ManyTinyFramesPlanByBlockRow) {
  // 10^8 frames of 2 tokens: 1,562,500 block rows, planned per block row rather than per frame.
  // Each row keeps its diagonal alone (given, as no 2-token frame fills a block enough), and
  // the CSC mirrors the CSR.
  const Plan plan = make_plan(geom(100000000, 2), spec_of(Model::wan));
  ASSERT_EQ(plan.block_rows, 1562500);
  EXPECT_EQ(plan.kept_blocks(), plan.block_rows);
  EXPECT_EQ(plan.rows_given_diagonal, plan.block_rows);
  for (int32_t r = 0; r < plan.block_rows; r += 9973) {
    ASSERT_EQ(plan.row_offset[r + 1] - plan.row_offset[r], 1);
    EXPECT_EQ(plan.col_index[plan.row_offset[r]], r);
    EXPECT_EQ(plan.row_index[plan.col_offset[r]], r);
  }
}

TEST(SizeLimits, CscIsTheTransposeWhenRowsHoldFewBlocks) {
  // Few blocks per row: the transpose runs in few column bands (one counting sort at most a
  // few passes over the rows).
  for (const auto& [F, T] : {std::pair<int64_t, int64_t>{20000, 7}, {3000, 129}, {500, 300}}) {
    const Plan plan = make_plan(geom(F, T, 100), spec_of(Model::wan, 64, 0.3));
    std::vector<std::vector<int32_t>> rows_of_column(plan.block_cols);
    for (int32_t r = 0; r < plan.block_rows; ++r)
      for (int32_t e = plan.row_offset[r]; e < plan.row_offset[r + 1]; ++e)
        rows_of_column[plan.col_index[e]].push_back(r);
    for (int32_t c = 0; c < plan.block_cols; ++c) {
      const std::vector<int32_t> got(plan.row_index.begin() + plan.col_offset[c],
                                     plan.row_index.begin() + plan.col_offset[c + 1]);
      ASSERT_EQ(got, rows_of_column[c]) << "F=" << F << " T=" << T << " column " << c;
    }
  }
}

class ViewLimits : public ::testing::Test {
 protected:
  ViewLimits() : data(kSeq * 2 * 16, 0.25f), out_data(data.size(), NAN) {
    plan = make_dense_plan(geom(2, 50), 64);
    q = TensorView::bshd(data.data(), DType::f32, 1, kSeq, 2, 16);
    out = TensorView::bshd(out_data.data(), DType::f32, 1, kSeq, 2, 16);
  }
  void expect_refused(const TensorView& bad, const std::string& argument,
                      std::initializer_list<std::string> fragments) {
    expect_error([&] { attention(plan, bad, q, q, out, nullptr); }, argument, fragments);
    for (float x : out_data) ASSERT_TRUE(std::isnan(x)) << "output written before the check";
  }
  static constexpr int64_t kSeq = 100;
  std::vector<float> data, out_data;
  Plan plan;
  TensorView q, out;
};

TEST_F(ViewLimits, StridesWhoseLargestOffsetOverflowsAreRefused) {
  TensorView bad = q;
  bad.batch = 3, bad.stride_batch = int64_t{1} << 62;  // 2 * 2^62 overflows
  expect_refused(bad, "q.strides", {"64 bits", "stride_batch 4611686018427387904"});
  bad = q;
  bad.stride_seq = int64_t{1} << 61;  // 99 * 2^61 overflows
  expect_refused(bad, "q.strides", {"stride_seq 2305843009213693952"});
  bad = q;
  bad.stride_head = kI64Max / 4;  // fits in elements, not in bytes (float32)
  expect_refused(bad, "q.strides", {"byte offset"});
}

TEST_F(ViewLimits, ElementCountsThatOverflowAreRefused) {
  TensorView bad = q;
  bad.batch = int64_t{1} << 40, bad.heads = int64_t{1} << 20;  // 2^40 * 100 * 2^20 * 16
  bad.stride_batch = 1, bad.stride_head = 1, bad.stride_seq = 1;
  expect_refused(bad, "q.batch * seq * heads * dim", {"1099511627776 * 100 * 1048576 * 16"});
}

TEST_F(ViewLimits, ThreadCountsPastTheMachineAreCapped) {
  ASSERT_GE(hardware_threads(), 1);
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  for (float& x : data) x = normal(rng);
  std::vector<float> lse_one(2 * kSeq, NAN), lse_many(2 * kSeq, NAN);
  AttentionOptions one, many;
  one.threads = 1;
  many.threads = std::numeric_limits<int>::max();  // killed the process inside OpenMP
  attention(plan, q, q, q, out, lse_one.data(), one);
  const std::vector<float> first = out_data;
  std::fill(out_data.begin(), out_data.end(), NAN);
  attention(plan, q, q, q, out, lse_many.data(), many);
  for (size_t i = 0; i < first.size(); ++i) ASSERT_EQ(first[i], out_data[i]) << i;
  for (size_t i = 0; i < lse_one.size(); ++i) ASSERT_EQ(lse_one[i], lse_many[i]) << i;
  for (float x : first) ASSERT_TRUE(std::isfinite(x));
  many.threads = -1;
  expect_error([&] { attention(plan, q, q, q, out, nullptr, many); }, "options.threads",
               {"capped", "got -1"});
}

}  // namespace
}  // namespace radial
