// The tiled CPU attention against the float64 reference, and the reference against a plain
// dense softmax written here independently, on fresh random inputs each run (the seed is
// printed with any failure).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iomanip>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "../src/cpu/convert.hpp"
#include "../src/cpu/isa.hpp"
#include "radial/attention.hpp"
#include "radial/plan.hpp"
#include "plan_cases.hpp"
#include "tensor_buffer.hpp"

namespace radial {
namespace {

// Errors of a run against a reference, over the whole view.
struct Comparison {
  double max_abs = 0, ref_max = 0, lse_max_abs = 0;
  int64_t unwritten = 0;        // NaN left in the output or lse where the reference is finite
  int64_t outside_touched = 0;  // elements of the buffer outside the view that changed
  double rel() const { return ref_max > 0 ? max_abs / ref_max : max_abs; }
};

Comparison compare(const Tensor& out, const std::vector<float>& lse, const ReferenceResult& ref) {
  Comparison c;
  const TensorView& v = out.view;
  std::vector<char> inside(static_cast<size_t>(out.elements()), 0);
  for (int64_t b = 0; b < v.batch; ++b)
    for (int64_t s = 0; s < v.seq; ++s)
      for (int64_t h = 0; h < v.heads; ++h) {
        for (int64_t d = 0; d < v.dim; ++d) {
          inside[out.flat(b, s, h, d)] = 1;
          const double got = out.get(b, s, h, d), want = ref.at(b, s, h, d);
          if (std::isnan(got)) {
            ++c.unwritten;
            continue;
          }
          c.max_abs = std::max(c.max_abs, std::fabs(got - want));
          c.ref_max = std::max(c.ref_max, std::fabs(want));
        }
        const double got = lse[(b * v.heads + h) * v.seq + s];
        if (std::isnan(got)) ++c.unwritten;
        else c.lse_max_abs = std::max(c.lse_max_abs, std::fabs(got - ref.lse_at(b, h, s)));
      }
  for (int64_t i = 0; i < out.elements(); ++i) {
    if (!inside[i] && !std::isnan(out.get_flat(i))) ++c.outside_touched;
  }
  return c;
}

struct Inputs {
  Tensor q, k, v;
  Inputs(DType dt, Layout layout, int64_t b, int64_t s, int64_t h, int64_t d, std::mt19937& rng)
      : q(dt, layout, b, s, h, d), k(dt, layout, b, s, h, d), v(dt, layout, b, s, h, d) {
    // Scores of standard deviation ~2.5 at scale 1/sqrt(d): peaked softmax rows, not flat ones.
    q.fill_random(rng, 1.6f);
    k.fill_random(rng, 1.6f);
    v.fill_random(rng, 1.0f);
  }
};

struct RunResult {
  Tensor out;
  std::vector<float> lse;
};

RunResult run_cpu(const Plan& plan, const Inputs& in, Layout out_layout,
                  const AttentionOptions& options = {}) {
  const TensorView& q = in.q.view;
  RunResult r{Tensor(q.dtype, out_layout, q.batch, q.seq, q.heads, q.dim), {}};
  r.out.fill(NAN);  // poison: anything not written stays NaN
  r.lse.assign(static_cast<size_t>(q.batch * q.heads * q.seq), NAN);
  attention_cpu(plan, in.q.view, in.k.view, in.v.view, r.out.view, r.lse.data(), options);
  return r;
}

// Output rounding bounds the error of 16-bit outputs: 2^-8 (bf16) and 2^-11 (f16) relative
// to the largest output, half of that for rounding, the rest for float32 accumulation.
double rel_bound(DType dt) {
  return dt == DType::f32 ? 1e-5 : dt == DType::bf16 ? 5e-3 : 1e-3;
}

class CpuVsReference : public ::testing::TestWithParam<Case> {};

TEST_P(CpuVsReference, MatchesWithinDtypeBound) {
  const Case& c = GetParam();
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const Plan plan = plan_for(c, rng);
  Inputs in(c.dtype, c.layout, c.batch, plan.seq_len, c.heads, c.dim, rng);
  const ReferenceResult ref = attention_reference(plan, in.q.view, in.k.view, in.v.view);
  // The output in another layout than the inputs, so strides are read and written independently.
  const Layout out_layout = c.layout == Layout::bshd ? Layout::slice : Layout::bshd;
  const RunResult run = run_cpu(plan, in, out_layout);
  const Comparison cmp = compare(run.out, run.lse, ref);
  EXPECT_EQ(cmp.unwritten, 0);
  EXPECT_EQ(cmp.outside_touched, 0);
  EXPECT_GT(cmp.ref_max, 0.05);  // a real signal, not an all-zero output
  EXPECT_LT(cmp.rel(), rel_bound(c.dtype)) << "max abs " << cmp.max_abs << ", ref max " << cmp.ref_max;
  EXPECT_LT(cmp.lse_max_abs, 2e-5) << "lse";
  std::ostringstream errors;
  errors << std::scientific << std::setprecision(2) << cmp.rel() << " (lse " << cmp.lse_max_abs << ")";
  RecordProperty("rel_error", errors.str());
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CpuVsReference, ::testing::ValuesIn(shape_cases()),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

// The reference itself against an independent dense softmax, written here without any plan.
TEST(AttentionReference, DensePlanMatchesNaiveSoftmax) {
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const int64_t B = 2, S = 150, H = 2, D = 24;
  Inputs in(DType::f32, Layout::bhsd, B, S, H, D, rng);
  Geometry g;
  g.frames = 3, g.tokens_per_frame = 50;
  const Plan plan = make_dense_plan(g, 64);
  const double scale = 0.3;
  const ReferenceResult ref = attention_reference(plan, in.q.view, in.k.view, in.v.view, scale);
  AttentionOptions options;
  options.scale = scale;
  const RunResult run = run_cpu(plan, in, Layout::bshd, options);
  double worst = 0, worst_cpu = 0, worst_lse = 0, worst_lse_cpu = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t s = 0; s < S; ++s) {
        std::vector<double> w(S);
        for (int64_t t = 0; t < S; ++t) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += in.q.get(b, s, h, d) * in.k.get(b, t, h, d);
          w[t] = scale * dot;
        }
        const double top = *std::max_element(w.begin(), w.end());
        double sum = 0;
        for (double& x : w) sum += (x = std::exp(x - top));
        for (int64_t d = 0; d < D; ++d) {
          double o = 0;
          for (int64_t t = 0; t < S; ++t) o += w[t] * in.v.get(b, t, h, d);
          o /= sum;
          worst = std::max(worst, std::fabs(o - ref.at(b, s, h, d)));
          worst_cpu = std::max(worst_cpu, std::fabs(o - run.out.get(b, s, h, d)));
        }
        const double lse = top + std::log(sum);
        worst_lse = std::max(worst_lse, std::fabs(lse - ref.lse_at(b, h, s)));
        worst_lse_cpu = std::max(worst_lse_cpu, std::fabs(lse - run.lse[(b * H + h) * S + s]));
      }
  EXPECT_LT(worst, 1e-12);
  EXPECT_LT(worst_lse, 1e-9);
  EXPECT_LT(worst_cpu, 1e-5);
  EXPECT_LT(worst_lse_cpu, 2e-5);
}

// The reference applies the block mask: a one-block-per-row plan attends within its own block.
TEST(AttentionReference, BlockDiagonalPlanAttendsWithinBlock) {
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const int64_t S = 200, D = 16;
  // Rows of block 0 attend to block 0 only, and row block r > 0 to blocks 0 and r.
  const Plan plan =
      pattern_plan(S, 0, -1, 64, [](int32_t r, int32_t c) { return r == c || c == 0; });
  Inputs in(DType::f32, Layout::bshd, 1, S, 1, D, rng);
  const ReferenceResult ref = attention_reference(plan, in.q.view, in.k.view, in.v.view);
  const int64_t s = 150;  // block row 2: keys 0..63 and 128..191
  std::vector<double> w;
  std::vector<int64_t> keys;
  for (int64_t t = 0; t < S; ++t)
    if (t < 64 || (t >= 128 && t < 192)) keys.push_back(t);
  double top = -INFINITY;
  for (int64_t t : keys) {
    double dot = 0;
    for (int64_t d = 0; d < D; ++d) dot += in.q.get(0, s, 0, d) * in.k.get(0, t, 0, d);
    w.push_back(dot / 4.0);
    top = std::max(top, w.back());
  }
  double sum = 0;
  for (double& x : w) sum += (x = std::exp(x - top));
  for (int64_t d = 0; d < D; ++d) {
    double o = 0;
    for (size_t i = 0; i < keys.size(); ++i) o += w[i] * in.v.get(0, keys[i], 0, d);
    EXPECT_NEAR(o / sum, ref.at(0, s, 0, d), 1e-12);
  }
}

// Keys past text_valid are padding: changing them (even to NaN) changes nothing.
TEST(AttentionCpu, MaskedTextKeysHaveNoEffect) {
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  Geometry g;
  g.frames = 3, g.tokens_per_frame = 100, g.text_tokens = 90, g.text_valid = 21;
  PlanSpec spec;
  spec.model = Model::hunyuan, spec.block_size = 64;
  const Plan plan = make_plan(g, spec);
  ASSERT_NE(plan.partial_key_block(), -1);
  Inputs in(DType::bf16, Layout::bshd, 2, plan.seq_len, 2, 64, rng);
  const RunResult before = run_cpu(plan, in, Layout::bhsd);
  const ReferenceResult ref_before = attention_reference(plan, in.q.view, in.k.view, in.v.view);
  std::normal_distribution<float> big(0.0f, 50.0f);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = plan.key_limit; t < plan.seq_len; ++t)
      for (int64_t h = 0; h < 2; ++h)
        for (int64_t d = 0; d < 64; ++d) {
          in.k.set(b, t, h, d, t % 2 ? NAN : big(rng));
          in.v.set(b, t, h, d, t % 3 ? NAN : big(rng));
        }
  const RunResult after = run_cpu(plan, in, Layout::bhsd);
  ASSERT_EQ(before.out.bytes, after.out.bytes);
  ASSERT_EQ(0, std::memcmp(before.lse.data(), after.lse.data(), before.lse.size() * sizeof(float)));
  const ReferenceResult ref_after = attention_reference(plan, in.q.view, in.k.view, in.v.view);
  EXPECT_EQ(ref_before.out, ref_after.out);
  const Comparison cmp = compare(after.out, after.lse, ref_after);
  EXPECT_EQ(cmp.unwritten, 0);
  EXPECT_LT(cmp.rel(), rel_bound(DType::bf16));
}

