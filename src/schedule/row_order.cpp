// Row orders and list rotations (row_order.hpp).
#include "schedule/row_order.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace radial::schedule {

namespace {

// Indices 0..n-1 ordered by their count (offsets[i + 1] - offsets[i]) on a coarse log scale
// (steps of 2^(1/4)), largest first, ties in natural order; empty ones last.
std::vector<int32_t> heavy_first(const std::vector<int32_t>& offsets, int32_t n) {
  std::vector<int32_t> bucket(n);
  for (int32_t i = 0; i < n; ++i) {
    const int32_t count = offsets[i + 1] - offsets[i];
    bucket[i] = count > 0 ? static_cast<int32_t>(std::floor(4.0 * std::log2(count))) : -1;
  }
  std::vector<int32_t> order(n);
  for (int32_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return bucket[a] > bucket[b]; });
  return order;
}

}  // namespace

std::vector<int32_t> heavy_first_order(const Plan& plan) {
  return heavy_first(plan.row_offset, plan.block_rows);
}

std::vector<int32_t> heavy_first_columns(const Plan& plan) {
  return heavy_first(plan.col_offset, plan.block_cols);
}

LocalityOrder locality_order(const Plan& plan) {
  const int32_t rows = plan.block_rows;
  const int64_t block = plan.block_size();
  const int64_t frame_tokens = plan.geometry.tokens_per_frame;
  const int64_t video = plan.geometry.video_tokens();
  LocalityOrder result;
  result.start.assign(static_cast<size_t>(rows), 0);
  if (plan.spec.pattern == Pattern::dense || plan.geometry.frames < 2) {
    result.order = heavy_first_order(plan);
    return result;
  }
  // Spatial chunk width in blocks: 1024 tokens (8 blocks of 128). Chosen with an LRU model of
  // L2 (bench/gpu/NOTES.md): narrower chunks re-read each frame's dense neighbourhood more
  // often, wider ones let far-band blocks fall out of L2 before the next frame's rows use them.
  // RADIAL_LOCALITY_CHUNK_TOKENS overrides it, for tuning runs (read at each upload).
  int64_t chunk_tokens = 1024;
  if (const char* env = std::getenv("RADIAL_LOCALITY_CHUNK_TOKENS")) {
    chunk_tokens = std::max<int64_t>(std::atoll(env), 1);
  }
  const int64_t chunk = std::max<int64_t>(1, chunk_tokens / block);
  struct Key {
    int64_t group, frame, within;
    int32_t row;
  };
  std::vector<Key> keys;
  keys.reserve(static_cast<size_t>(rows));
  for (int32_t r = 0; r < rows; ++r) {
    const int64_t token = static_cast<int64_t>(r) * block;
    if (token >= video) {
      keys.push_back({-1, 0, 0, r});  // text rows: dense, heaviest, first
      continue;
    }
    const int64_t frame = token / frame_tokens, spatial = (token % frame_tokens) / block;
    keys.push_back({spatial / chunk, frame, spatial % chunk, r});
    // Rotate to the first kept block at or after frame f - 1's first token.
    const int64_t from = std::max<int64_t>(frame - 1, 0) * frame_tokens / block;
    const auto first = plan.col_index.begin() + plan.row_offset[r];
    const auto last = plan.col_index.begin() + plan.row_offset[r + 1];
    const auto at = std::lower_bound(first, last, static_cast<int32_t>(from));
    result.start[r] = at == last ? 0 : static_cast<int32_t>(at - first);
  }
  std::stable_sort(keys.begin(), keys.end(), [](const Key& a, const Key& b) {
    if (a.group != b.group) return a.group < b.group;
    if (a.frame != b.frame) return a.frame < b.frame;
    return a.within < b.within;
  });
  result.order.reserve(static_cast<size_t>(rows));
  for (const Key& k : keys) result.order.push_back(k.row);
  return result;
}

std::vector<int32_t> locality_columns(const Plan& plan) {
  const int32_t cols = plan.block_cols;
  const int64_t block = plan.block_size();
  const int64_t frame_tokens = plan.geometry.tokens_per_frame;
  const int64_t frames = plan.geometry.frames;
  const int64_t video = plan.geometry.video_tokens();
  if (plan.spec.pattern == Pattern::dense || frames < 2) return heavy_first_columns(plan);
  const int64_t frame_blocks = std::max<int64_t>(1, (frame_tokens + block - 1) / block);
  int64_t chunk = std::clamp<int64_t>((kBackwardChunkColumns + frames / 2) / frames, 1,
                                      frame_blocks);
  if (const char* env = std::getenv("RADIAL_BACKWARD_CHUNK_TOKENS")) {
    chunk = std::max<int64_t>(std::atoll(env) / block, 1);
  }
  struct Key {
    int64_t group, frame, within;
    int32_t col;
  };
  std::vector<Key> keys;
  keys.reserve(static_cast<size_t>(cols));
  const int64_t last_group = std::numeric_limits<int64_t>::max();
  for (int32_t c = 0; c < cols; ++c) {
    const int64_t token = static_cast<int64_t>(c) * block;
    if (plan.col_offset[c + 1] == plan.col_offset[c]) {
      keys.push_back({last_group, 0, 0, c});  // kept by no query: last
    } else if (token >= video) {
      keys.push_back({-1, 0, 0, c});  // text columns: kept by every query, first
    } else {
      const int64_t frame = token / frame_tokens, spatial = (token % frame_tokens) / block;
      keys.push_back({spatial / chunk, frame, spatial % chunk, c});
    }
  }
  std::stable_sort(keys.begin(), keys.end(), [](const Key& a, const Key& b) {
    if (a.group != b.group) return a.group < b.group;
    if (a.frame != b.frame) return a.frame < b.frame;
    return a.within < b.within;
  });
  std::vector<int32_t> order;
  order.reserve(static_cast<size_t>(cols));
  for (const Key& k : keys) order.push_back(k.col);
  return order;
}

}  // namespace radial::schedule
