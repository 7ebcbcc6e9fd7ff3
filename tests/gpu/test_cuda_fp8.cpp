// The FP8 (e4m3) forward (precision fp8: src/cuda/hopper/fp8_quantize.cu and
// fwd_fp8_consumer.cuh) against the float64 CPU reference, on inputs shaped like DiT
// activations (dit_fill below) and on plain Gaussians, with the bf16/f16 Hopper kernel's errors
// on the same inputs printed beside. Targets (issue 14): cosine similarity >= 0.999 and relative
// L2 error <= 3e-2 on every case. Outputs and lse poisoned (NaN) before the run; nothing
// outside the output view written. Skipped, saying why, unless the Hopper kernel is built and
// the device is compute capability 9.0.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <future>
#include <iostream>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "../../src/cuda/backend.hpp"
#include "gpu_harness.hpp"
#include "radial/error.hpp"

namespace radial::gpu_test {
namespace {

const char* const kFp8 = "family=hopper,precision=fp8";
const char* const kNative = "family=hopper";

std::string fp8_unavailable() {
  if (!gpu_unavailable_reason().empty()) return gpu_unavailable_reason();
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) return "cudaGetDeviceProperties failed";
  if (prop.major != 9 || prop.minor != 0)
    return std::string("device ") + prop.name + " is not compute capability 9.0";
  if (!hopper_kernel_built()) return "built without the Hopper kernel (no CuTe)";
  return "";
}

#define RADIAL_REQUIRE_FP8()                                        \
  do {                                                              \
    static const std::string why = fp8_unavailable();               \
    if (!why.empty()) GTEST_SKIP() << "FP8 test skipped: " << why; \
  } while (0)

// How the inputs are drawn.
enum class Inputs {
  gaussian,  // every element N(0, 1)
  // DiT-like (the generator the issue asks to write down), per (batch, head), for q and k:
  // channel d has a mean mu_d ~ N(0, 1), and one channel in 20 a large mean ~ N(0, 3^2); its
  // spread is sigma_d = exp(N(0, 0.3^2)); element = mu_d + sigma_d N(0, 1). One token in 100
  // (every 100th from a random offset) is an outlier: the whole token (mean included) times
  // 2. v: per-channel mean N(0, 1) plus N(0, 1).
  dit,
  // As dit with the large channel means ~ N(0, 6^2) and outlier tokens times 4: most key blocks
  // then have biases (Q's smoothing) too far apart for the bias in V (kFp8BiasSpan), so the
  // kernel's score-by-score path for such blocks runs; past the targets for e4m3 (a
  // float64 simulation of the scheme: rel. L2 0.048), held to the Gaussian bounds.
  dit_harsh,
};

void upload(TestTensor& t) {
  ASSERT_EQ(cudaMemcpy(t.device.get(), t.host.data(), t.host.size() * 2, cudaMemcpyHostToDevice),
            cudaSuccess);
}

uint16_t encode(DType dtype, float x) {
  return dtype == DType::bf16 ? from_float<bf16_t>(x).bits : from_float<f16_t>(x).bits;
}

void fill(TestTensor& t, uint64_t seed, Inputs inputs, bool is_v) {
  if (inputs == Inputs::gaussian) {
    t.randomize(seed);
    return;
  }
  const double harsh = inputs == Inputs::dit_harsh ? 2.0 : 1.0;
  const double kBigChannel = 0.05, kBigMean = 3.0 * harsh, kOutlierEvery = 100,
               kOutlier = 2.0 * harsh;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  for (int64_t b = 0; b < t.batch; ++b) {
    for (int64_t h = 0; h < t.heads; ++h) {
      std::vector<double> mu(t.dim), sigma(t.dim, 1.0);
      for (int64_t d = 0; d < t.dim; ++d) {
        mu[d] = normal(rng);
        if (!is_v) {
          if (uniform(rng) < kBigChannel) mu[d] += kBigMean * normal(rng);
          sigma[d] = std::exp(0.3 * normal(rng));
        }
      }
      const int64_t offset = static_cast<int64_t>(uniform(rng) * kOutlierEvery);
      for (int64_t s = 0; s < t.seq; ++s) {
        const bool outlier = !is_v && (s + offset) % static_cast<int64_t>(kOutlierEvery) == 0;
        for (int64_t d = 0; d < t.dim; ++d) {
          const double x = (mu[d] + sigma[d] * normal(rng)) * (outlier ? kOutlier : 1.0);
          t.host[t.index(b, s, h, d)] = encode(t.dtype, static_cast<float>(x));
        }
      }
    }
  }
  upload(t);
}

// What the FP8 kernel is held to: the float64 reference, and each row's scale of the
// log-sum-exp's e4m3 rounding error.
struct Expected {
  ReferenceResult ref;
  std::vector<double> lse_sigma;  // [batch, heads, seq], as ref.lse; empty without the lse
  double sigma_at(int64_t b, int64_t h, int64_t s) const {
    return lse_sigma.at(static_cast<size_t>((b * ref.heads + h) * ref.seq + s));
  }
};

// The log-sum-exp carries the scores' e4m3 error. With q~ = q - mean(Q) and k~ = k - mean(K)
// (the kernel's smoothing; the means' parts of the scores are exact), each of q~ and k~ rounded
// with a relative error of variance at most 2^-8 / 3 (3 mantissa bits, round to nearest), the
// lse's first-order error sum_j p_j (s^_j - s_j) has variance at most
//   2^-8 / 3 x 2 x scale^2 x sum_d q~_d^2 sum_j p_j k~_jd^2
// (q~'s rounding is shared by the row's keys: (sum_j p_j k~_jd)^2 <= sum_j p_j k~_jd^2). Its
// square root is a row's sigma. The rows with outlier tokens and large channel means have the
// largest: a bound relative to |lse| alone failed on one such row (error 0.44; seed 2929461291).
// A float64 simulation of the scheme on these inputs (bench/gpu/fp8_sim.py's quantiser, 6 seeds
// x 4096 rows) gave errors of at most 2.45 sigma (0.2 sigma on average), so a row may be off by
// kLseAbs + kLseSigmas sigma; the mean over rows stays within kLseAbs.
constexpr double kLseAbs = 0.05, kLseSigmas = 5.0;

// Each row's sigma (above), sum_j p_j k~_jd^2 from the reference with k~^2 as the values.
std::vector<double> lse_sigmas(const Plan& plan, TestTensor& q, TestTensor& k,
                               double scale) {
  const int64_t S = plan.seq_len, key_limit = plan.key_limit > 0 ? plan.key_limit : S;
  if (scale == 0.0) scale = 1.0 / std::sqrt(static_cast<double>(q.dim));
  TestTensor k2(k.dtype, Layout::bshd, k.batch, S, k.heads, k.dim);
  std::vector<double> mq(static_cast<size_t>(q.batch * q.heads * q.dim), 0.0), mk(mq);
  const auto at = [&](int64_t b, int64_t h, int64_t d) {
    return static_cast<size_t>((b * q.heads + h) * q.dim + d);
  };
  for (int64_t b = 0; b < q.batch; ++b)
    for (int64_t h = 0; h < q.heads; ++h)
      for (int64_t d = 0; d < q.dim; ++d) {
        for (int64_t s = 0; s < S; ++s) mq[at(b, h, d)] += q.at(b, s, h, d) / double(S);
        for (int64_t s = 0; s < key_limit; ++s)
          mk[at(b, h, d)] += k.at(b, s, h, d) / double(key_limit);
        for (int64_t s = 0; s < S; ++s) {
          const double x = k.at(b, s, h, d) - mk[at(b, h, d)];
          k2.host[k2.index(b, s, h, d)] = encode(k2.dtype, static_cast<float>(x * x));
        }
      }
  const ReferenceResult w = attention_reference(plan, q.host_view(), k.host_view(),
                                                k2.host_view(), scale);
  std::vector<double> sigma(static_cast<size_t>(q.batch * q.heads * S));
  for (int64_t b = 0; b < q.batch; ++b)
    for (int64_t h = 0; h < q.heads; ++h)
      for (int64_t s = 0; s < S; ++s) {
        double sum = 0;
        for (int64_t d = 0; d < q.dim; ++d) {
          const double x = q.at(b, s, h, d) - mq[at(b, h, d)];
          sum += x * x * w.at(b, s, h, d);
        }
        sigma[static_cast<size_t>((b * q.heads + h) * S + s)] =
            std::sqrt(std::ldexp(1.0, -8) / 3.0 * 2.0 * scale * scale * sum);
      }
  return sigma;
}

// q, k, v drawn from `inputs` (seeds seed, seed + 1, seed + 2), the float64 reference on them
// and, where the lse is checked, the rows' lse sigmas (a second reference pass, on its own
// thread: the single-threaded reference dominates the suite's time, and on the largest cases
// under compute-sanitizer).
Expected draw(const Plan& plan, Inputs inputs, uint64_t seed, double scale, TestTensor& q,
              TestTensor& k, TestTensor& v, bool want_lse = true) {
  fill(q, seed, inputs, false);
  fill(k, seed + 1, inputs, false);
  fill(v, seed + 2, inputs, true);
  std::future<std::vector<double>> sigmas;
  if (want_lse) {
    sigmas = std::async(std::launch::async, [&] { return lse_sigmas(plan, q, k, scale); });
  }
  ReferenceResult ref =
      attention_reference(plan, q.host_view(), k.host_view(), v.host_view(), scale);
  return {std::move(ref), want_lse ? sigmas.get() : std::vector<double>{}};
}

struct Errors {
  double cosine = 0, rel_l2 = 0, lse_max = 0, lse_mean = 0;
  double lse_sigma_mean = 0;  // the rows' mean sigma (the harsher inputs' mean bound)
  int64_t lse_over_bound = 0;  // rows whose lse error exceeds kLseAbs + kLseSigmas sigma
  int64_t non_finite_out = 0, bad_lse = 0, touched_gaps = 0;
};

// Runs `choice` on the inputs and compares with the reference; `bits`, when given, gets the
// output's elements and then the lse's.
Errors measure(const Plan& plan, const CaseSpec& c, const TestTensor& q, const TestTensor& k,
               const TestTensor& v, const Expected& expected, const std::string& choice,
               std::vector<uint32_t>* bits = nullptr) {
  const int64_t S = plan.seq_len;
  const ReferenceResult& ref = expected.ref;
  const Layout out_layout = c.layout == Layout::bshd ? Layout::bshd : Layout::padded;
  TestTensor out(c.dtype, out_layout, c.batch, S, c.heads, c.dim);
  out.poison();
  const size_t n_lse = static_cast<size_t>(c.batch * c.heads * S);
  DeviceBuffer lse_device(n_lse * sizeof(float));
  EXPECT_EQ(cudaMemset(lse_device.get(), 0xff, n_lse * sizeof(float)), cudaSuccess);
  AttentionOptions options;
  options.scale = c.scale;
  float* lse_ptr = c.want_lse ? static_cast<float*>(lse_device.get()) : nullptr;
  cuda_detail::attention_cuda_with(plan, q.device_view(), k.device_view(), v.device_view(),
                                   out.device_view(), lse_ptr, options, parse_choice(choice));
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  out.download();
  std::vector<float> lse(n_lse);
  EXPECT_EQ(cudaMemcpy(lse.data(), lse_device.get(), n_lse * sizeof(float),
                       cudaMemcpyDeviceToHost),
            cudaSuccess);
  if (bits != nullptr) {
    bits->assign(out.host.begin(), out.host.end());
    for (const float l : lse) bits->push_back(std::bit_cast<uint32_t>(l));
  }
  Errors e;
  double dot = 0, oo = 0, rr = 0, err2 = 0;
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t s = 0; s < S; ++s)
      for (int64_t h = 0; h < c.heads; ++h)
        for (int64_t d = 0; d < c.dim; ++d) {
          const double o = out.at(b, s, h, d), r = ref.at(b, s, h, d);
          if (!std::isfinite(o)) {
            ++e.non_finite_out;
            continue;
          }
          dot += o * r, oo += o * o, rr += r * r, err2 += (o - r) * (o - r);
        }
  e.cosine = dot / std::sqrt(oo * rr);
  e.rel_l2 = std::sqrt(err2 / rr);
  e.touched_gaps = out.touched_gaps();
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t h = 0; h < c.heads; ++h)
      for (int64_t s = 0; s < S; ++s) {
        const float l = lse[static_cast<size_t>((b * c.heads + h) * S + s)];
        if (!c.want_lse) {
          e.bad_lse += !std::isnan(l);
        } else if (!std::isfinite(l)) {
          ++e.bad_lse;
        } else {
          const double r = ref.lse_at(b, h, s), d = std::abs(l - r);
          e.lse_max = std::max(e.lse_max, d);
          e.lse_mean += d / static_cast<double>(n_lse);
          e.lse_sigma_mean += expected.sigma_at(b, h, s) / static_cast<double>(n_lse);
          e.lse_over_bound += d > kLseAbs + kLseSigmas * expected.sigma_at(b, h, s);
        }
      }
  return e;
}

