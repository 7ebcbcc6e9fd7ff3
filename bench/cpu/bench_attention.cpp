// CPU attention on one thread: the radial plan against the dense plan of the same geometry,
// same code. The target: radial time / dense time within 1.3x of the plan's density.
//
//   BM_Attention/<dtype>/<pattern>: one pattern per row (time, GFLOP/s of the kept blocks)
//   BM_RadialOverDense/<dtype>: both patterns alternately in one benchmark, with counters
//     density, time_ratio (radial / dense) and ratio_over_density (target <= 1.3)
#include <benchmark/benchmark.h>
#include <time.h>

#include <random>
#include <string>
#include <vector>

#include "radial/attention.hpp"
#include "radial/plan.hpp"

namespace {

using namespace radial;

// Wan2.1 shape at a CPU-friendly size: 12 latent frames of 384 tokens (16 x 24), block 128.
constexpr int64_t kFrames = 12, kTokensPerFrame = 384, kHeads = 2, kDim = 128;
constexpr double kDecay = 0.2;  // the reference's Wan2.1 1x-length setting

Geometry geometry() {
  Geometry g;
  g.frames = kFrames, g.tokens_per_frame = kTokensPerFrame;
  return g;
}

const Plan& radial_plan() {
  static const Plan plan = [] {
    PlanSpec spec;
    spec.model = Model::wan, spec.decay_factor = kDecay, spec.block_size = 128;
    return make_plan(geometry(), spec);
  }();
  return plan;
}
const Plan& dense_plan() {
  static const Plan plan = make_dense_plan(geometry(), 128);
  return plan;
}

// Random inputs in one dtype, [B, S, H, D], shared by every benchmark of that dtype.
struct Buffers {
  std::vector<uint32_t> q, k, v, out;  // enough bytes for float32
  TensorView qv, kv, vv, ov;
  std::vector<float> lse;
  explicit Buffers(DType dt) {
    const int64_t seq = dense_plan().seq_len, n = seq * kHeads * kDim;
    std::mt19937 rng(7);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    for (auto* buffer : {&q, &k, &v, &out}) buffer->resize(static_cast<size_t>(n));
    for (auto* buffer : {&q, &k, &v}) {
      for (int64_t i = 0; i < n; ++i) {
        const float x = dist(rng);
        if (dt == DType::f32) reinterpret_cast<float*>(buffer->data())[i] = x;
        else reinterpret_cast<bf16_t*>(buffer->data())[i] = from_float<bf16_t>(x);
      }
    }
    qv = TensorView::bshd(q.data(), dt, 1, seq, kHeads, kDim);
    kv = TensorView::bshd(k.data(), dt, 1, seq, kHeads, kDim);
    vv = TensorView::bshd(v.data(), dt, 1, seq, kHeads, kDim);
    ov = TensorView::bshd(out.data(), dt, 1, seq, kHeads, kDim);
    lse.resize(static_cast<size_t>(kHeads * seq));
  }
  void run(const Plan& plan) {
    AttentionOptions options;
    options.threads = 1;
    attention_cpu(plan, qv, kv, vv, ov, lse.data(), options);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
};

Buffers& buffers(DType dt) {
  static Buffers f32(DType::f32), bf16(DType::bf16);
  return dt == DType::f32 ? f32 : bf16;
}

void BM_Attention(benchmark::State& state, DType dt, bool radial) {
  const Plan& plan = radial ? radial_plan() : dense_plan();
  Buffers& b = buffers(dt);
  for (auto _ : state) b.run(plan);
  const double flops = plan.stats().flops_per_head_dim * kDim * kHeads;
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.counters["density"] = plan.stats().density;
  state.SetLabel(std::to_string(plan.seq_len) + " tokens, " + std::to_string(plan.kept_blocks()) +
                 "/" + std::to_string(plan.stats().total_blocks) + " blocks");
}

// Seconds of CPU time used by this thread: the ratio below should not depend on what else
// runs on a shared machine (with threads = 1 all work happens on the calling thread).
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Radial and dense alternately in each iteration, so both see the same machine state.
void BM_RadialOverDense(benchmark::State& state, DType dt) {
  Buffers& b = buffers(dt);
  double radial_s = 0, dense_s = 0;
  for (auto _ : state) {
    const double t0 = thread_cpu_seconds();
    b.run(radial_plan());
    const double t1 = thread_cpu_seconds();
    b.run(dense_plan());
    const double t2 = thread_cpu_seconds();
    radial_s += t1 - t0;
    dense_s += t2 - t1;
  }
  const double density = radial_plan().stats().density, ratio = radial_s / dense_s;
  state.counters["density"] = density;
  state.counters["time_ratio"] = ratio;
  state.counters["ratio_over_density"] = ratio / density;
  state.counters["radial_cpu_ms"] = 1e3 * radial_s / static_cast<double>(state.iterations());
  state.counters["dense_cpu_ms"] = 1e3 * dense_s / static_cast<double>(state.iterations());
}

BENCHMARK_CAPTURE(BM_Attention, f32_radial, DType::f32, true)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Attention, f32_dense, DType::f32, false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Attention, bf16_radial, DType::bf16, true)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Attention, bf16_dense, DType::bf16, false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_RadialOverDense, f32, DType::f32)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_RadialOverDense, bf16, DType::bf16)->Unit(benchmark::kMillisecond);

}  // namespace
