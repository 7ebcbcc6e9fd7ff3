// Properties of the planner: agreement with a token-level brute force of the rules on random
// small geometries, monotonicity in the decay factor, O(N log N) growth, text tokens, CSC.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "golden_mask.hpp"
#include "radial/model_preset.hpp"
#include "radial/plan.hpp"

using namespace radial;
using namespace radial::testing;

namespace {

int bit_len(int64_t x) {
  int n = 0;
  while (x) ++n, x >>= 1;
  return n;
}

// The rules of radial-mask.md, written the slow way: a token-level T x T mask per frame pair,
// shrunk cell by cell. Independent of src/plan (no shared code).
// docs/models.md: every model but HunyuanVideo (T2V) and Mochi-1 keeps the first-frame sink.
bool has_sink(Model model) { return model != Model::hunyuan && model != Model::mochi; }

BlockMask brute_force(const Geometry& g, const PlanSpec& spec) {
  const bool sink = has_sink(spec.model);
  const int64_t F = g.frames, T = g.tokens_per_frame, B = spec.block_size;
  const int64_t N = F * T, S = g.total_tokens(), nb = (S + B - 1) / B, k = (T + B - 1) / B;
  std::vector<std::vector<char>> grid(nb, std::vector<char>(nb, 0));
  for (int64_t i = 0; i < F; ++i)
    for (int64_t j = 0; j < F; ++j) {
      const int64_t dist = std::abs(i - j);
      // A pair whose L is all false keeps nothing: skipped, so that thousands of tiny frames
      // stay affordable (same rule as below, checked first).
      if (!(sink && j == 0)) {
        const double len = std::pow(2.0, bit_len(T)) / std::pow(2.0, bit_len(dist));
        if (len < 128 && dist % static_cast<int64_t>(std::floor(128 / len)) != 0) continue;
      }
      std::vector<std::vector<char>> L(T, std::vector<char>(T, 0));
      if (sink && j == 0) {
        for (auto& row : L) std::fill(row.begin(), row.end(), 1);
      } else {
        double w;
        if (dist == 0 || (dist == 1 && !spec.decay_adjacent))
          w = static_cast<double>(T);
        else
          w = std::max(std::pow(2.0, bit_len(T)) / std::pow(2.0, bit_len(dist)) * spec.decay_factor,
                       static_cast<double>(B));
        const double len = std::pow(2.0, bit_len(T)) / std::pow(2.0, bit_len(dist));
        bool keep = true;
        if (len < 128) keep = dist % static_cast<int64_t>(std::floor(128 / len)) == 0;
        for (int64_t r = 0; r < T; ++r)
          for (int64_t c = 0; c < T; ++c) L[r][c] = keep && std::abs(c - r) <= w;
      }
      const int64_t rr = i * T % B, rc = j * T % B;
      std::vector<std::vector<char>> canvas(k * B, std::vector<char>(k * B, 0));
      for (int64_t r = 0; r < T; ++r)
        for (int64_t c = 0; c < T; ++c)
          if (rr + r < k * B && rc + c < k * B) canvas[rr + r][rc + c] = L[r][c];
      for (int64_t p = 0; p < k; ++p)
        for (int64_t q = 0; q < k; ++q) {
          int nonempty = 0, dense = 0;
          for (int64_t x = q * B; x < q * B + B; ++x) {
            int n = 0;
            for (int64_t y = p * B; y < p * B + B; ++y) n += canvas[y][x];
            nonempty += n > 0;
            dense += 3 * n > B;
          }
          const int64_t R = i * T / B + p, C = j * T / B + q;
          if (5 * dense > 3 * nonempty && R < nb && C < nb) grid[R][C] = 1;
        }
    }
  const int64_t border = N / B, key_blocks = (g.key_limit() + B - 1) / B;
  BlockMask mask;
  mask.rows = mask.cols = static_cast<int32_t>(nb);
  for (int64_t r = 0; r < nb; ++r) {
    std::vector<int32_t> row;
    for (int64_t c = 0; c < key_blocks; ++c)
      if (grid[r][c] || r >= border || c >= border) row.push_back(static_cast<int32_t>(c));
    if (row.empty()) row.push_back(static_cast<int32_t>(std::min(r, key_blocks - 1)));
    mask.kept.push_back(row);
  }
  return mask;
}

PlanSpec spec_of(Model model, double decay, int block, bool adjacent = false) {
  PlanSpec s;
  s.model = model;
  s.decay_factor = decay;
  s.block_size = block;
  s.decay_adjacent = adjacent;
  return s;
}

Geometry geom(int64_t F, int64_t T, int64_t text = 0, int64_t valid = -1) {
  Geometry g;
  g.frames = F, g.tokens_per_frame = T, g.text_tokens = text, g.text_valid = valid;
  return g;
}

bool subset(const Plan& small, const Plan& big) {
  for (int32_t r = 0; r < small.block_rows; ++r)
    for (int32_t e = small.row_offset[r]; e < small.row_offset[r + 1]; ++e)
      if (!big.has(r, small.col_index[e])) return false;
  return true;
}

}  // namespace