// Each query row is computed by one thread in a fixed order: results do not depend on the
// number of threads, bit for bit.
TEST(AttentionCpu, SameResultForAnyThreadCount) {
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  Geometry g;
  g.frames = 5, g.tokens_per_frame = 120;
  PlanSpec spec;
  spec.block_size = 64;
  const Plan plan = make_plan(g, spec);
  Inputs in(DType::f16, Layout::bhsd, 2, plan.seq_len, 3, 64, rng);
  AttentionOptions one, three;
  one.threads = 1, three.threads = 3;
  const RunResult a = run_cpu(plan, in, Layout::bshd, one);
  const RunResult b = run_cpu(plan, in, Layout::bshd, three);
  EXPECT_EQ(a.out.bytes, b.out.bytes);
  EXPECT_EQ(0, std::memcmp(a.lse.data(), b.lse.data(), a.lse.size() * sizeof(float)));
}

// The public entry point dispatches CPU tensors to the CPU backend.
TEST(Attention, AutomaticBackendOnHostIsCpu) {
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  Geometry g;
  g.frames = 2, g.tokens_per_frame = 70;
  const Plan plan = make_dense_plan(g, 64);
  Inputs in(DType::f32, Layout::bshd, 1, plan.seq_len, 2, 32, rng);
  const RunResult direct = run_cpu(plan, in, Layout::bshd);
  Tensor out(DType::f32, Layout::bshd, 1, plan.seq_len, 2, 32);
  out.fill(NAN);
  attention(plan, in.q.view, in.k.view, in.v.view, out.view, nullptr);  // lse not wanted
  EXPECT_EQ(direct.out.bytes, out.bytes);
}

