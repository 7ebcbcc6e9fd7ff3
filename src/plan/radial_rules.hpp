// The radial rules of the published implementation, frame pair by frame pair
// (docs/radial-mask.md in the shared notes, step 1). The only place that knows them.
#pragma once

#include <cstdint>

#include "radial/plan.hpp"

namespace radial::plan_detail {

// What the token-level mask L of one frame pair looks like: nothing, or the band
// |c - r| <= half_width over the T x T spatial grid (half_width >= T means all true).
struct FramePairMask {
  bool any = false;
  int64_t half_width = 0;
};

int bit_length(uint64_t x);

// The mask for query frame i and key frame j.
FramePairMask frame_pair_mask(int64_t i, int64_t j, int64_t tokens_per_frame,
                              const PlanSpec& spec);

// True when every pair at this temporal distance is cleared by the diagonal thinning
// (and is not an attention sink), so the planner can skip the whole diagonal.
bool distance_thinned_out(int64_t dist, int64_t tokens_per_frame);

}  // namespace radial::plan_detail
