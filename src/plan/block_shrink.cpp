#include "plan/block_shrink.hpp"

#include <algorithm>

namespace radial::plan_detail {

namespace {
// Length of [lo, hi), or 0.
int64_t span(int64_t lo, int64_t hi) { return hi > lo ? hi - lo : 0; }
}  // namespace

std::vector<BlockRun> shrink_band_to_blocks(int64_t T, int B, int64_t row_offset,
                                            int64_t col_offset, int64_t W) {
  std::vector<BlockRun> kept;
  const int64_t k = (T + B - 1) / B;
  const int64_t dense_rows = B / 3;  // a column is dense when n > B/3, i.e. n > floor(B/3)
  for (int64_t p = 0; p < k; ++p) {
    // Spatial query rows r of L that land in canvas block row p.
    const int64_t r0 = std::max(p * B, row_offset) - row_offset;
    const int64_t r1 = std::min(p * B + B, row_offset + T) - row_offset;
    if (r1 <= r0) continue;
    // Columns c with any set cell in rows [r0, r1): c in [r0 - W, r1 + W).
    // Dense columns (more than dense_rows set): c in [r0 + t - W, r1 + W - t) when the band
    // and the row span are both taller than t.
    const int64_t ne_lo = r0 - W, ne_hi = r1 + W;
    const bool can_be_dense = r1 - r0 > dense_rows && 2 * W + 1 > dense_rows;
    const int64_t de_lo = r0 + dense_rows - W, de_hi = r1 + W - dense_rows;
    // Only blocks whose columns meet [ne_lo, ne_hi) can be kept.
    const int64_t q_first = std::max<int64_t>(0, (std::max<int64_t>(ne_lo, 0) + col_offset) / B);
    const int64_t q_last = std::min<int64_t>(k - 1, (std::min(ne_hi, T) - 1 + col_offset) / B);
    for (int64_t q = q_first; q <= q_last; ++q) {
      const int64_t c0 = std::max(q * B, col_offset) - col_offset;
      const int64_t c1 = std::min(q * B + B, col_offset + T) - col_offset;
      const int64_t nonempty = span(std::max(c0, ne_lo), std::min(c1, ne_hi));
      const int64_t dense =
          can_be_dense ? span(std::max(c0, de_lo), std::min(c1, de_hi)) : 0;
      if (5 * dense <= 3 * nonempty) continue;
      if (!kept.empty() && kept.back().p == p && kept.back().q_end == q)
        ++kept.back().q_end;
      else
        kept.push_back({static_cast<int32_t>(p), static_cast<int32_t>(q), static_cast<int32_t>(q + 1)});
    }
  }
  return kept;
}

}  // namespace radial::plan_detail
