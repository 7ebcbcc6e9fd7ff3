// The radial rules of the published implementation, frame pair by frame pair
// (docs/radial-mask.md in the shared notes, step 1). The only place that knows them.
#pragma once

#include <cstdint>
#include <vector>

#include "radial/plan.hpp"

namespace radial::plan_detail {

// What the token-level mask L of one frame pair looks like: nothing, or the band
// |c - r| <= half_width over the T x T spatial grid (half_width >= T means all true).
struct FramePairMask {
  bool any = false;
  int64_t half_width = 0;
};

int bit_length(uint64_t x);

// The mask of every frame pair at temporal distance `dist`, the attention sink aside.
FramePairMask distance_mask(int64_t dist, int64_t tokens_per_frame, const PlanSpec& spec);

// The mask for query frame i and key frame j: Wan's attention sink on key frame 0, else the
// mask of their distance.
FramePairMask frame_pair_mask(int64_t i, int64_t j, int64_t tokens_per_frame,
                              const PlanSpec& spec);

// True when every pair at this temporal distance is cleared by the diagonal thinning
// (and is not an attention sink), so the planner can skip the whole diagonal.
bool distance_thinned_out(int64_t dist, int64_t tokens_per_frame);

// The distances in [0, frames) that the thinning keeps, increasing: exactly those for which
// distance_thinned_out is false, found in O(their number + 64) rather than O(frames).
std::vector<int64_t> kept_distances(int64_t frames, int64_t tokens_per_frame);

}  // namespace radial::plan_detail
