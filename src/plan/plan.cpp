// Assembles a Plan: frame pairs -> kept blocks (radial_rules + block_shrink), the dense tail,
// the text region and the key limit, then CSR, CSC and statistics.
#include "radial/plan.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <string>
#include <unordered_map>

#include "plan/block_shrink.hpp"
#include "plan/plan_access.hpp"
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

// Builds the CSR row by row, in order. Block rows are finished as soon as no later frame can
// reach them, so only a window of about ceil(T / B) rows is held as bitsets at a time.
class RowWriter {
 public:
  RowWriter(Plan& plan, int32_t dense_from, int32_t key_blocks)
      : plan_(plan), dense_from_(dense_from), key_blocks_(key_blocks) {
    plan_.row_offset.assign(1, 0);
  }

  // Appends the next block row: the set bits below the dense columns, then the dense ones.
  void finish_row(const std::vector<uint64_t>* bits) {
    const int32_t r = static_cast<int32_t>(plan_.row_offset.size()) - 1;
    const int32_t sparse_end = std::min(r >= dense_from_ ? 0 : dense_from_, key_blocks_);
    const size_t start = plan_.col_index.size();
    if (bits) {
      for (int32_t w = 0; w * 64 < sparse_end; ++w) {
        for (uint64_t word = (*bits)[w]; word; word &= word - 1) {
          const int32_t c = w * 64 + std::countr_zero(word);
          if (c >= sparse_end) break;
          plan_.col_index.push_back(c);
        }
      }
    }
    for (int32_t c = sparse_end; c < key_blocks_; ++c) plan_.col_index.push_back(c);
    if (plan_.col_index.size() == start) {
      // A row the rules left empty (tiny frames) would have no softmax: keep its diagonal.
      plan_.col_index.push_back(std::min(r, key_blocks_ - 1));
      ++plan_.rows_given_diagonal;
    }
    if (plan_.col_index.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
      throw Error("geometry", "a plan of at most 2^31-1 kept blocks (32-bit block indices)",
                  "more kept blocks");
    plan_.row_offset.push_back(static_cast<int32_t>(plan_.col_index.size()));
  }

  int32_t rows_done() const { return static_cast<int32_t>(plan_.row_offset.size()) - 1; }
  int32_t dense_from() const { return dense_from_; }
  void reserve(int64_t blocks) {
    plan_.col_index.reserve(static_cast<size_t>(
        std::min<int64_t>(blocks, std::numeric_limits<int32_t>::max())));
    plan_.row_offset.reserve(static_cast<size_t>(plan_.block_rows) + 1);
  }

 private:
  Plan& plan_;
  int32_t dense_from_, key_blocks_;
};

// CSC from CSR by counting sort. Columns are filled a band of them at a time so that the
// scattered writes stay within a few cache lines however wide the grid.
void fill_transpose(Plan& plan) {
  const int32_t n_rows = plan.block_rows, n_cols = plan.block_cols;
  plan.col_offset.assign(n_cols + 1, 0);
  int32_t* __restrict count = plan.col_offset.data() + 1;
  for (int32_t c : plan.col_index) ++count[c];
  for (int32_t c = 0; c < n_cols; ++c) plan.col_offset[c + 1] += plan.col_offset[c];
  plan.row_index.resize(plan.col_index.size());
  std::vector<int32_t> fill_store(plan.col_offset.begin(), plan.col_offset.end() - 1);
  std::vector<int32_t> cursor_store(plan.row_offset.begin(), plan.row_offset.end() - 1);
  int32_t* __restrict fill = fill_store.data();
  int32_t* __restrict cursor = cursor_store.data();
  int32_t* __restrict out = plan.row_index.data();
  const int32_t* __restrict cols = plan.col_index.data();
  const int32_t* __restrict row_end = plan.row_offset.data() + 1;
  constexpr int32_t kBand = 64;
  for (int32_t band_end = kBand; band_end - kBand < n_cols; band_end += kBand) {
    for (int32_t r = 0; r < n_rows; ++r) {
      int32_t e = cursor[r];
      const int32_t end = row_end[r];
      for (; e < end && cols[e] < band_end; ++e) out[fill[cols[e]]++] = r;
      cursor[r] = e;
    }
  }
}

Plan empty_plan(const Geometry& geometry, const PlanSpec& spec) {
  geometry.validate();
  validate_spec(spec);
  Plan plan;
  plan.geometry = geometry;
  plan.spec = spec;
  plan.seq_len = geometry.total_tokens();
  plan.key_limit = geometry.key_limit();
  const int64_t B = spec.block_size;
  plan.block_rows = static_cast<int32_t>((plan.seq_len + B - 1) / B);
  plan.block_cols = plan.block_rows;
  return plan;
}

int32_t key_blocks_of(const Plan& plan) {
  return static_cast<int32_t>((plan.key_limit + plan.spec.block_size - 1) / plan.spec.block_size);
}

// The video-to-video part of the radial rules, frame row by frame row, streamed into `out`.
void write_radial_rows(Plan& plan, RowWriter& out) {
  const Geometry& g = plan.geometry;
  const PlanSpec& spec = plan.spec;
  const int64_t F = g.frames, T = g.tokens_per_frame, B = spec.block_size;
  const int64_t k = (T + B - 1) / B;  // canvas blocks per frame
  const int32_t words = (plan.block_cols + 63) / 64;

  // The canvas pattern depends only on (row offset, column offset, band), so it is computed
  // once per distinct triple; frames that are not a multiple of B have few distinct offsets.
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
  // Distances the thinning keeps; the others cost nothing (tiny frames come in thousands).
  std::vector<int64_t> distances;
  for (int64_t dist = 0; dist < F; ++dist)
    if (!plan_detail::distance_thinned_out(dist, T)) distances.push_back(dist);

  // Open rows: a ring of k + 1 bitsets indexed by block row.
  std::vector<std::vector<uint64_t>> ring(k + 1, std::vector<uint64_t>(words, 0));
  auto slot = [&](int64_t row) -> std::vector<uint64_t>& { return ring[row % (k + 1)]; };
  auto finish_rows_before = [&](int64_t row) {
    for (int64_t r = out.rows_done(); r < row && r < plan.block_rows; ++r) {
      out.finish_row(&slot(r));
      std::fill(slot(r).begin(), slot(r).end(), 0);
    }
  };
  // Every frame pair the rules keep, query frame by query frame (the order rows finish in).
  auto for_each_pair = [&](int64_t i, auto&& visit) {
    if (spec.model == Model::wan && plan_detail::distance_thinned_out(i, T)) visit(i, 0);
    for (int64_t dist : distances) {
      if (i - dist >= 0) visit(i, i - dist);
      if (dist && i + dist < F) visit(i, i + dist);
    }
  };
  auto pair_pattern = [&](int64_t i, int64_t j) -> const std::vector<std::pair<int32_t, int32_t>>* {
    const plan_detail::FramePairMask m = plan_detail::frame_pair_mask(i, j, T, spec);
    return m.any ? &pattern(i * T % B, j * T % B, m.half_width) : nullptr;
  };
  // Reserve the layout once: the pairs' blocks overlap only where frames share a block row, so
  // their sum is a close upper bound (growing by doubling would copy and fault megabytes).
  int64_t estimate = static_cast<int64_t>(plan.block_rows) * (plan.block_cols - out.dense_from());
  for (int64_t i = 0; i < F; ++i)
    for_each_pair(i, [&](int64_t a, int64_t b) {
      if (auto* blocks = pair_pattern(a, b)) estimate += static_cast<int64_t>(blocks->size());
    });
  out.reserve(estimate);

  auto add_pair = [&](int64_t i, int64_t j) {
    const auto* blocks = pair_pattern(i, j);
    if (!blocks) return;
    const int64_t br = i * T / B, bc = j * T / B;
    int32_t last_p = -1;
    uint64_t* row = nullptr;
    for (auto [p, q] : *blocks) {
      // The canvas can reach past the grid only where the tail makes it dense anyway.
      if (p != last_p) {
        last_p = p;
        row = br + p < plan.block_rows ? slot(br + p).data() : nullptr;
      }
      const int64_t c = bc + q;
      if (row && c < plan.block_cols) row[c / 64] |= uint64_t{1} << (c % 64);
    }
  };
  for (int64_t i = 0; i < F; ++i) {
    finish_rows_before(i * T / B);  // later frames start at or after this row
    for_each_pair(i, add_pair);
  }
  finish_rows_before(plan.block_rows);
}

}  // namespace

Plan make_plan(const Geometry& geometry, const PlanSpec& spec) {
  if (spec.pattern == Pattern::dense) {
    return make_dense_plan(geometry, spec.block_size, spec.model);
  }
  Plan plan = empty_plan(geometry, spec);
  // Step 3: rows and columns from the last whole video block on are dense; this covers a
  // partial last video block and every text row and column (joint attention). Key blocks
  // wholly past the valid keys are never attended to.
  const auto border = static_cast<int32_t>(geometry.video_tokens() / spec.block_size);
  RowWriter out(plan, border, key_blocks_of(plan));
  write_radial_rows(plan, out);
  fill_transpose(plan);
  detail::PlanAccess::mark_planned(plan);
  return plan;
}

Plan make_dense_plan(const Geometry& geometry, int block_size, Model model) {
  PlanSpec spec;
  spec.pattern = Pattern::dense;
  spec.model = model;
  spec.block_size = block_size;
  Plan plan = empty_plan(geometry, spec);
  RowWriter out(plan, 0, key_blocks_of(plan));
  for (int32_t r = 0; r < plan.block_rows; ++r) out.finish_row(nullptr);
  fill_transpose(plan);
  detail::PlanAccess::mark_planned(plan);
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