// NaN never passes silently: NaN in q, k or v shows up exactly where the reference puts it.
TEST(AttentionCpu, NaNInputsPropagateLikeReference) {
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  Geometry g;
  g.frames = 4, g.tokens_per_frame = 100;
  PlanSpec spec;
  spec.block_size = 64, spec.decay_factor = 0.2;
  const Plan plan = make_plan(g, spec);
  for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
    SCOPED_TRACE(dtype_name(dt));
    Inputs in(dt, Layout::bshd, 1, plan.seq_len, 2, 32, rng);
    in.q.set(0, 10, 0, 5, NAN);   // one query row of head 0
    in.k.set(0, 300, 1, 0, NAN);  // one key of head 1: every row that attends it
    in.v.set(0, 77, 0, 31, NAN);  // one value element of head 0
    const ReferenceResult ref = attention_reference(plan, in.q.view, in.k.view, in.v.view);
    const RunResult run = run_cpu(plan, in, Layout::bshd);
    int64_t nan_rows = 0, mismatched = 0;
    for (int64_t s = 0; s < plan.seq_len; ++s)
      for (int64_t h = 0; h < 2; ++h) {
        for (int64_t d = 0; d < 32; ++d) {
          mismatched += std::isnan(ref.at(0, s, h, d)) != std::isnan(run.out.get(0, s, h, d));
        }
        mismatched += std::isnan(ref.lse_at(0, h, s)) != std::isnan(run.lse[h * plan.seq_len + s]);
        nan_rows += std::isnan(run.out.get(0, s, h, 0));
      }
    EXPECT_EQ(mismatched, 0);
    EXPECT_TRUE(std::isnan(run.out.get(0, 10, 0, 0)));
    EXPECT_TRUE(std::isnan(run.lse[10]));
    EXPECT_TRUE(std::isnan(run.out.get(0, 300, 1, 3)));  // row 300 attends its own block
    EXPECT_TRUE(std::isnan(run.out.get(0, 77, 0, 31)));
    EXPECT_GT(nan_rows, 64);                        // whole blocks of rows, not one element
    EXPECT_LT(nan_rows, 2 * plan.seq_len);          // and not everything
  }
}