TEST(PlanProperties, MatchesTokenLevelBruteForceOnRandomGeometries) {
  std::random_device rd;
  const unsigned seed = rd();
  std::mt19937 rng(seed);
  SCOPED_TRACE("seed " + std::to_string(seed));
  const double decays[] = {0.05, 0.2, 0.5, 0.8, 0.95, 1.0, 1.7, 3.0};
  for (int trial = 0; trial < 40; ++trial) {
    const int64_t F = std::uniform_int_distribution<int64_t>(1, 24)(rng);
    const int64_t T = std::uniform_int_distribution<int>(0, 3)(rng) == 0
                          ? std::uniform_int_distribution<int64_t>(1, 40)(rng)
                          : std::uniform_int_distribution<int64_t>(40, 520)(rng);
    const int64_t text = std::uniform_int_distribution<int>(0, 2)(rng) == 0
                             ? std::uniform_int_distribution<int64_t>(1, 300)(rng)
                             : 0;
    const int64_t valid = text ? std::uniform_int_distribution<int64_t>(0, text)(rng) : -1;
    const auto model = static_cast<Model>(rng() % model_presets().size());  // every preset
    const PlanSpec spec = spec_of(model, decays[rng() % 8],
                                  rng() % 2 ? 128 : 64, rng() % 4 == 0);
    const Geometry g = geom(F, T, text, valid);
    SCOPED_TRACE("F=" + std::to_string(F) + " T=" + std::to_string(T) + " text=" +
                 std::to_string(text) + "/" + std::to_string(valid) + " model=" +
                 model_name(spec.model) + " d=" + std::to_string(spec.decay_factor) + " B=" +
                 std::to_string(spec.block_size) + " adjacent=" +
                 std::to_string(spec.decay_adjacent));
    const BlockMask want = brute_force(g, spec);
    const BlockMask got = block_mask_of(make_plan(g, spec));
    ASSERT_EQ(got.rows, want.rows);
    for (int32_t r = 0; r < want.rows; ++r) ASSERT_EQ(got.kept[r], want.kept[r]) << "row " << r;
  }
}

TEST(PlanProperties, TinyFramesOverManyBlockRowsMatchBruteForce) {
  // Frames smaller than a block are planned per block row (by where frames start in it), not
  // per frame: hundreds of frames over a dozen and more rows, with text and padding.
  for (const int64_t T : {1, 3, 7, 31, 63}) {
    for (const int block : {64, 128}) {
      for (const Model model : {Model::wan, Model::hunyuan, Model::mochi, Model::ltx_video}) {
        const Geometry g = geom(1000 / T, T, T % 2 ? 40 : 0, T % 2 ? 25 : -1);
        const PlanSpec spec = spec_of(model, 1.0, block);
        SCOPED_TRACE("T=" + std::to_string(T) + " B=" + std::to_string(block) + " " +
                     model_name(model));
        const BlockMask want = brute_force(g, spec);
        const Plan plan = make_plan(g, spec);
        const BlockMask got = block_mask_of(plan);
        ASSERT_EQ(got.rows, want.rows);
        for (int32_t r = 0; r < want.rows; ++r) ASSERT_EQ(got.kept[r], want.kept[r]) << "row " << r;
      }
    }
  }
}

TEST(PlanProperties, KeptSetNeverGrowsWhenDecayFalls) {
  for (const auto& entry : std::filesystem::directory_iterator(RADIAL_GOLDEN_DIR)) {
    if (entry.path().extension() != ".mask") continue;
    const GoldenCase c = parse_golden_name(entry.path().filename().string());
    SCOPED_TRACE(entry.path().filename().string());
    const Geometry g = geom(c.frames, c.tokens_per_frame);
    Plan previous = make_plan(g, spec_of(parse_model(c.model), 4.0, c.block_size));
    for (double d : {2.0, 1.0, 0.95, 0.8, 0.5, 0.3, 0.2, 0.1, 0.01}) {
      Plan plan = make_plan(g, spec_of(parse_model(c.model), d, c.block_size));
      EXPECT_TRUE(subset(plan, previous)) << "decay " << d;
      EXPECT_LE(plan.kept_blocks(), previous.kept_blocks());
      previous = std::move(plan);
    }
  }
}

TEST(PlanProperties, DoublingFramesGrowsLikeNLogN) {
  // Wan 720p (45 x 80 tokens per frame): 21 -> 42 -> 84 latent frames.
  for (double d : {1.0, 0.2}) {
    const auto kept = [&](int64_t F) {
      return static_cast<double>(make_plan(geom(F, 3600), spec_of(Model::wan, d, 128)).kept_blocks());
    };
    const double r1 = kept(42) / kept(21), r2 = kept(84) / kept(42);
    EXPECT_GT(r1, 2.0) << "decay " << d;
    EXPECT_LT(r1, 3.2) << "decay " << d;
    EXPECT_GT(r2, 2.0) << "decay " << d;
    EXPECT_LT(r2, 3.2) << "decay " << d;
  }
}

