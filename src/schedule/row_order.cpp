// Row orders and list rotations (row_order.hpp).
#include "schedule/row_order.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "radial/error.hpp"

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

// A block's place in a locality order (rows or columns alike): text blocks first (group -1),
// then spatial chunks of `chunk` blocks, each over all frames, frame by frame; group kLast for
// blocks that come last.
struct ChunkKey {
  int64_t group, frame, within;
  int32_t index;
};
constexpr int64_t kLast = std::numeric_limits<int64_t>::max();

ChunkKey chunk_key(int32_t index, int64_t block, int64_t frame_tokens, int64_t video,
                   int64_t chunk) {
  const int64_t token = static_cast<int64_t>(index) * block;
  if (token >= video) return {-1, 0, 0, index};
  const int64_t frame = token / frame_tokens, spatial = (token % frame_tokens) / block;
  return {spatial / chunk, frame, spatial % chunk, index};
}

std::vector<int32_t> sorted_indices(std::vector<ChunkKey>& keys) {
  std::stable_sort(keys.begin(), keys.end(), [](const ChunkKey& a, const ChunkKey& b) {
    if (a.group != b.group) return a.group < b.group;
    if (a.frame != b.frame) return a.frame < b.frame;
    return a.within < b.within;
  });
  std::vector<int32_t> order;
  order.reserve(keys.size());
  for (const ChunkKey& k : keys) order.push_back(k.index);
  return order;
}

// A chunk width in tokens from environment variable `name` (tuning runs), or 0 when it is unset.
// Anything but a whole number from 1 to 2^63 - 1 is an error naming the variable.
int64_t env_chunk_tokens(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr) return 0;
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || errno == ERANGE || value < 1) {
    throw Error(name, "a whole number of tokens from 1 to 2^63 - 1",
                std::string("\"") + text + "\"");
  }
  return value;
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
  // RADIAL_LOCALITY_CHUNK_TOKENS overrides it, for tuning runs (read at each upload; a bad
  // value is an Error naming it).
  const int64_t env_tokens = env_chunk_tokens("RADIAL_LOCALITY_CHUNK_TOKENS");
  const int64_t chunk = std::max<int64_t>(1, (env_tokens > 0 ? env_tokens : 1024) / block);
  std::vector<ChunkKey> keys;
  keys.reserve(static_cast<size_t>(rows));
  for (int32_t r = 0; r < rows; ++r) {
    keys.push_back(chunk_key(r, block, frame_tokens, video, chunk));  // text rows first
    if (keys.back().group < 0) continue;
    // Rotate to the first kept block at or after frame f - 1's first token.
    const int64_t frame = keys.back().frame;
    const int64_t from = std::max<int64_t>(frame - 1, 0) * frame_tokens / block;
    const auto first = plan.col_index.begin() + plan.row_offset[r];
    const auto last = plan.col_index.begin() + plan.row_offset[r + 1];
    const auto at = std::lower_bound(first, last, static_cast<int32_t>(from));
    result.start[r] = at == last ? 0 : static_cast<int32_t>(at - first);
  }
  result.order = sorted_indices(keys);
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
  const int64_t env_tokens = env_chunk_tokens("RADIAL_BACKWARD_CHUNK_TOKENS");
  const int64_t chunk =
      env_tokens > 0
          ? std::max<int64_t>(env_tokens / block, 1)
          : std::clamp<int64_t>((kBackwardChunkColumns + frames / 2) / frames, 1, frame_blocks);
  std::vector<ChunkKey> keys;
  keys.reserve(static_cast<size_t>(cols));
  for (int32_t c = 0; c < cols; ++c) {
    // Text columns (kept by every query) first; columns kept by no query last.
    keys.push_back(chunk_key(c, block, frame_tokens, video, chunk));
    if (plan.col_offset[c + 1] == plan.col_offset[c]) keys.back().group = kLast;
  }
  return sorted_indices(keys);
}

}  // namespace radial::schedule
