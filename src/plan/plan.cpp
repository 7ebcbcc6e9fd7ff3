// Assembles a Plan: frame pairs -> kept blocks (radial_rules + block_shrink), the dense tail,
// the text region and the key limit, then CSR, CSC and statistics.
#include "radial/plan.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <unordered_map>

#include "core/checked_math.hpp"
#include "plan/block_shrink.hpp"
#include "plan/plan_access.hpp"
#include "plan/radial_rules.hpp"
#include "radial/error.hpp"
#include "radial/model_preset.hpp"

namespace radial {

namespace {

using plan_detail::FramePairMask;

void validate_spec(const PlanSpec& spec) {
  require(spec.block_size == 128 || spec.block_size == 64, "block_size", "64 or 128",
          spec.block_size);
  require(std::isfinite(spec.decay_factor) && spec.decay_factor > 0, "decay_factor",
          "a finite number > 0", spec.decay_factor);
  model_preset(spec.model);  // throws for a Model cast from an integer out of range
}

std::string geometry_text(const Plan& plan) {
  const Geometry& g = plan.geometry;
  std::string text = std::to_string(g.frames) + " frames x " + std::to_string(g.tokens_per_frame) +
                     " tokens";
  if (g.text_tokens) text += " + " + std::to_string(g.text_tokens) + " text";
  return text + ", block " + std::to_string(plan.spec.block_size);
}

// The Error for a plan past kMaxKeptBlocks; `count` says how many blocks it would keep.
[[noreturn]] void refuse_plan_size(const Plan& plan, const std::string& count) {
  throw Error("geometry",
              "a plan of at most " + std::to_string(kMaxKeptBlocks) +
                  " kept blocks (radial::kMaxKeptBlocks: 2 GiB of block indices)",
              count + " kept blocks (" + geometry_text(plan) + ")");
}

// Builds the CSR row by row, in order: a row's sparse columns (increasing, below the dense
// ones) through add(), then end_row() appends the dense columns. Refuses the plan as soon as it
// passes kMaxKeptBlocks, so its memory stays bounded whatever the geometry.
class RowWriter {
 public:
  RowWriter(Plan& plan, int32_t dense_from, int32_t key_blocks)
      : plan_(plan), dense_from_(dense_from), key_blocks_(key_blocks) {
    plan_.row_offset.assign(1, 0);
  }

  // Columns at or past this are dense in the row being written.
  int32_t sparse_end() const {
    return std::min(rows_done() >= dense_from_ ? 0 : dense_from_, key_blocks_);
  }
  void add(int32_t c) { plan_.col_index.push_back(c); }

  void end_row() {
    const int32_t r = rows_done();
    const int32_t sparse_end = this->sparse_end();
    const int64_t row_blocks = static_cast<int64_t>(plan_.col_index.size()) -
                               plan_.row_offset.back() + (key_blocks_ - sparse_end);
    if (plan_.col_index.size() + static_cast<size_t>(key_blocks_ - sparse_end + (row_blocks == 0)) >
        static_cast<size_t>(kMaxKeptBlocks))
      refuse_plan_size(plan_, "more than " + std::to_string(kMaxKeptBlocks));
    for (int32_t c = sparse_end; c < key_blocks_; ++c) plan_.col_index.push_back(c);
    if (row_blocks == 0) {
      // A row the rules left empty (tiny frames) would have no softmax: keep its diagonal.
      plan_.col_index.push_back(std::min(r, key_blocks_ - 1));
      ++plan_.rows_given_diagonal;
    }
    plan_.row_offset.push_back(static_cast<int32_t>(plan_.col_index.size()));
  }

  int32_t rows_done() const { return static_cast<int32_t>(plan_.row_offset.size()) - 1; }
  int32_t dense_from() const { return dense_from_; }
  int32_t key_blocks() const { return key_blocks_; }
  void reserve(int64_t blocks) {
    plan_.col_index.reserve(static_cast<size_t>(std::min(blocks, kMaxKeptBlocks + 1)));
    plan_.row_offset.reserve(static_cast<size_t>(plan_.block_rows) + 1);
  }

