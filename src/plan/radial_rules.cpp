#include "plan/radial_rules.hpp"

#include "radial/model_preset.hpp"

#include <algorithm>
#include <cmath>

namespace radial::plan_detail {

namespace {
// The thinning threshold is 128 in the reference whatever the block size.
constexpr double kThinningThreshold = 128.0;

// 2^bl(T) / 2^bl(dist): the band length before decay, a power of two (maybe below 1).
double decay_length(int64_t dist, int64_t tokens_per_frame) {
  return std::ldexp(1.0, bit_length(static_cast<uint64_t>(tokens_per_frame)) -
                             bit_length(static_cast<uint64_t>(dist)));
}
}  // namespace

int bit_length(uint64_t x) {
  int n = 0;
  while (x) ++n, x >>= 1;
  return n;
}

bool distance_thinned_out(int64_t dist, int64_t tokens_per_frame) {
  const double len = decay_length(dist, tokens_per_frame);
  if (len >= kThinningThreshold) return false;
  const auto k = static_cast<int64_t>(std::floor(kThinningThreshold / len));
  return dist % k != 0;
}

std::vector<int64_t> kept_distances(int64_t frames, int64_t tokens_per_frame) {
  std::vector<int64_t> kept;
  if (frames >= 1 && !distance_thinned_out(0, tokens_per_frame)) kept.push_back(0);
  // Distances of one bit length b share their band length, hence the thinning step k: all of
  // [2^(b-1), 2^b) is kept when the band is long enough, else the multiples of k in it.
  for (int b = 1; b < 63; ++b) {
    const int64_t lo = int64_t{1} << (b - 1);
    if (lo >= frames) break;
    const int64_t hi = std::min(frames, int64_t{1} << b);
    const double len = decay_length(lo, tokens_per_frame);
    if (len >= kThinningThreshold) {
      for (int64_t d = lo; d < hi; ++d) kept.push_back(d);
      continue;
    }
    const auto k = static_cast<int64_t>(std::floor(kThinningThreshold / len));
    for (int64_t d = (lo + k - 1) / k * k; d < hi; d += k) kept.push_back(d);
  }
  return kept;
}

FramePairMask frame_pair_mask(int64_t i, int64_t j, int64_t tokens_per_frame,
                              const PlanSpec& spec) {
  // Wan (and the models whose preset says so) keeps every query's attention on the first
  // frame: the attention sink.
  if (j == 0 && model_preset(spec.model).attention_sink) return {true, tokens_per_frame};
  return distance_mask(i > j ? i - j : j - i, tokens_per_frame, spec);
}

FramePairMask distance_mask(int64_t dist, int64_t tokens_per_frame, const PlanSpec& spec) {
  const int64_t T = tokens_per_frame;
  if (distance_thinned_out(dist, T)) return {false, 0};
  const bool full = dist == 0 || (dist == 1 && !spec.decay_adjacent);
  if (full) return {true, T};
  // The band halves each time the distance doubles, but never narrower than a block.
  const double w = std::max(decay_length(dist, T) * spec.decay_factor,
                            static_cast<double>(spec.block_size));
  // |c - r| <= w over integers is |c - r| <= floor(w); cap at T (all true) to keep it small.
  const double capped = std::min(std::floor(w), static_cast<double>(T));
  return {true, static_cast<int64_t>(capped)};
}

}  // namespace radial::plan_detail
