// Planning cost: the bar is the HunyuanVideo 4x geometry (F=128, T=3600, block 128,
// decay 0.95) in under 20 ms on one core.
#include <benchmark/benchmark.h>

#include "radial/plan.hpp"

namespace {

void plan_case(benchmark::State& state, radial::Model model, int64_t frames, int64_t tokens,
               double decay, int block) {
  radial::Geometry g;
  g.frames = frames;
  g.tokens_per_frame = tokens;
  radial::PlanSpec spec;
  spec.model = model;
  spec.decay_factor = decay;
  spec.block_size = block;
  int64_t kept = 0;
  for (auto _ : state) {
    radial::Plan plan = radial::make_plan(g, spec);
    kept = plan.kept_blocks();
    benchmark::DoNotOptimize(plan.col_index.data());
  }
  state.counters["kept_blocks"] = static_cast<double>(kept);
  state.counters["blocks_per_s"] =
      benchmark::Counter(static_cast<double>(kept), benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK_CAPTURE(plan_case, hunyuan_509f_720p, radial::Model::hunyuan, 128, 3600, 0.95, 128)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(plan_case, hunyuan_509f_720p_b64, radial::Model::hunyuan, 128, 3600, 0.95, 64)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(plan_case, wan_321f_768x1280, radial::Model::wan, 81, 3840, 1.0, 128)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(plan_case, wan_69f_768x1280, radial::Model::wan, 18, 3840, 0.2, 128)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(plan_case, wan_tiny_frames, radial::Model::wan, 20000, 7, 1.0, 128)
    ->Unit(benchmark::kMillisecond);
// Issue 10: planning cost is O(kept blocks), not O(frames) nor O(block_rows x block_cols):
// 10^8 frames of 2 tokens (1.56 M block rows, one block each) and 2^25 - 1 frames of 64 tokens
// at block 64 (2^31 - 64 tokens, 67 M kept blocks).
BENCHMARK_CAPTURE(plan_case, wan_1e8_frames_of_2, radial::Model::wan, 100000000, 2, 1.0, 128)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(plan_case, wan_2p25_frames_of_64_b64, radial::Model::wan, 33554431, 64, 1.0, 64)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);