struct Fp8Case {
  std::string name;
  Geometry geometry;
  PlanSpec spec;
  bool dense = false;
  CaseSpec run;
  Inputs inputs = Inputs::dit;
  int max_ctas = 0;  // > 0: persistent CTAs, at most this many
};
void PrintTo(const Fp8Case& c, std::ostream* os) { *os << c.name; }

// The targets, on DiT-like inputs. Plain Gaussians (zero-mean V, flat rows) are harder
// for e4m3: the output is a sum of many cancelling terms, so P's and V's rounding (3 mantissa
// bits, about 2.6% rms each) shows at full size relative to it: 5% was measured (H200).
constexpr double kMinCosine = 0.999, kMaxRelL2 = 3e-2;
constexpr double kGaussianMinCosine = 0.998, kGaussianMaxRelL2 = 6e-2;

std::vector<Fp8Case> cases() {
  const DType bf = DType::bf16, f16 = DType::f16;
  std::vector<Fp8Case> all = {
      // 1200 tokens: a partial last block of queries and keys.
      {"dit_wan_bshd", geo(5, 240), spec(Model::wan, 1.0), false, run(bf, 1, 2, 128, Layout::bshd)},
      {"gaussian_wan_bshd", geo(5, 240), spec(Model::wan, 1.0), false,
       run(bf, 1, 2, 128, Layout::bshd), Inputs::gaussian},
      // Joint attention: text keys from key_limit on masked; custom scale; packed qkv.
      {"dit_hunyuan_text_packed_scale", geo(4, 256, 100, 61), spec(Model::hunyuan, 0.95), false,
       run(bf, 2, 2, 128, Layout::packed, 0.07)},
      {"dit_hunyuan_locality_bhsd", geo(7, 200, 70, 45), spec(Model::hunyuan, 0.95), false,
       run(bf, 1, 3, 128, Layout::bhsd)},
      // One query block: the head-dim-128 kernel's 192-row tile holds it and 72 rows past the end.
      {"dit_one_block_bshd", geo(1, 120), spec(Model::wan, 1.0), true,
       run(bf, 1, 2, 128, Layout::bshd)},
      {"dit_dense_padded_no_lse", geo(1, 700), spec(Model::wan, 1.0), true,
       run(bf, 1, 2, 128, Layout::padded, 0.0, false)},
      // Long rows: 32 key blocks per row in the dense plan (4096 tokens), many in the radial one.
      {"dit_wan_long_batch2", geo(8, 512), spec(Model::wan, 0.5), false,
       run(bf, 2, 1, 128, Layout::bshd)},
      {"dit_dense_long", geo(8, 512), spec(Model::wan, 1.0), true,
       run(bf, 1, 2, 128, Layout::bshd)},
      {"dit_f16_hunyuan_text_bhsd", geo(4, 256, 100, 61), spec(Model::hunyuan, 0.95), false,
       run(f16, 1, 2, 128, Layout::bhsd)},
      {"dit_d64_bf16_hunyuan_text_packed", geo(7, 200, 70, 45), spec(Model::hunyuan, 0.95), false,
       run(bf, 2, 2, 64, Layout::packed, 0.11)},
      {"dit_d64_f16_wan_long", geo(8, 512), spec(Model::wan, 0.5), false,
       run(f16, 1, 2, 64, Layout::bshd)},
      {"gaussian_d64_bf16_dense_no_lse", geo(1, 700), spec(Model::wan, 1.0), true,
       run(bf, 1, 2, 64, Layout::padded, 0.0, false), Inputs::gaussian},
      {"dit_persistent_wan_3ctas", geo(8, 512), spec(Model::wan, 0.5), false,
       run(bf, 2, 2, 128, Layout::bshd), Inputs::dit, 3},
      {"dit_harsh_dense_long", geo(8, 512), spec(Model::wan, 1.0), true,
       run(bf, 1, 2, 128, Layout::bshd), Inputs::dit_harsh},
      {"dit_harsh_d64_hunyuan_text", geo(4, 256, 100, 61), spec(Model::hunyuan, 0.95), false,
       run(bf, 1, 2, 64, Layout::bshd), Inputs::dit_harsh},
  };
  return all;
}