 private:
  Plan& plan_;
  int32_t dense_from_, key_blocks_;
};

// CSC from CSR by counting sort over the kept blocks. Where rows hold many blocks, columns are
// filled a band of them at a time so that the scattered writes stay within a few cache lines
// however wide the grid; the bands are capped at kept blocks / rows, so that the passes over the
// rows never cost more than the blocks themselves (O(kept blocks + rows + columns) in all).
void fill_transpose(Plan& plan) {
  const int32_t n_rows = plan.block_rows, n_cols = plan.block_cols;
  plan.col_offset.assign(static_cast<size_t>(n_cols) + 1, 0);
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
  const int64_t max_bands = std::max<int64_t>(1, plan.kept_blocks() / std::max(n_rows, 1));
  const int64_t band = std::max<int64_t>(64, (n_cols + max_bands - 1) / max_bands);
  for (int64_t band_end = band; band_end - band < n_cols; band_end += band) {
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

// Fewer kept blocks than any radial plan of this geometry has, counted without planning: every
// whole block inside a frame (a frame attends to itself in full: at least floor(T / B) - 1
// blocks each way), and the dense tail (rows from the border on, and the columns from the
// border to the key limit in the rows before it). Saturates instead of overflowing.
int64_t kept_blocks_at_least(const Plan& plan, int32_t border, int32_t key_blocks) {
  const Geometry& g = plan.geometry;
  const int64_t inside = std::max<int64_t>(0, g.tokens_per_frame / plan.spec.block_size - 1);
  int64_t n = checked::mul_or_max(g.frames, checked::mul_or_max(inside, inside));
  n = checked::add_or_max(n, checked::mul_or_max(border, std::max(0, key_blocks - border)));
  n = checked::add_or_max(
      n, checked::mul_or_max(static_cast<int64_t>(plan.block_rows) - border, key_blocks));
  return std::max<int64_t>(n, plan.block_rows);
}

// Open block rows, as bitsets over the block columns in a ring of `slots` rows. Each row also
// lists the words it has set, so that reading a row out and clearing it cost O(its kept
// blocks), never O(block_cols).
class RowWindow {
 public:
  RowWindow(int64_t slots, int32_t cols) : cols_(cols), rows_(static_cast<size_t>(slots)) {
    for (Row& row : rows_) row.bits.assign((static_cast<size_t>(cols) + 63) / 64, 0);
  }

  // Sets columns [c0, c1) of block row `row`; columns past the grid are dropped.
  void set(int64_t row, int64_t c0, int64_t c1) {
    c1 = std::min<int64_t>(c1, cols_);
    if (c0 >= c1) return;
    Row& r = slot(row);
    const int64_t w0 = c0 / 64, w1 = (c1 - 1) / 64;
    for (int64_t w = w0; w <= w1; ++w) {
      uint64_t mask = ~uint64_t{0};
      if (w == w0) mask &= ~uint64_t{0} << (c0 % 64);
      if (w == w1) mask &= ~uint64_t{0} >> (63 - (c1 - 1) % 64);
      if (!r.bits[w]) r.touched.push_back(static_cast<int32_t>(w));
      r.bits[w] |= mask;
    }
  }

  // Hands the row's set columns below `below` to out.add() in increasing order, and clears it.
  void take(int64_t row, int32_t below, RowWriter& out) {
    Row& r = slot(row);
    std::sort(r.touched.begin(), r.touched.end());
    for (const int32_t w : r.touched) {
      for (uint64_t word = r.bits[w]; word; word &= word - 1) {
        const int32_t c = w * 64 + std::countr_zero(word);
        if (c >= below) break;
        out.add(c);
      }
      r.bits[w] = 0;
    }
    r.touched.clear();
  }

 private:
  struct Row {
    std::vector<uint64_t> bits;
    std::vector<int32_t> touched;
  };
  Row& slot(int64_t row) { return rows_[static_cast<size_t>(row) % rows_.size()]; }

  int64_t cols_;
  std::vector<Row> rows_;
};

// Frames smaller than a block (T < B), where the thinning keeps distance 0 alone: every frame
// pair's canvas is one block, so block row r can only keep its diagonal (the frames that start
// in it attending to themselves) and, for Wan, column 0 (their sink). Whether it does depends
// only on where those frames start inside the block, i.e. on s = (-r * B) mod T, so it is
// looked up per row: O(block rows), however many frames there are.
void write_tiny_frame_rows(Plan& plan, RowWriter& out) {
  const Geometry& g = plan.geometry;
  const PlanSpec& spec = plan.spec;
  const int64_t T = g.tokens_per_frame, B = spec.block_size;
  const FramePairMask self = plan_detail::distance_mask(0, T, spec);
  const FramePairMask sink_mask = plan_detail::frame_pair_mask(0, 0, T, spec);
  const bool sink = model_preset(spec.model).attention_sink;
  // By s: does any frame starting at offset s, s + T, ... < B of a block keep its block?
  std::vector<char> keeps_self(static_cast<size_t>(T), 0), keeps_sink(static_cast<size_t>(T), 0);
  for (int64_t s = 0; s < T; ++s) {
    for (int64_t rr = s; rr < B; rr += T) {
      if (self.any && !plan_detail::shrink_band_to_blocks(T, B, rr, rr, self.half_width).empty())
        keeps_self[s] = 1;
      if (sink && !plan_detail::shrink_band_to_blocks(T, B, rr, 0, sink_mask.half_width).empty())
        keeps_sink[s] = 1;
    }
  }
  for (int64_t r = 0; r < plan.block_rows; ++r) {
    const int32_t below = out.sparse_end();
    const auto s = static_cast<size_t>((T - r * B % T) % T);
    // Rows from the border on are dense, and every frame of an earlier row exists.
    if (r < out.dense_from()) {
      const bool self_kept = keeps_self[s], sink_kept = keeps_sink[s];
      if ((sink_kept || (self_kept && r == 0)) && 0 < below) out.add(0);
      if (self_kept && r > 0 && r < below) out.add(static_cast<int32_t>(r));
    }
    out.end_row();
  }
}

// The video-to-video part of the radial rules, frame row by frame row, streamed into `out`.
void write_radial_rows(Plan& plan, RowWriter& out) {
  const Geometry& g = plan.geometry;
  const PlanSpec& spec = plan.spec;
  const int64_t F = g.frames, T = g.tokens_per_frame, B = spec.block_size;
  const int64_t k = (T + B - 1) / B;  // canvas blocks per frame
  const bool sink = model_preset(spec.model).attention_sink;

  // Distances the thinning keeps, and their masks; the others cost nothing (tiny frames come
  // in millions).
  const std::vector<int64_t> distances = plan_detail::kept_distances(F, T);
  if (T < B && distances.size() == 1 && distances[0] == 0) return write_tiny_frame_rows(plan, out);
  // Each pair a query frame visits is of a kind: slot 0 the attention sink (key frame 0, whatever the
  // distance), then per kept distance d the earlier key frame (slot 1 + 2d) and the later one
  // (slot 2 + 2d). Its mask depends only on the kind.
  std::vector<FramePairMask> masks(1 + 2 * distances.size());
  masks[0] = plan_detail::frame_pair_mask(0, 0, T, spec);
  for (size_t d = 0; d < distances.size(); ++d)
    masks[1 + 2 * d] = masks[2 + 2 * d] = plan_detail::distance_mask(distances[d], T, spec);
  auto for_each_pair = [&](int64_t i, auto&& visit) {
    if (sink) visit(i, 0, 0);
    for (size_t d = 0; d < distances.size(); ++d) {
      const int64_t dist = distances[d];
      if (i - dist >= 0 && !(sink && i == dist)) visit(i, i - dist, 1 + 2 * d);
      if (dist && i + dist < F) visit(i, i + dist, 2 + 2 * d);
    }
  };

  // The canvas pattern depends only on (row offset, column offset, band), so it is computed
  // once per distinct triple; frames that are not a multiple of B have few distinct offsets.
  // Given the kind, the column offset follows from the row offset (a multiple of gcd(T, B)),
  // so each pair finds its pattern in a table by kind and row offset.
  using Pattern = std::vector<plan_detail::BlockRun>;
  std::unordered_map<uint64_t, Pattern> patterns;
  const int64_t step = std::gcd(T, B), offsets = B / step;
  std::vector<const Pattern*> by_kind(masks.size() * static_cast<size_t>(offsets), nullptr);
  auto pair_pattern = [&](int64_t i, int64_t j, size_t kind) -> const Pattern* {
    const FramePairMask& m = masks[kind];
    if (!m.any) return nullptr;
    const int64_t rr = i * T % B;
    const Pattern*& found = by_kind[kind * offsets + rr / step];
    if (!found) {
      const int64_t rc = j * T % B;
      const uint64_t key = (static_cast<uint64_t>(m.half_width) << 16) |
                           (static_cast<uint64_t>(rr) << 8) | static_cast<uint64_t>(rc);
      auto it = patterns.find(key);
      if (it == patterns.end())
        it = patterns.emplace(key, plan_detail::shrink_band_to_blocks(T, B, rr, rc, m.half_width))
                 .first;
      found = &it->second;
    }
    return found;
  };

  // Before building: an upper bound to reserve the layout once (the pairs' blocks overlap only
  // where frames share a block row; growing by doubling would copy and fault megabytes), and a
  // lower bound to refuse a plan past kMaxKeptBlocks before it is built: the blocks of each
  // pair in block rows and columns that lie wholly inside its two frames, which no other pair
  // can keep (exact when T is a multiple of B), plus the dense tail.
  const int64_t tail = static_cast<int64_t>(plan.block_rows - out.dense_from()) * out.key_blocks() +
                       static_cast<int64_t>(out.dense_from()) *
                           std::max(0, out.key_blocks() - out.dense_from());
  int64_t estimate = tail, at_least = tail;
  auto inside = [&](int64_t frame) {  // first and end block of those wholly inside the frame
    return std::pair<int64_t, int64_t>{(frame * T + B - 1) / B, (frame * T + T) / B};
  };
  for (int64_t i = 0; i < F; ++i) {
    const auto [row_first, row_end] = inside(i);
    const int64_t br = i * T / B;
    for_each_pair(i, [&](int64_t a, int64_t b, size_t kind) {
      const Pattern* runs = pair_pattern(a, b, kind);
      if (!runs) return;
      const auto [col_first, col_end] = inside(b);
      const int64_t bc = b * T / B;
      for (const auto& run : *runs) {
        estimate += run.q_end - run.q_begin;
        if (br + run.p >= row_first && br + run.p < row_end)
          at_least += std::max<int64_t>(0, std::min(bc + run.q_end, col_end) -
                                               std::max(bc + run.q_begin, col_first));
      }
    });
    if (at_least > kMaxKeptBlocks) refuse_plan_size(plan, "at least " + std::to_string(at_least));
  }
  out.reserve(estimate);

  // Open rows: a window of k + 1 block rows (a frame spans at most k + 1 of them).
  RowWindow window(k + 1, plan.block_cols);
  auto finish_rows_before = [&](int64_t row) {
    for (int64_t r = out.rows_done(); r < row && r < plan.block_rows; ++r) {
      window.take(r, out.sparse_end(), out);
      out.end_row();
    }
  };
  auto add_pair = [&](int64_t i, int64_t j, size_t kind) {
    const auto* runs = pair_pattern(i, j, kind);
    if (!runs) return;
    const int64_t br = i * T / B, bc = j * T / B;
    // The canvas can reach past the grid only where the tail makes it dense anyway.
    for (const auto& run : *runs)
      if (br + run.p < plan.block_rows) window.set(br + run.p, bc + run.q_begin, bc + run.q_end);
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
  const int32_t key_blocks = key_blocks_of(plan);
  const int64_t at_least = kept_blocks_at_least(plan, border, key_blocks);
  if (at_least > kMaxKeptBlocks) refuse_plan_size(plan, "at least " + std::to_string(at_least));
  RowWriter out(plan, border, key_blocks);
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
  const int32_t key_blocks = key_blocks_of(plan);
  const int64_t kept = checked::mul_or_max(plan.block_rows, key_blocks);
  if (kept > kMaxKeptBlocks) refuse_plan_size(plan, std::to_string(kept));
  RowWriter out(plan, 0, key_blocks);
  out.reserve(kept);
  for (int32_t r = 0; r < plan.block_rows; ++r) out.end_row();
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