TEST(PlanProperties, CscIsTheTransposeOfCsr) {
  const Plan plan = make_plan(geom(13, 1560, 77, 50), spec_of(Model::hunyuan, 0.95, 128));
  ASSERT_EQ(plan.col_offset.size(), static_cast<size_t>(plan.block_cols) + 1);
  ASSERT_EQ(plan.row_index.size(), plan.col_index.size());
  int64_t seen = 0;
  for (int32_t c = 0; c < plan.block_cols; ++c) {
    for (int32_t e = plan.col_offset[c]; e < plan.col_offset[c + 1]; ++e) {
      EXPECT_TRUE(plan.has(plan.row_index[e], c));
      if (e > plan.col_offset[c]) EXPECT_LT(plan.row_index[e - 1], plan.row_index[e]);
      ++seen;
    }
  }
  EXPECT_EQ(seen, plan.kept_blocks());
}

TEST(PlanProperties, TextRowsAndColumnsAreDenseUpToTheValidKeys) {
  const int64_t F = 8, T = 1000, text = 256, valid = 100;  // 8000 video tokens
  const Plan plan = make_plan(geom(F, T, text, valid), spec_of(Model::hunyuan, 0.5, 128));
  EXPECT_EQ(plan.seq_len, F * T + text);
  EXPECT_EQ(plan.key_limit, F * T + valid);
  EXPECT_EQ(plan.block_rows, (F * T + text + 127) / 128);
  const int32_t key_blocks = static_cast<int32_t>((plan.key_limit + 127) / 128);
  EXPECT_EQ(plan.partial_key_block(), plan.key_limit / 128);
  const int32_t border = static_cast<int32_t>(F * T / 128);
  for (int32_t r = 0; r < plan.block_rows; ++r) {
    for (int32_t c = 0; c < plan.block_cols; ++c) {
      if (c >= key_blocks) EXPECT_FALSE(plan.has(r, c)) << r << "," << c;
      else if (r >= border || c >= border) EXPECT_TRUE(plan.has(r, c)) << r << "," << c;
    }
  }
  // No padding at all: the key limit is the sequence and no block is partial beyond the tail.
  const Plan full = make_plan(geom(F, T, 128, -1), spec_of(Model::hunyuan, 0.5, 128));
  EXPECT_EQ(full.key_limit, full.seq_len);
}

TEST(PlanProperties, TinyFramesKeepEveryRowsDiagonal) {
  // 256 frames of 4 tokens: 8 whole blocks, no dense tail, and no block dense enough to keep.
  const Plan plan = make_plan(geom(256, 4), spec_of(Model::hunyuan, 1.0, 128));
  EXPECT_GT(plan.rows_given_diagonal, 0);
  for (int32_t r = 0; r < plan.block_rows; ++r)
    EXPECT_LT(plan.row_offset[r], plan.row_offset[r + 1]) << "row " << r << " is empty";
}

TEST(PlanProperties, DecayAdjacentOnlyRemovesBlocks) {
  const Geometry g = geom(21, 3600);
  const Plan base = make_plan(g, spec_of(Model::wan, 0.2, 128));
  const Plan sparser = make_plan(g, spec_of(Model::wan, 0.2, 128, true));
  EXPECT_TRUE(subset(sparser, base));
  EXPECT_LT(sparser.kept_blocks(), base.kept_blocks());
}

TEST(PlanProperties, DensePlanHasEveryBlockAndStats) {
  const Plan plan = make_dense_plan(geom(5, 300, 20), 64);
  const int64_t nb = (5 * 300 + 20 + 63) / 64;
  EXPECT_EQ(plan.kept_blocks(), nb * nb);
  const PlanStats s = plan.stats();
  EXPECT_DOUBLE_EQ(s.density, 1.0);
  EXPECT_DOUBLE_EQ(s.flops_per_head_dim, 4.0 * nb * nb * 64 * 64);
  EXPECT_DOUBLE_EQ(s.dense_flops_per_head_dim, 4.0 * 1520.0 * 1520.0);
  const Plan radial = make_plan(geom(21, 3600), spec_of(Model::wan, 0.2, 128));  // 591 blocks
  const PlanStats rs = radial.stats();
  EXPECT_NEAR(rs.density, static_cast<double>(rs.kept_blocks) / (591.0 * 591.0), 1e-12);
  EXPECT_NEAR(rs.flops_ratio(), rs.kept_blocks * 128.0 * 128.0 / (75600.0 * 75600.0), 1e-12);
}