class Fp8Attention : public ::testing::TestWithParam<Fp8Case> {};

TEST_P(Fp8Attention, MatchesFloat64Reference) {
  RADIAL_REQUIRE_FP8();
  const Fp8Case& c = GetParam();
  const Plan plan = c.dense ? make_dense_plan(c.geometry, c.spec.block_size, c.spec.model)
                            : make_plan(c.geometry, c.spec);
  const int64_t S = plan.seq_len;
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed) + ", seq " + std::to_string(S) + ", key_limit " +
               std::to_string(plan.key_limit));
  TestTensor q(c.run.dtype, c.run.layout, c.run.batch, S, c.run.heads, c.run.dim);
  TestTensor k(c.run.dtype, c.run.layout, c.run.batch, S, c.run.heads, c.run.dim);
  TestTensor v(c.run.dtype, c.run.layout, c.run.batch, S, c.run.heads, c.run.dim);
  const Expected ref = draw(plan, c.inputs, seed, c.run.scale, q, k, v, c.run.want_lse);
  std::string fp8 = kFp8;
  if (c.max_ctas > 0) fp8 += ",persistent=on,max_ctas=" + std::to_string(c.max_ctas);
  const Errors e = measure(plan, c.run, q, k, v, ref, fp8);
  const Errors n = measure(plan, c.run, q, k, v, ref, kNative);
  std::cout << "  fp8 " << c.name << ": cosine " << e.cosine << ", rel. L2 " << e.rel_l2
            << ", lse max error " << e.lse_max << " (mean " << e.lse_mean << ") | "
            << dtype_name(c.run.dtype)
            << " kernel: cosine " << n.cosine << ", rel. L2 " << n.rel_l2 << ", lse "
            << n.lse_max << "\n";
  EXPECT_EQ(e.non_finite_out, 0) << "outputs left unwritten (NaN) or not finite";
  EXPECT_EQ(e.touched_gaps, 0) << "elements outside the output view were written";
  EXPECT_EQ(e.bad_lse, 0) << "lse entries unwritten, not finite, or written when not asked";
  const bool gaussian = c.inputs != Inputs::dit;  // (the looser bounds: see Inputs)
  EXPECT_GE(e.cosine, gaussian ? kGaussianMinCosine : kMinCosine);
  EXPECT_LE(e.rel_l2, gaussian ? kGaussianMaxRelL2 : kMaxRelL2);
  EXPECT_EQ(e.lse_over_bound, 0) << "lse rows off by more than " << kLseAbs << " + "
                                 << kLseSigmas << " sigma (max error " << e.lse_max << ")";
  // (On the harsher inputs the rows' sigmas are larger: their mean error is held to kLseAbs plus
  // the mean sigma; measured on an H200: 0.09-0.12, 2026-12-02.)
  EXPECT_LE(e.lse_mean, kLseAbs + (c.inputs == Inputs::dit_harsh ? e.lse_sigma_mean : 0.0));
  // The native kernel on the same inputs, as the baseline.
  EXPECT_LT(n.rel_l2, out_tolerance(c.run.dtype));
}

