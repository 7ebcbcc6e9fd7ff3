// `radial bench`: radial against dense attention for one geometry, on fresh random inputs, on
// the best backend present. Reports times, their ratio beside the density, and how far the
// radial output is from the dense one.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <new>
#include <optional>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "bench_runner.hpp"
#include "mask_dump.hpp"
#include "options.hpp"
#include "progress.hpp"
#include "core/checked_math.hpp"
#include "radial/error.hpp"
#include "radial/plan.hpp"

namespace radial_cli {

namespace {

radial::DType parse_dtype(const std::string& name) {
  if (name == "bf16") return radial::DType::bf16;
  if (name == "fp16") return radial::DType::f16;
  if (name == "fp32") return radial::DType::f32;
  throw radial::Error("--dtype", "bf16, fp16 or fp32", name);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Comparison {
  double rel_l2 = 0, max_abs = 0, lse_max_abs = 0;
  size_t nonfinite_out = 0, nonfinite_lse = 0;
};

// Radial against dense, accumulated in double. Non-finite values (poison left unwritten, or
// overflow) are counted rather than compared, and fail the run.
Comparison compare(const std::vector<double>& radial_out, const std::vector<double>& dense_out,
                   const std::vector<float>& radial_lse, const std::vector<float>& dense_lse) {
  Comparison c;
  double diff2 = 0, ref2 = 0;
  for (size_t i = 0; i < dense_out.size(); ++i) {
    const double r = radial_out[i], d = dense_out[i];
    if (!std::isfinite(r) || !std::isfinite(d)) {
      ++c.nonfinite_out;
      continue;
    }
    diff2 += (r - d) * (r - d);
    ref2 += d * d;
    c.max_abs = std::max(c.max_abs, std::abs(r - d));
  }
  c.rel_l2 = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  for (size_t i = 0; i < dense_lse.size(); ++i) {
    if (!std::isfinite(radial_lse[i]) || !std::isfinite(dense_lse[i])) {
      ++c.nonfinite_lse;
      continue;
    }
    c.lse_max_abs = std::max(c.lse_max_abs, std::abs(double(radial_lse[i]) - dense_lse[i]));
  }
  return c;
}

std::string gib(double bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  return text;
}

const char* const kShapeArgument = "--batch * --heads * tokens * --head-dim";

// Refuses, before anything is allocated, a shape whose sizes overflow 64 bits or whose host
// buffers cannot fit in this machine's memory: q, k, v and two outputs in the dtype, two lse in
// float, and the two outputs again (a copy and a widening to double) for the comparison.
// Returns the sizes and bytes asked for, for the message if memory runs out all the same.
std::string check_bench_memory(const BenchShape& shape) {
  const std::string argument = kShapeArgument;
  const std::string sizes = std::to_string(shape.batch) + " * " + std::to_string(shape.heads) +
                            " * " + std::to_string(shape.seq) + " * " + std::to_string(shape.dim);
  const int64_t element = radial::dtype_size(shape.dtype);
  const auto elements = radial::checked::product({shape.batch, shape.heads, shape.seq, shape.dim});
  const auto lse = radial::checked::product({shape.batch, shape.heads, shape.seq, 4});
  const auto per_element = 7 * element + 2 * int64_t{sizeof(double)};
  const auto bytes = elements ? radial::checked::mul(*elements, per_element) : std::nullopt;
  const auto total = bytes && lse ? radial::checked::add(*bytes, 2 * *lse) : std::nullopt;
  const double memory = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGE_SIZE);
  const std::string expected = "inputs and outputs that fit in this machine's memory (" +
                               gib(memory) + ")";
  radial::require(total.has_value(), argument, expected,
                  sizes + " elements (more bytes than 64 bits count)");
  const std::string asked = sizes + " elements (" + gib(static_cast<double>(*total)) + ")";
  radial::require(static_cast<double>(*total) <= memory, argument, expected, asked);
  return asked;
}

}  // namespace

int run_bench(const BenchOptions& o) {
  const radial::Geometry geometry = o.geometry.resolve();
  const radial::PlanSpec spec = o.spec.spec(radial::parse_model(o.geometry.model));
  const radial::DType dtype = parse_dtype(o.dtype);
  const radial::Plan plan = radial::make_plan(geometry, spec);
  const radial::Plan dense = radial::make_dense_plan(geometry, spec.block_size, spec.model);

  BenchShape shape;
  shape.batch = o.batch, shape.seq = plan.seq_len, shape.heads = o.heads, shape.dim = o.head_dim;
  shape.dtype = dtype;
  const std::string asked = check_bench_memory(shape);
  // Fresh inputs each run unless a seed is asked for (to repeat a run exactly).
  const uint64_t seed = o.seed >= 0 ? static_cast<uint64_t>(o.seed)
                                    : (uint64_t(std::random_device{}()) << 32) ^ std::random_device{}();
  std::mt19937_64 rng(seed);

  // The CUDA kernels take bf16 and fp16 only; auto runs fp32 on the CPU rather than failing.
  const bool use_cuda = o.backend == "cuda" || (o.backend == "auto" &&
                                                dtype != radial::DType::f32 &&
                                                cuda_runner_available());
  const bool fp8 = o.precision == "fp8";
  radial::require(!fp8 || use_cuda, "--precision",
                  "native on the CPU backend (fp8 runs on CUDA devices of compute capability "
                  "9.0, bf16 or fp16)",
                  o.precision + " with backend cpu");
  std::unique_ptr<AttentionRunner> runner;
  try {
    Bytes q = random_tensor(shape, rng), k = random_tensor(shape, rng), v = random_tensor(shape, rng);
    runner = use_cuda ? make_cuda_runner(shape, q, k, v,
                                         fp8 ? radial::Precision::fp8 : radial::Precision::native)
                      : make_cpu_runner(shape, std::move(q), std::move(k), std::move(v), o.threads);
  } catch (const std::bad_alloc&) {
    throw radial::Error(kShapeArgument, "inputs and outputs that fit in the free memory",
                        asked + ", out of memory");
  }

  // Radial and dense alternate, so that drift (clocks, other load) touches both alike.
  Progress progress("radial bench", 2 * (o.warmup + o.iters),
                    o.progress || Progress::stderr_is_tty());
  for (int i = 0; i < o.warmup; ++i) {
    runner->run(plan, 0);
    progress.step("warm-up radial");
    runner->run(dense, 1);
    progress.step("warm-up dense");
  }
  std::vector<double> radial_s, dense_s;
  for (int i = 0; i < o.iters; ++i) {
    radial_s.push_back(runner->run(plan, 0));
    progress.step("radial");
    dense_s.push_back(runner->run(dense, 1));
    progress.step("dense");
  }
  progress.finish();

  const Comparison c = compare(to_doubles(runner->output(0), dtype),
                               to_doubles(runner->output(1), dtype), runner->lse(0),
                               runner->lse(1));
  const double t_radial = median(radial_s), t_dense = median(dense_s);
  const auto stats = plan.stats();
  const double per_call = double(o.batch) * double(o.heads) * double(o.head_dim);
  const double radial_tflops = stats.flops_per_head_dim * per_call / t_radial * 1e-12;
  const double dense_tflops = stats.dense_flops_per_head_dim * per_call / t_dense * 1e-12;
  const double ratio = t_radial / t_dense;
  const bool ok = c.nonfinite_out == 0 && c.nonfinite_lse == 0;

  if (o.json) {
    nlohmann::ordered_json j;
    j["backend"] = runner->device();
    j["model"] = radial::model_name(spec.model);
    j["frames"] = geometry.frames;
    j["tokens_per_frame"] = geometry.tokens_per_frame;
    j["text_tokens"] = geometry.text_tokens;
    j["tokens"] = plan.seq_len;
    j["decay_factor"] = spec.decay_factor;
    j["block_size"] = spec.block_size;
    j["batch"] = o.batch;
    j["heads"] = o.heads;
    j["head_dim"] = o.head_dim;
    j["dtype"] = o.dtype;
    j["precision"] = o.precision;
    j["iters"] = o.iters;
    j["seed"] = seed;
    j["density"] = stats.density;
    j["radial_ms"] = t_radial * 1e3;
    j["dense_ms"] = t_dense * 1e3;
    j["time_ratio"] = ratio;
    j["radial_tflops"] = radial_tflops;
    j["dense_tflops"] = dense_tflops;
    j["rel_l2_error"] = c.rel_l2;
    j["max_abs_error"] = c.max_abs;
    j["lse_max_abs_diff"] = c.lse_max_abs;
    j["nonfinite_outputs"] = c.nonfinite_out + c.nonfinite_lse;
    std::cout << j.dump(2) << '\n';
  } else {
    std::printf("backend         %s\n", runner->device().c_str());
    if (fp8) std::printf("precision       fp8 (quantisation included in the times)\n");
    std::printf("geometry        %s, %lld frames x %lld tokens/frame", radial::model_name(spec.model),
                static_cast<long long>(geometry.frames),
                static_cast<long long>(geometry.tokens_per_frame));
    if (geometry.text_tokens > 0)
      std::printf(" + %lld text", static_cast<long long>(geometry.text_tokens));
    std::printf(" = %lld tokens\n", static_cast<long long>(plan.seq_len));
    std::printf("shape           batch %lld, heads %lld, head dim %lld, %s; %d iters, seed %llu\n",
                static_cast<long long>(o.batch), static_cast<long long>(o.heads),
                static_cast<long long>(o.head_dim), o.dtype.c_str(), o.iters,
                static_cast<unsigned long long>(seed));
    std::printf("density         %.4f (block %d, decay factor %s)\n", stats.density,
                spec.block_size, format_decimal(spec.decay_factor).c_str());
    std::printf("radial          %10.3f ms  (%.3f TFLOP/s on kept blocks)\n", t_radial * 1e3,
                radial_tflops);
    std::printf("dense           %10.3f ms  (%.3f TFLOP/s)\n", t_dense * 1e3, dense_tflops);
    std::printf("radial / dense  %.4f  (%.2fx the density)\n", ratio, ratio / stats.density);
    std::printf("radial vs dense relative L2 error %.4g, max abs %.4g; lse max abs diff %.4g\n",
                c.rel_l2, c.max_abs, c.lse_max_abs);
  }
  if (!ok) {
    std::fprintf(stderr, "radial bench: %zu output and %zu lse values are not finite (unwritten or "
                         "overflowed)\n", c.nonfinite_out, c.nonfinite_lse);
    return 1;
  }
  return 0;
}

}  // namespace radial_cli