// Every compiled variant of the kernel (AVX-512, AVX2, baseline: different register tiles)
// that this processor can run, on a plan with masked text keys and a partial query block.
TEST(AttentionCpu, EveryInstructionSetVariantMatchesReference) {
  struct Restore {
    ~Restore() { cpu::force_isa(cpu::Isa::best); }
  } restore;
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  Geometry g;
  g.frames = 3, g.tokens_per_frame = 90, g.text_tokens = 50, g.text_valid = 33;
  PlanSpec spec;
  spec.model = Model::hunyuan, spec.block_size = 64;
  const Plan plan = make_plan(g, spec);
  int variants = 0;
  for (cpu::Isa isa : {cpu::Isa::avx512, cpu::Isa::avx2, cpu::Isa::baseline}) {
    if (!cpu::isa_supported(isa)) continue;
    ++variants;
    cpu::force_isa(isa);
    ASSERT_EQ(cpu::active_isa(), isa);
    for (DType dt : {DType::f32, DType::bf16}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " isa " + std::to_string(static_cast<int>(isa)));
      Inputs in(dt, Layout::bhsd, 2, plan.seq_len, 2, 48, rng);
      const ReferenceResult ref = attention_reference(plan, in.q.view, in.k.view, in.v.view);
      const RunResult run = run_cpu(plan, in, Layout::slice);
      const Comparison cmp = compare(run.out, run.lse, ref);
      EXPECT_EQ(cmp.unwritten, 0);
      EXPECT_EQ(cmp.outside_touched, 0);
      EXPECT_LT(cmp.rel(), rel_bound(dt));
      EXPECT_LT(cmp.lse_max_abs, 2e-5);
    }
  }
  EXPECT_GE(variants, 1);
}

// The vectorisable f16 load in the kernels equals the exact conversion on every bit pattern.
TEST(CpuConvert, F16LoadMatchesExactConversionOnAllValues) {
  int64_t wrong = 0;
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    const f16_t h{static_cast<uint16_t>(bits)};
    const float fast = cpu::load_float(h), exact = to_float(h);
    uint32_t a, b;
    std::memcpy(&a, &fast, 4);
    std::memcpy(&b, &exact, 4);
    const bool same = std::isnan(exact) ? std::isnan(fast) : a == b;
    wrong += !same;
  }
  EXPECT_EQ(wrong, 0);
}

}  // namespace
}  // namespace radial
