// CPU attention on one thread: the radial plan against the dense plan of the same geometry,
// same code. The target: radial time / dense time within 1.3x of the plan's density.
//
//   BM_Attention/<shape>_<dtype>_<pattern>: one pattern per row (time, GFLOP/s of the kept
//     blocks)
//   BM_RadialOverDense/<shape>_<dtype>: both patterns alternately in one benchmark, timed in
//     thread CPU time, with counters density, time_ratio (radial / dense) and
//     ratio_over_density (target <= 1.3)
//   BM_Backward/<shape>_<dtype>_<pattern>: attention_backward_cpu alone (GFLOP/s counting 2.5x
//     the forward's FLOPs, the usual convention for the backward's five products)
//   BM_BackwardOverForward/<shape>_<dtype>: forward and backward alternately, thread CPU time,
//     with counters forward_cpu_ms, backward_cpu_ms and backward_over_forward
#include <benchmark/benchmark.h>
#include <time.h>

#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "radial/attention.hpp"
#include "radial/plan.hpp"

namespace {

using namespace radial;

// Wan2.1-like shapes at CPU-friendly sizes, 4608 tokens each, block 128: few large frames
// (12 x 384 tokens, i.e. 16 x 24 latents) and many small ones (36 x 128), which the radial
// rules thin out much more.
constexpr int64_t kHeads = 2, kDim = 128;
constexpr double kDecay = 0.2;  // the reference's Wan2.1 1x-length setting
struct Shape {
  int64_t frames, tokens_per_frame;
};
constexpr Shape kShapes[] = {{12, 384}, {36, 128}};

Geometry geometry(int shape) {
  Geometry g;
  g.frames = kShapes[shape].frames, g.tokens_per_frame = kShapes[shape].tokens_per_frame;
  return g;
}

const Plan& radial_plan(int shape) {
  static const std::vector<Plan> plans = [] {
    std::vector<Plan> made;
    for (int i = 0; i < static_cast<int>(std::size(kShapes)); ++i) {
      PlanSpec spec;
      spec.model = Model::wan, spec.decay_factor = kDecay, spec.block_size = 128;
      made.push_back(make_plan(geometry(i), spec));
    }
    return made;
  }();
  return plans[shape];
}
const Plan& dense_plan(int shape) {
  static const std::vector<Plan> plans = [] {
    std::vector<Plan> made;
    for (int i = 0; i < static_cast<int>(std::size(kShapes)); ++i)
      made.push_back(make_dense_plan(geometry(i), 128));
    return made;
  }();
  return plans[shape];
}

// Random inputs in one dtype, [B, S, H, D], shared by every benchmark of that dtype.
struct Buffers {
  std::vector<uint32_t> q, k, v, out;  // enough bytes for float32
  TensorView qv, kv, vv, ov;
  std::vector<float> lse;
  explicit Buffers(DType dt) {
    const int64_t seq = dense_plan(0).seq_len, n = seq * kHeads * kDim;
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

void BM_Attention(benchmark::State& state, int shape, DType dt, bool radial) {
  const Plan& plan = radial ? radial_plan(shape) : dense_plan(shape);
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
void BM_RadialOverDense(benchmark::State& state, int shape, DType dt) {
  Buffers& b = buffers(dt);
  double radial_s = 0, dense_s = 0;
  for (auto _ : state) {
    const double t0 = thread_cpu_seconds();
    b.run(radial_plan(shape));
    const double t1 = thread_cpu_seconds();
    b.run(dense_plan(shape));
    const double t2 = thread_cpu_seconds();
    radial_s += t1 - t0;
    dense_s += t2 - t1;
  }
  const double density = radial_plan(shape).stats().density, ratio = radial_s / dense_s;
  state.counters["density"] = density;
  state.counters["time_ratio"] = ratio;
  state.counters["ratio_over_density"] = ratio / density;
  state.counters["radial_cpu_ms"] = 1e3 * radial_s / static_cast<double>(state.iterations());
  state.counters["dense_cpu_ms"] = 1e3 * dense_s / static_cast<double>(state.iterations());
}

// The backward's own tensors: d_out random, the forward's out and lse from one forward run.
struct GradBuffers {
  Buffers& fwd;
  std::vector<uint32_t> d_out, d_q, d_k, d_v;
  TensorView gv, dqv, dkv, dvv;
  GradBuffers(DType dt, const Plan& plan) : fwd(buffers(dt)) {
    const int64_t seq = plan.seq_len, n = seq * kHeads * kDim;
    std::mt19937 rng(11);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    for (auto* buffer : {&d_out, &d_q, &d_k, &d_v}) buffer->resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const float x = dist(rng);
      if (dt == DType::f32) reinterpret_cast<float*>(d_out.data())[i] = x;
      else reinterpret_cast<bf16_t*>(d_out.data())[i] = from_float<bf16_t>(x);
    }
    gv = TensorView::bshd(d_out.data(), dt, 1, seq, kHeads, kDim);
    dqv = TensorView::bshd(d_q.data(), dt, 1, seq, kHeads, kDim);
    dkv = TensorView::bshd(d_k.data(), dt, 1, seq, kHeads, kDim);
    dvv = TensorView::bshd(d_v.data(), dt, 1, seq, kHeads, kDim);
    fwd.run(plan);  // out and lse of this plan
  }
  void run(const Plan& plan) {
    AttentionOptions options;
    options.threads = 1;
    attention_backward_cpu(plan, fwd.qv, fwd.kv, fwd.vv, fwd.ov, gv, fwd.lse.data(), dqv, dkv,
                           dvv, options);
    benchmark::DoNotOptimize(d_q.data());
    benchmark::ClobberMemory();
  }
};

void BM_Backward(benchmark::State& state, int shape, DType dt, bool radial) {
  const Plan& plan = radial ? radial_plan(shape) : dense_plan(shape);
  GradBuffers g(dt, plan);
  for (auto _ : state) g.run(plan);
  const double flops = 2.5 * plan.stats().flops_per_head_dim * kDim * kHeads;
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.counters["density"] = plan.stats().density;
}

// Forward and backward of one plan alternately, so both see the same machine state.
void BM_BackwardOverForward(benchmark::State& state, int shape, DType dt) {
  const Plan& plan = radial_plan(shape);
  GradBuffers g(dt, plan);
  double forward_s = 0, backward_s = 0;
  for (auto _ : state) {
    const double t0 = thread_cpu_seconds();
    g.fwd.run(plan);
    const double t1 = thread_cpu_seconds();
    g.run(plan);
    const double t2 = thread_cpu_seconds();
    forward_s += t1 - t0;
    backward_s += t2 - t1;
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["forward_cpu_ms"] = 1e3 * forward_s / n;
  state.counters["backward_cpu_ms"] = 1e3 * backward_s / n;
  state.counters["backward_over_forward"] = backward_s / forward_s;
}

BENCHMARK_CAPTURE(BM_Attention, F12xT384_f32_radial, 0, DType::f32, true)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Attention, F12xT384_f32_dense, 0, DType::f32, false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Attention, F12xT384_bf16_radial, 0, DType::bf16, true)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Attention, F12xT384_bf16_dense, 0, DType::bf16, false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Attention, F36xT128_bf16_radial, 1, DType::bf16, true)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_RadialOverDense, F12xT384_f32, 0, DType::f32)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_RadialOverDense, F12xT384_bf16, 0, DType::bf16)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_RadialOverDense, F36xT128_f32, 1, DType::f32)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_RadialOverDense, F36xT128_bf16, 1, DType::bf16)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Backward, F12xT384_f32_radial, 0, DType::f32, true)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Backward, F12xT384_bf16_radial, 0, DType::bf16, true)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Backward, F12xT384_bf16_dense, 0, DType::bf16, false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_BackwardOverForward, F12xT384_f32, 0, DType::f32)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_BackwardOverForward, F12xT384_bf16, 0, DType::bf16)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_BackwardOverForward, F36xT128_bf16, 1, DType::bf16)->Unit(benchmark::kMillisecond);

}  // namespace