INSTANTIATE_TEST_SUITE_P(Cases, Fp8Attention, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

// The public entry point with options.precision = fp8 runs the same kernel as the choice.
TEST(Fp8Dispatch, PrecisionOptionRunsTheFp8Kernel) {
  RADIAL_REQUIRE_FP8();
  const Plan plan = make_plan(geo(5, 240), spec(Model::wan, 1.0));
  const CaseSpec c = run(DType::bf16, 1, 2, 128, Layout::bshd);
  TestTensor q(c.dtype, c.layout, 1, plan.seq_len, 2, 128);
  TestTensor k(c.dtype, c.layout, 1, plan.seq_len, 2, 128);
  TestTensor v(c.dtype, c.layout, 1, plan.seq_len, 2, 128);
  q.randomize(21), k.randomize(22), v.randomize(23);
  const auto bits = [&](bool public_api, Precision precision) {
    TestTensor out(c.dtype, c.layout, 1, plan.seq_len, 2, 128);
    out.poison();
    AttentionOptions options;
    options.precision = precision;
    if (public_api) {
      attention(plan, q.device_view(), k.device_view(), v.device_view(), out.device_view(),
                nullptr, options);
    } else {
      cuda_detail::attention_cuda_with(plan, q.device_view(), k.device_view(), v.device_view(),
                                       out.device_view(), nullptr, options, parse_choice(kFp8));
    }
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    out.download();
    return out.host;
  };
  const auto public_fp8 = bits(true, Precision::fp8);
  EXPECT_EQ(public_fp8, bits(false, Precision::native));
  EXPECT_NE(public_fp8, bits(true, Precision::native)) << "fp8 must not round like bf16";
}

// The FP8 kernel's comparison variants (KernelChoice::variant, built with
// RADIAL_ABLATION_KERNELS) that round differently from the library's kernel compute attention
// within the Gaussian bounds, so that a variant that gets faster by getting wrong shows here
// before a benchmark reports it. The no_key_bias variants have no key bias, so the pass leaves
// their Q unsmoothed (with a smoothing mean from a sample of the tokens, their error on Gaussian
// inputs grew past these bounds: 0.072); they run on Gaussian q, whose small means cost e4m3
// no precision. fp8_direct_o accumulates P V in the FP8 product's
// accumulator, which keeps fewer than fp32's bits: on an H200 (2026-12-01) it measured
// relative L2 0.040 on the DiT-like inputs (the library's kernel 0.02), past the library's
// 3e-2, so it is a speed ceiling only and can never become the library's kernel. A variant on
// the native path is refused naming choice.variant.
TEST(Fp8Variants, MatchFloat64Reference) {
  RADIAL_REQUIRE_FP8();
  const Plan plan = make_plan(geo(8, 512), spec(Model::wan, 0.5));
  const CaseSpec c = run(DType::bf16, 1, 2, 128, Layout::bshd);
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  {
    TestTensor q(c.dtype, c.layout, 1, plan.seq_len, 2, 128);
    q.randomize(seed);
    TestTensor out(c.dtype, c.layout, 1, plan.seq_len, 2, 128);
    try {
      cuda_detail::attention_cuda_with(plan, q.device_view(), q.device_view(), q.device_view(),
                                       out.device_view(), nullptr, AttentionOptions{},
                                       [] {
                                         KernelChoice k = parse_choice(kNative);
                                         k.variant = Variant::fp8_direct_o;
                                         return k;
                                       }());
      ADD_FAILURE() << "a variant of the FP8 kernel ran on the native path";
    } catch (const Error& e) {
      EXPECT_EQ(e.argument(), "choice.variant");
    }
  }
  if (!ablation_kernels_built()) GTEST_SKIP() << "the comparison variants are not built";
  const std::vector<std::pair<const char*, Inputs>> variants = {
      {"fp8_direct_o", Inputs::dit},
      {"fp8_no_key_bias", Inputs::gaussian},
      {"fp8_no_key_bias_direct_o", Inputs::gaussian},
      {"fp8_no_key_bias_round3", Inputs::gaussian},
  };
  for (const auto& [variant, inputs] : variants) {
    SCOPED_TRACE(variant);
    TestTensor q(c.dtype, c.layout, 1, plan.seq_len, 2, 128);
    TestTensor k(c.dtype, c.layout, 1, plan.seq_len, 2, 128);
    TestTensor v(c.dtype, c.layout, 1, plan.seq_len, 2, 128);
    const Expected ref = draw(plan, inputs, seed, c.scale, q, k, v);
    const Errors e =
        measure(plan, c, q, k, v, ref, std::string(kFp8) + ",variant=" + variant);
    std::cout << "  " << variant << ": cosine " << e.cosine << ", rel. L2 " << e.rel_l2 << "\n";
    EXPECT_EQ(e.non_finite_out, 0);
    EXPECT_EQ(e.touched_gaps, 0);
    EXPECT_EQ(e.bad_lse, 0);
    EXPECT_GE(e.cosine, kGaussianMinCosine);  // all four: see above
    EXPECT_LE(e.rel_l2, kGaussianMaxRelL2);
  }
}

// Round 3's variants on the library's bf16 head-dim-128 cases (partial last blocks, text keys
// masked from key_limit, long rows, persistent CTAs), held to the library's bounds, lse
// included. Those that only move instructions or loads (late_wait, prefetch, bias_vec) give the
// library's bits, and those built on fma_o (its rounding differs: O x alpha + P V in one FFMA)
// the bits of fp8_fma_o.
class Fp8Round3 : public ::testing::TestWithParam<std::string> {};

TEST_P(Fp8Round3, MatchesLibraryBoundsAndBits) {
  RADIAL_REQUIRE_FP8();
  if (!ablation_kernels_built()) GTEST_SKIP() << "the comparison variants are not built";
  const std::vector<Fp8Case> all = cases();
  const auto found = std::find_if(all.begin(), all.end(),
                                  [](const Fp8Case& c) { return c.name == GetParam(); });
  ASSERT_NE(found, all.end()) << "no case " << GetParam() << " in cases()";
  const Fp8Case& c = *found;
  // {variant, the variant whose bits it must give}
  // (fp8_key_bias is round 3's library kernel; round 4's, the key bias in V, is standard.)
  const std::vector<std::pair<std::string, std::string>> variants = {
      {"standard", ""},
      {"fp8_key_bias", ""},
      {"fp8_late_wait", "fp8_key_bias"},
      {"fp8_prefetch", "fp8_key_bias"},
      {"fp8_fma_o", ""},
      {"fp8_fma_o_late_wait", "fp8_fma_o"},
      {"fp8_round3", "fp8_fma_o"},
      {"fp8_bias_vec", "fp8_key_bias"},
      {"fp8_round3_bias_vec", "fp8_fma_o"},
      {"fp8_sum_tensor", ""},  // (the row sums of the rounded P: other bits)
      {"fp8_round3_sum_tensor", ""},
      {"fp8_bias_in_v_fma_o", ""},
      {"fp8_pairs", ""},
      {"fp8_poly_exp_quarter", ""},
      {"fp8_poly_exp_half", ""},
      {"fp8_lazy_rescale", ""},
      {"fp8_lazy_poly", ""},
      // (round 6's library: two consumer warpgroups, O + P V then x alpha; the library's
      // kernel on persistent CTAs)
      {"fp8_two_warpgroups", ""},
      {"fp8_global_meta", "fp8_two_warpgroups"},  // (moves only loads: the same bits)
      {"fp8_q_registers", "fp8_two_warpgroups"},  // (the same products)
      // (rounds 7-10: the three-warpgroup kernel with S in fp32, round 10's library)
      {"fp8_wg3_round10", ""},
      {"fp8_wg3_whole_pv", "fp8_wg3_round10"},  // (P V in one product: the same sums)
      {"fp8_wg3_five_stages", "fp8_wg3_round10"},  // (the same arithmetic)
      {"fp8_wg3_poly_exp_quarter", ""},
      {"fp8_wg3_trace", "fp8_wg3_round10"},  // (clock stamps only)
      {"fp8_wg3_ring", "fp8_wg3_whole_pv"},  // (the same products, in a fixed order)
      {"fp8_wg3_ring_trace", "fp8_wg3_whole_pv"},
      {"fp8_wg3_ring_convoy", "fp8_wg3_whole_pv"},
      {"fp8_wg3_s_halves", ""},  // (S by two products: fp32 sums in another order)
      {"fp8_wg3_pv_overlap", "fp8_wg3_round10"},  // (the same products and adds)
      {"fp8_wg3_ring_s_halves", "fp8_wg3_s_halves"},
      {"fp8_wg3_s_halves_pv_overlap", "fp8_wg3_s_halves"},
      {"fp8_wg3_round8", "fp8_wg3_round10"},  // (round 8's library: no votes)
      {"fp8_wg3_round9", "fp8_wg3_round10"},  // (round 9's: one maximum chain, stage votes)
      {"fp8_wg3_round9_tree_max", "fp8_wg3_round10"},
      {"fp8_wg3_round9_uniform_loop", "fp8_wg3_round10"},
      // (round 11's library, S in f16, every exponential by MUFU; its candidates: the
      // look-ahead splits P V in three products, which gives the same sums; P from shared memory
      // has V^T's keys in another order, so other fp32 sums)
      {"fp8_wg3_round11", ""},
      {"fp8_wg3_s_f16_lookahead", "fp8_wg3_round11"},
      {"fp8_wg3_s_f16_ss_p", ""},
      // (round 12: a quarter, half or three quarters of the exponentials by a polynomial on
      // f16 pairs; a quarter was the library's in rounds 12-16, fp8_wg3_round12)
      {"fp8_wg3_round12", ""},
      {"fp8_wg3_f16_poly_quarter", "fp8_wg3_round12"},
      {"fp8_wg3_f16_poly_half", ""},
      {"fp8_wg3_f16_poly_three_quarters", ""},
      {"fp8_wg3_f16_poly_three_eighths", ""},
      {"fp8_wg3_f16_s_late", "fp8_wg3_round12"},  // (the next S earlier: the same arithmetic)
      // (round 16: two key blocks a step, P V summed over both in the tensor cores, other sums)
      {"fp8_wg3_pair_step", ""},
  };
  const Plan plan = make_plan(c.geometry, c.spec);
  const int64_t S = plan.seq_len;
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  TestTensor q(c.run.dtype, c.run.layout, c.run.batch, S, c.run.heads, c.run.dim);
  TestTensor k(c.run.dtype, c.run.layout, c.run.batch, S, c.run.heads, c.run.dim);
  TestTensor v(c.run.dtype, c.run.layout, c.run.batch, S, c.run.heads, c.run.dim);
  const Expected ref = draw(plan, c.inputs, seed, c.run.scale, q, k, v);
  std::string base = kFp8;
  if (c.max_ctas > 0) base += ",persistent=on,max_ctas=" + std::to_string(c.max_ctas);
  std::map<std::string, std::vector<uint32_t>> bits;
  for (const auto& [variant, same_as] : variants) {
    SCOPED_TRACE(variant);
    // (one CTA per 192-row tile: refused with persistent=on, Fp8Errors says so)
    if (variant.starts_with("fp8_wg3") && c.max_ctas > 0) continue;
    const Errors e =
        measure(plan, c.run, q, k, v, ref, base + ",variant=" + variant, &bits[variant]);
    std::cout << "  " << c.name << " " << variant << ": cosine " << e.cosine << ", rel. L2 "
              << e.rel_l2 << ", lse max error " << e.lse_max << "\n";
    EXPECT_EQ(e.non_finite_out, 0);
    EXPECT_EQ(e.touched_gaps, 0);
    EXPECT_EQ(e.bad_lse, 0);
    EXPECT_GE(e.cosine, kMinCosine);
    EXPECT_LE(e.rel_l2, kMaxRelL2);
    EXPECT_EQ(e.lse_over_bound, 0) << "lse max error " << e.lse_max;
    EXPECT_LE(e.lse_mean, kLseAbs);
    if (!same_as.empty()) {
      EXPECT_TRUE(bits[variant] == bits[same_as]) << "bits differ from " << same_as;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, Fp8Round3,
                         ::testing::Values("dit_wan_bshd", "dit_hunyuan_text_packed_scale",
                                           "dit_wan_long_batch2", "dit_persistent_wan_3ctas"),
                         [](const auto& info) { return info.param; });

// What the FP8 forward does not cover is refused, naming precision.
TEST(Fp8Errors, UnsupportedCallsNamePrecision) {
  RADIAL_REQUIRE_FP8();
  const auto refused = [](const Plan& plan, int64_t dim) -> std::string {
    TestTensor q(DType::bf16, Layout::bshd, 1, plan.seq_len, 1, dim);
    TestTensor out(DType::bf16, Layout::bshd, 1, plan.seq_len, 1, dim);
    q.randomize(1);
    AttentionOptions options;
    options.precision = Precision::fp8;
    try {
      attention(plan, q.device_view(), q.device_view(), q.device_view(), out.device_view(),
                nullptr, options);
    } catch (const Error& e) {
      return e.argument();
    }
    return "(nothing thrown)";
  };
  EXPECT_EQ(refused(make_plan(geo(2, 256), spec(Model::wan, 1.0, 64)), 128), "precision");
  EXPECT_EQ(refused(make_plan(geo(2, 256), spec(Model::wan, 1.0)), 96), "q.dim");
}

// A NaN in the inputs comes out as NaN, never as finite numbers. In a token among the means'
// sample (the first 16 of its 128-token block, fp8_quantize.hpp) of Q or K it makes a channel's
// mean NaN, so every score and every output of its head is NaN (through the exponentials that
// the polynomial takes too). Elsewhere in Q it makes its block's scale NaN, so the rows of that
// block are NaN and the others finite; in K its key block's scale, so the rows that keep that
// key block are NaN and the others finite. In V it reaches that channel of the rows whose kept
// key blocks hold its key (its own block row at least) and no other channel. The other head
// stays finite in every case.
TEST(Fp8Errors, NaNInputsComeOutNaN) {
  RADIAL_REQUIRE_FP8();
  const Plan plan = make_plan(geo(5, 240), spec(Model::wan, 1.0));  // 1200 tokens
  constexpr int kHead = 1, kChannel = 5;
  const char* names[3] = {"q", "k", "v"};
  // Rows whose block row keeps key block kb.
  const auto keeps = [&](int64_t s, int kb) {
    const int r = static_cast<int>(s / 128);
    const auto begin = plan.col_index.begin() + plan.row_offset[r],
               end = plan.col_index.begin() + plan.row_offset[r + 1];
    return std::find(begin, end, kb) != end;
  };
  for (const int token : {300, 260})  // 300 % 128 = 44: outside the sample; 260 % 128 = 4
    for (int which = 0; which < 3; ++which) {
      const bool sampled = token % 128 < 16;
      SCOPED_TRACE(std::string("NaN in ") + names[which] + " at token " + std::to_string(token));
      TestTensor q(DType::bf16, Layout::bshd, 1, plan.seq_len, 2, 128);
      TestTensor k(DType::bf16, Layout::bshd, 1, plan.seq_len, 2, 128);
      TestTensor v(DType::bf16, Layout::bshd, 1, plan.seq_len, 2, 128);
      TestTensor out(DType::bf16, Layout::bshd, 1, plan.seq_len, 2, 128);
      q.randomize(31), k.randomize(32), v.randomize(33);
      TestTensor& bad = which == 0 ? q : which == 1 ? k : v;
      bad.host[bad.index(0, token, kHead, kChannel)] = 0x7fc0;  // bf16 quiet NaN
      ASSERT_EQ(cudaMemcpy(bad.device.get(), bad.host.data(), bad.host.size() * 2,
                           cudaMemcpyHostToDevice),
                cudaSuccess);
      out.poison();
      AttentionOptions options;
      options.precision = Precision::fp8;
      attention(plan, q.device_view(), k.device_view(), v.device_view(), out.device_view(),
                nullptr, options);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      out.download();
      int64_t finite_other_head = 0, elements = 0, want_nan = 0, finite_where_nan = 0;
      int64_t non_finite_where_finite = 0;
      for (int64_t s = 0; s < plan.seq_len; ++s)
        for (int64_t d = 0; d < 128; ++d) {
          finite_other_head += std::isfinite(out.at(0, s, 1 - kHead, d));
          ++elements;
          bool nan_here;  // what this output must be: NaN, or finite
          if (which == 2) {
            nan_here = d == kChannel && keeps(s, token / 128);
          } else if (sampled) {
            nan_here = true;
          } else {
            nan_here = which == 0 ? s / 128 == token / 128 : keeps(s, token / 128);
          }
          const bool finite = std::isfinite(out.at(0, s, kHead, d));
          want_nan += nan_here;
          finite_where_nan += nan_here && finite;
          non_finite_where_finite += !nan_here && !finite;
        }
      EXPECT_EQ(finite_other_head, elements) << "the head without NaN lost finite outputs";
      EXPECT_GT(want_nan, 0);
      EXPECT_EQ(finite_where_nan, 0) << "finite outputs that depend on the NaN";
      if (which == 2 || !sampled) {
        EXPECT_EQ(non_finite_where_finite, 0) << "the NaN reached outputs that do not see it";
      }
    }
}

// Scores of thousands of exp2 units: in head 1, Q x 30 everywhere and K x 30 in key block 2
// only, on the library's kernel, where such blocks go back to the exponentials' path block by
// block (kLinRawTop, fwd_fp8_s_f16.cuh), and on round 12's (fp8_wg3_round12, with the
// comparison kernels), all exponentials: the rows keeping block 2 have it on the exponentials'
// path and their other blocks (scores below 1024 units) on the fast one.
// Such near one-hot rows are past e4m3's accuracy (a score's rounding error is tens of units), so
// what is checked is what attention guarantees whatever the rounding: every output and lse
// finite, and each output a weighted mean of V (inside each channel's range of V, widened by
// e4m3's rounding of V and of the weights' sum). Head 0 (unscaled) stays within the Gaussian
// bounds. The inputs are checked to reach the fallback's range.
TEST(Fp8Errors, HugeScoresStayFiniteAndInsideVsRange) {
  RADIAL_REQUIRE_FP8();
  const Plan plan = make_plan(geo(5, 240), spec(Model::wan, 1.0));  // 1200 tokens
  const int64_t S = plan.seq_len;
  constexpr int kHuge = 1, kBlock = 2;
  constexpr float kFactor = 30.f;
  TestTensor q(DType::bf16, Layout::bshd, 1, S, 2, 128);
  TestTensor k(DType::bf16, Layout::bshd, 1, S, 2, 128);
  TestTensor v(DType::bf16, Layout::bshd, 1, S, 2, 128);
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  q.randomize(seed), k.randomize(seed + 1), v.randomize(seed + 2);
  for (int64_t s = 0; s < S; ++s)
    for (int64_t d = 0; d < 128; ++d) {
      const int64_t i = q.index(0, s, kHuge, d);
      q.host[i] = encode(DType::bf16, kFactor * q.at(0, s, kHuge, d));
      if (s / 128 == kBlock) k.host[i] = encode(DType::bf16, kFactor * k.at(0, s, kHuge, d));
    }
  upload(q), upload(k);
  const double scale = 1.0 / std::sqrt(128.0), log2e = 1.4426950408889634;
  double block_max = 0, other_max = 0;  // head 1's largest scores in exp2 units
  for (int64_t i = 0; i < S; ++i)
    for (int64_t j = 0; j < S; ++j) {
      double dot = 0;
      for (int64_t d = 0; d < 128; ++d) dot += double(q.at(0, i, kHuge, d)) * k.at(0, j, kHuge, d);
      (j / 128 == kBlock ? block_max : other_max) =
          std::max(j / 128 == kBlock ? block_max : other_max, dot * scale * log2e);
    }
  EXPECT_GT(block_max, 2048.0) << "block " << kBlock << " does not reach the fallback's range";
  EXPECT_LT(other_max, 512.0) << "the other blocks do not stay on the fast path";
  const ReferenceResult ref =
      attention_reference(plan, q.host_view(), k.host_view(), v.host_view(), scale);
  std::vector<std::string> choices = {kFp8};
  if (ablation_kernels_built()) choices.push_back(std::string(kFp8) + ",variant=fp8_wg3_round12");
  for (const std::string& choice : choices) {
    SCOPED_TRACE(choice);
    TestTensor out(DType::bf16, Layout::bshd, 1, S, 2, 128);
    out.poison();
    DeviceBuffer lse(2 * S * sizeof(float));
    ASSERT_EQ(cudaMemset(lse.get(), 0xff, 2 * S * sizeof(float)), cudaSuccess);  // NaN
    cuda_detail::attention_cuda_with(plan, q.device_view(), k.device_view(), v.device_view(),
                                     out.device_view(), static_cast<float*>(lse.get()),
                                     AttentionOptions{}, parse_choice(choice));
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    out.download();
    std::vector<float> lse_host(2 * S);
    ASSERT_EQ(cudaMemcpy(lse_host.data(), lse.get(), 2 * S * sizeof(float),
                         cudaMemcpyDeviceToHost),
              cudaSuccess);
    int64_t non_finite = 0, outside = 0;
    for (const float x : lse_host) non_finite += !std::isfinite(x);
    for (int64_t d = 0; d < 128; ++d) {
      double lo = INFINITY, hi = -INFINITY;  // channel d's range over head 1's keys
      for (int64_t j = 0; j < S; ++j) {
        const double x = v.at(0, j, kHuge, d);
        lo = std::min(lo, x), hi = std::max(hi, x);
      }
      const double slack = 0.15 * std::max(std::abs(lo), std::abs(hi));
      for (int64_t s = 0; s < S; ++s) {
        const double o = out.at(0, s, kHuge, d);
        non_finite += !std::isfinite(o);
        outside += std::isfinite(o) && (o < lo - slack || o > hi + slack);
      }
    }
    EXPECT_EQ(non_finite, 0);
    EXPECT_EQ(outside, 0) << "outputs outside V's range: weights that are not a softmax's";
    double dot = 0, oo = 0, rr = 0, err2 = 0;  // head 0 against the reference
    for (int64_t s = 0; s < S; ++s)
      for (int64_t d = 0; d < 128; ++d) {
        const double o = out.at(0, s, 1 - kHuge, d), r = ref.at(0, s, 1 - kHuge, d);
        dot += o * r, oo += o * o, rr += r * r, err2 += (o - r) * (o - r);
      }
    EXPECT_GE(dot / std::sqrt(oo * rr), kGaussianMinCosine);
    EXPECT_LE(std::sqrt(err2 / rr), kGaussianMaxRelL2);
    std::cout << "  " << choice << ": head 1's largest scores " << block_max
              << " exp2 units in block " << kBlock << ", " << other_max
              << " elsewhere; head 0 rel. L2 " << std::sqrt(err2 / rr) << "\n";
  }
}

// The three-warpgroup kernel's 192-row tiles in the locality order (the default row_order,
// FwdParams::tile_order) and in natural order compute each tile alike, so the outputs and the
// log-sum-exp are the same bits; several tiles a head, two heads, batch 2, a partial last tile.
TEST(Fp8TileOrder, LocalityAndNaturalOrdersGiveTheSameBits) {
  RADIAL_REQUIRE_FP8();
  const Plan plan = make_plan(geo(6, 500), spec(Model::wan, 1.0));  // 3000 tokens, 16 tiles
  TestTensor q(DType::bf16, Layout::bshd, 2, plan.seq_len, 2, 128);
  TestTensor k(DType::bf16, Layout::bshd, 2, plan.seq_len, 2, 128);
  TestTensor v(DType::bf16, Layout::bshd, 2, plan.seq_len, 2, 128);
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  q.randomize(seed), k.randomize(seed + 1), v.randomize(seed + 2);
  const size_t n_lse = static_cast<size_t>(2 * 2 * plan.seq_len);
  std::vector<std::vector<uint16_t>> outs;
  std::vector<std::vector<float>> lses;
  for (const char* order : {"locality", "natural"}) {
    SCOPED_TRACE(order);
    TestTensor out(DType::bf16, Layout::bshd, 2, plan.seq_len, 2, 128);
    out.poison();
    DeviceBuffer lse(n_lse * sizeof(float));
    ASSERT_EQ(cudaMemset(lse.get(), 0xff, n_lse * sizeof(float)), cudaSuccess);  // NaN
    cuda_detail::attention_cuda_with(plan, q.device_view(), k.device_view(), v.device_view(),
                                     out.device_view(), static_cast<float*>(lse.get()),
                                     AttentionOptions{},
                                     parse_choice(std::string(kFp8) + ",row_order=" + order));
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    out.download();
    std::vector<float> host(n_lse);
    ASSERT_EQ(cudaMemcpy(host.data(), lse.get(), n_lse * sizeof(float), cudaMemcpyDeviceToHost),
              cudaSuccess);
    int64_t non_finite = 0;
    for (const float x : host) non_finite += !std::isfinite(x);
    for (int64_t s = 0; s < plan.seq_len; ++s)
      for (int64_t d = 0; d < 128; ++d) non_finite += !std::isfinite(out.at(1, s, 1, d));
    EXPECT_EQ(non_finite, 0);
    outs.push_back(out.host);
    lses.push_back(host);
  }
  EXPECT_TRUE(outs[0] == outs[1]) << "the outputs differ between the two orders";
  EXPECT_TRUE(lses[0] == lses[1]) << "the log-sum-exp differs between the two orders";
}

// A block-64 plan with the FP8 choice given explicitly is refused naming the block size (the
// 192-row tiles' order is made only for block-128 plans, so it cannot fail first).
TEST(Fp8Errors, ExplicitChoiceOnBlock64PlanNamesTheBlockSize) {
  RADIAL_REQUIRE_FP8();
  const Plan plan = make_plan(geo(2, 256), spec(Model::wan, 1.0, 64));
  TestTensor q(DType::bf16, Layout::bshd, 1, plan.seq_len, 1, 128);
  TestTensor out(DType::bf16, Layout::bshd, 1, plan.seq_len, 1, 128);
  q.randomize(3);
  std::string argument = "(nothing thrown)";
  try {
    cuda_detail::attention_cuda_with(plan, q.device_view(), q.device_view(), q.device_view(),
                                     out.device_view(), nullptr, AttentionOptions{},
                                     parse_choice(kFp8));
  } catch (const Error& e) {
    argument = e.argument();
  }
  EXPECT_EQ(argument, "plan.block_size");
}

// The three-warpgroup variant has one CTA per 192-row tile: persistent=on is refused by name.
// (The library's kernel takes the two-warpgroup one for persistent CTAs.)
TEST(Fp8Errors, ThreeWarpgroupVariantRefusesPersistent) {
  RADIAL_REQUIRE_FP8();
  if (!ablation_kernels_built()) GTEST_SKIP() << "the comparison variants are not built";
  const Plan plan = make_plan(geo(2, 256), spec(Model::wan, 1.0));
  TestTensor q(DType::bf16, Layout::bshd, 1, plan.seq_len, 1, 128);
  TestTensor out(DType::bf16, Layout::bshd, 1, plan.seq_len, 1, 128);
  q.randomize(2);
  try {
    cuda_detail::attention_cuda_with(
        plan, q.device_view(), q.device_view(), q.device_view(), out.device_view(), nullptr,
        AttentionOptions{},
        parse_choice(std::string(kFp8) + ",persistent=on,variant=fp8_wg3_whole_pv"));
    ADD_FAILURE() << "persistent=on ran with the three-warpgroup variant";
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), "choice.persistent");
  }
}

}  // namespace
}  // namespace radial::gpu_test
