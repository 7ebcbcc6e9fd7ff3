// Assembles a Plan: frame pairs -> kept blocks (radial_rules + block_shrink), the dense tail,
// the text region and the key limit, then CSR, CSC and statistics.
#include "radial/plan.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <unordered_map>

#include "plan/block_shrink.hpp"
#include "plan/radial_rules.hpp"
#include "radial/error.hpp"

namespace radial {

namespace {

using plan_detail::FramePairMask;

void validate_spec(const PlanSpec& spec) {
  require(spec.block_size == 128 || spec.block_size == 64, "block_size", "64 or 128",
          spec.block_size);
  require(std::isfinite(spec.decay_factor) && spec.decay_factor > 0, "decay_factor",
          "a finite number > 0", spec.decay_factor);
}

// Block rows as sorted, de-duplicated column lists -> CSR and CSC.
void fill_layout(Plan& plan, std::vector<std::vector<int32_t>>& rows) {
  const int32_t n_rows = plan.block_rows, n_cols = plan.block_cols;
  int64_t kept = 0;
  for (auto& row : rows) {
    std::sort(row.begin(), row.end());
    row.erase(std::unique(row.begin(), row.end()), row.end());
    kept += static_cast<int64_t>(row.size());
  }
  require(kept <= std::numeric_limits<int32_t>::max(), "geometry",
          "a plan of at most 2^31-1 kept blocks (32-bit block indices)", kept);
  plan.row_offset.assign(n_rows + 1, 0);
  plan.col_index.reserve(kept);
  for (int32_t r = 0; r < n_rows; ++r) {
    plan.col_index.insert(plan.col_index.end(), rows[r].begin(), rows[r].end());
    plan.row_offset[r + 1] = static_cast<int32_t>(plan.col_index.size());
  }
  // Counting sort into the transpose; rows are visited in order so each column stays sorted.
  plan.col_offset.assign(n_cols + 1, 0);
  for (int32_t c : plan.col_index) ++plan.col_offset[c + 1];
  for (int32_t c = 0; c < n_cols; ++c) plan.col_offset[c + 1] += plan.col_offset[c];
  plan.row_index.resize(kept);
  std::vector<int32_t> fill(plan.col_offset.begin(), plan.col_offset.end() - 1);
  for (int32_t r = 0; r < n_rows; ++r)
    for (int32_t e = plan.row_offset[r]; e < plan.row_offset[r + 1]; ++e)
      plan.row_index[fill[plan.col_index[e]]++] = r;
}

Plan empty_plan(const Geometry& geometry, const PlanSpec& spec) {
  geometry.validate();
  validate_spec(spec);
  Plan plan;
  plan.geometry = geometry;
  plan.spec = spec;
  plan.seq_len = geometry.total_tokens();
  plan.key_limit = geometry.key_limit();
  require(plan.key_limit >= 1, "text_valid", "at least one valid key token", plan.key_limit);
  const int64_t B = spec.block_size;
  plan.block_rows = static_cast<int32_t>((plan.seq_len + B - 1) / B);
  plan.block_cols = plan.block_rows;
  return plan;
}

// Kept block columns per block row for the video-to-video part of the radial rules.
void add_radial_video_blocks(const Plan& plan, std::vector<std::vector<int32_t>>& rows) {
  const Geometry& g = plan.geometry;
  const PlanSpec& spec = plan.spec;
  const int64_t F = g.frames, T = g.tokens_per_frame, B = spec.block_size;
  // The canvas pattern depends only on (row offset, column offset, band), so it is computed
  // once per distinct triple; for frames that are not a multiple of B there are few offsets.
  std::unordered_map<uint64_t, std::vector<std::pair<int32_t, int32_t>>> patterns;
  auto pattern = [&](int64_t rr, int64_t rc, int64_t W) -> const auto& {
    const uint64_t key = (static_cast<uint64_t>(W) << 16) | (static_cast<uint64_t>(rr) << 8) |
                         static_cast<uint64_t>(rc);
    auto it = patterns.find(key);
    if (it == patterns.end())
      it = patterns.emplace(key, plan_detail::shrink_band_to_blocks(T, spec.block_size, rr, rc, W))
               .first;
    return it->second;
  };
  auto add_pair = [&](int64_t i, int64_t j) {
    const FramePairMask m = plan_detail::frame_pair_mask(i, j, T, spec);
    if (!m.any) return;
    const int64_t row_tok = i * T, col_tok = j * T;
    const auto br = static_cast<int32_t>(row_tok / B), bc = static_cast<int32_t>(col_tok / B);
    for (auto [p, q] : pattern(row_tok % B, col_tok % B, m.half_width)) {
      // The canvas can reach past the grid only where the tail makes it dense anyway.
      if (br + p < plan.block_rows && bc + q < plan.block_cols) rows[br + p].push_back(bc + q);
    }
  };
  // Walk diagonals so that distances the thinning clears cost nothing (tiny frames, many of
  // them); the Wan sink column is added on its own.
  for (int64_t dist = 0; dist < F; ++dist) {
    if (plan_detail::distance_thinned_out(dist, T)) continue;
    for (int64_t i = dist; i < F; ++i) {
      add_pair(i, i - dist);
      if (dist) add_pair(i - dist, i);
    }
  }
  if (spec.model == Model::wan)
    for (int64_t i = 0; i < F; ++i)
      if (plan_detail::distance_thinned_out(i, T)) add_pair(i, 0);
}

}  // namespace

Plan make_plan(const Geometry& geometry, const PlanSpec& spec) {
  if (spec.pattern == Pattern::dense) return make_dense_plan(geometry, spec.block_size);
  Plan plan = empty_plan(geometry, spec);
  const int64_t B = spec.block_size;
  std::vector<std::vector<int32_t>> rows(plan.block_rows);
  add_radial_video_blocks(plan, rows);

  // Step 3: rows and columns from the last whole video block on are dense; this covers a
  // partial last video block and every text row and column (joint attention).
  const auto border = static_cast<int32_t>(geometry.video_tokens() / B);
  const auto key_blocks = static_cast<int32_t>((plan.key_limit + B - 1) / B);
  for (int32_t r = 0; r < plan.block_rows; ++r) {
    auto& row = rows[r];
    // Key blocks wholly past the valid keys are never attended to.
    std::erase_if(row, [&](int32_t c) { return c >= key_blocks; });
    const int32_t first_dense = r >= border ? 0 : border;
    for (int32_t c = first_dense; c < key_blocks; ++c) row.push_back(c);
    // A row the rules left empty (tiny frames) would have no softmax: keep its diagonal.
    if (row.empty()) {
      row.push_back(std::min(r, key_blocks - 1));
      ++plan.rows_given_diagonal;
    }
  }
  fill_layout(plan, rows);
  return plan;
}

Plan make_dense_plan(const Geometry& geometry, int block_size) {
  PlanSpec spec;
  spec.pattern = Pattern::dense;
  spec.block_size = block_size;
  Plan plan = empty_plan(geometry, spec);
  const auto key_blocks =
      static_cast<int32_t>((plan.key_limit + block_size - 1) / block_size);
  std::vector<std::vector<int32_t>> rows(plan.block_rows);
  for (auto& row : rows)
    for (int32_t c = 0; c < key_blocks; ++c) row.push_back(c);
  fill_layout(plan, rows);
  return plan;
}

bool Plan::has(int32_t row, int32_t col) const {
  if (row < 0 || row >= block_rows) return false;
  const auto first = col_index.begin() + row_offset[row];
  const auto last = col_index.begin() + row_offset[row + 1];
  return std::binary_search(first, last, col);
}

PlanStats Plan::stats() const {
  PlanStats s;
  const double B = spec.block_size;
  s.kept_blocks = kept_blocks();
  s.total_blocks = static_cast<int64_t>(block_rows) * block_cols;
  s.density = s.total_blocks ? static_cast<double>(s.kept_blocks) / s.total_blocks : 0.0;
  s.flops_per_head_dim = 4.0 * s.kept_blocks * B * B;
  s.dense_flops_per_head_dim = 4.0 * static_cast<double>(seq_len) * static_cast<double>(seq_len);
  return s;
}

}  // namespace radial
