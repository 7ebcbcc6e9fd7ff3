// The tiled CPU backward against the float64 reference backward, and the reference itself
// against central differences of the float64 reference forward, on fresh random inputs each
// run (the seed is printed with any failure). Gradients are poisoned with NaN before each run.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iomanip>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "../src/cpu/isa.hpp"
#include "radial/attention.hpp"
#include "radial/plan.hpp"
#include "plan_cases.hpp"
#include "tensor_buffer.hpp"

namespace radial {
namespace {

struct Inputs {
  Tensor q, k, v, d_out;
  Inputs(DType dt, Layout layout, int64_t b, int64_t s, int64_t h, int64_t d, std::mt19937& rng)
      : q(dt, layout, b, s, h, d), k(dt, layout, b, s, h, d), v(dt, layout, b, s, h, d),
        d_out(dt, layout, b, s, h, d) {
    // Scores of standard deviation ~2.5 at scale 1/sqrt(d): peaked softmax rows, not flat ones.
    q.fill_random(rng, 1.6f);
    k.fill_random(rng, 1.6f);
    v.fill_random(rng, 1.0f);
    d_out.fill_random(rng, 1.0f);
  }
};

// The forward (attention_cpu: out and lse), then the backward into NaN-poisoned gradients.
struct Gradients {
  Tensor out, d_q, d_k, d_v;
  std::vector<float> lse;
};

Gradients run_backward(const Plan& plan, const Inputs& in, Layout grad_layout,
                       const AttentionOptions& options = {}) {
  const TensorView& q = in.q.view;
  auto make = [&](Layout l) { return Tensor(q.dtype, l, q.batch, q.seq, q.heads, q.dim); };
  Gradients g{make(Layout::bshd), make(grad_layout), make(grad_layout), make(grad_layout), {}};
  g.lse.assign(static_cast<size_t>(q.batch * q.heads * q.seq), NAN);
  attention_cpu(plan, in.q.view, in.k.view, in.v.view, g.out.view, g.lse.data(), options);
  for (Tensor* t : {&g.d_q, &g.d_k, &g.d_v}) t->fill(NAN);
  attention_backward(plan, in.q.view, in.k.view, in.v.view, g.out.view, in.d_out.view,
                     g.lse.data(), g.d_q.view, g.d_k.view, g.d_v.view, options);
  return g;
}

struct Comparison {
  double max_abs = 0, ref_max = 0, diff_sq = 0, ref_sq = 0;
  int64_t unwritten = 0, outside_touched = 0;
  // Relative L2 error (the GPU tests' measure) and the worst element over the largest.
  double rel() const { return ref_sq > 0 ? std::sqrt(diff_sq / ref_sq) : std::sqrt(diff_sq); }
  double rel_max() const { return ref_max > 0 ? max_abs / ref_max : max_abs; }
};

Comparison compare(const Tensor& got, const std::vector<double>& want, const ReferenceGradients& ref) {
  Comparison c;
  const TensorView& v = got.view;
  std::vector<char> inside(static_cast<size_t>(got.elements()), 0);
  for (int64_t b = 0; b < v.batch; ++b)
    for (int64_t s = 0; s < v.seq; ++s)
      for (int64_t h = 0; h < v.heads; ++h)
        for (int64_t d = 0; d < v.dim; ++d) {
          inside[got.flat(b, s, h, d)] = 1;
          const double x = got.get(b, s, h, d), w = want[ref.index(b, s, h, d)];
          if (std::isnan(x)) {
            ++c.unwritten;
            continue;
          }
          c.max_abs = std::max(c.max_abs, std::fabs(x - w));
          c.diff_sq += (x - w) * (x - w);
          c.ref_sq += w * w;
          c.ref_max = std::max(c.ref_max, std::fabs(w));
        }
  for (int64_t i = 0; i < got.elements(); ++i) {
    if (!inside[i] && !std::isnan(got.get_flat(i))) ++c.outside_touched;
  }
  return c;
}

// float32: accumulation only. 16-bit: the gradients are rounded on store (half an ulp: up to
// 2^-8 for bf16, 2^-11 for f16, relative to an element), and D = rowsum(dO * O) comes from the
// forward's rounded output. Relative L2 error (bound) and the worst element over the largest
// (max bound: a single outlier; for bf16 it reached 8.2e-3 once in a few hundred seeds, so the
// worst element alone made a flaky test).
double rel_bound(DType dt) { return dt == DType::f32 ? 1e-4 : dt == DType::bf16 ? 4e-3 : 6e-4; }
double rel_max_bound(DType dt) {
  return dt == DType::f32 ? 1e-4 : dt == DType::bf16 ? 1.5e-2 : 2e-3;
}

void expect_matches_reference(const Plan& plan, const Inputs& in, const Gradients& g,
                              const char* what = "") {
  const ReferenceGradients ref =
      attention_backward_reference(plan, in.q.view, in.k.view, in.v.view, in.d_out.view);
  const DType dt = in.q.view.dtype;
  const std::pair<const Tensor*, const std::vector<double>*> pairs[] = {
      {&g.d_q, &ref.dq}, {&g.d_k, &ref.dk}, {&g.d_v, &ref.dv}};
  const char* names[] = {"dQ", "dK", "dV"};
  for (int i = 0; i < 3; ++i) {
    const Comparison c = compare(*pairs[i].first, *pairs[i].second, ref);
    SCOPED_TRACE(std::string(what) + " " + names[i]);
    EXPECT_EQ(c.unwritten, 0);
    EXPECT_EQ(c.outside_touched, 0);
    EXPECT_GT(c.ref_max, 0.01);  // a real signal, not an all-zero gradient
    EXPECT_LT(c.rel(), rel_bound(dt)) << "max abs " << c.max_abs << ", ref max " << c.ref_max;
    EXPECT_LT(c.rel_max(), rel_max_bound(dt))
        << "max abs " << c.max_abs << ", ref max " << c.ref_max;
    std::ostringstream text;
    text << std::scientific << std::setprecision(2) << c.rel();
    ::testing::Test::RecordProperty(std::string("rel_error_") + names[i], text.str());
  }
}

class BackwardVsReference : public ::testing::TestWithParam<Case> {};

TEST_P(BackwardVsReference, MatchesWithinDtypeBound) {
  const Case& c = GetParam();
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const Plan plan = plan_for(c, rng);
  Inputs in(c.dtype, c.layout, c.batch, plan.seq_len, c.heads, c.dim, rng);
  // Gradients in another layout than the inputs, so strides are read and written independently.
  const Layout grad_layout = c.layout == Layout::bshd ? Layout::slice : Layout::bshd;
  expect_matches_reference(plan, in, run_backward(plan, in, grad_layout));
}

// The shared table and one more f32 case at block 128 and head dim 128.
std::vector<Case> backward_cases() {
  std::vector<Case> cases = shape_cases();
  cases.push_back({"f32_bhsd_radial_b128_d128", DType::f32, Layout::bhsd, 1, 2, 128, 128,
                   Case::Kind::radial, Model::wan, 6, 180, 0, -1});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, BackwardVsReference, ::testing::ValuesIn(backward_cases()),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

// Rows that keep only their diagonal block, and key blocks that no query keeps: the latter
// (and the padded text keys past key_limit) get dK = dV = 0 exactly.
TEST(BackwardCpu, DiagonalOnlyRowsAndUnkeptKeyBlocks) {
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (int block : {64, 128}) {
    SCOPED_TRACE("block " + std::to_string(block));
    // 7 block rows (the last a tail of 57), text keys valid to 27 tokens into block 6. Rows 1, 3
    // and 6 keep only their diagonal; nobody keeps column 2 or 5.
    const int64_t tokens = 5 * block + 37, text = block + 20, text_valid = block - 10;
    const Plan plan = pattern_plan(tokens, text, text_valid, block, [](int32_t r, int32_t c) {
      if (r == 1 || r == 3 || r == 6) return r == c;
      return c != 2 && c != 5 && (c == r || c == 0 || (r + c) % 3 == 0);
    });
    ASSERT_EQ(plan.block_rows, 7);
    ASSERT_EQ(plan.col_offset[3] - plan.col_offset[2], 0);
    ASSERT_EQ(plan.col_offset[6] - plan.col_offset[5], 0);
    for (DType dt : {DType::f32, DType::bf16}) {
      Inputs in(dt, Layout::bhsd, 2, plan.seq_len, 2, 64, rng);
      const Gradients g = run_backward(plan, in, Layout::slice);
      expect_matches_reference(plan, in, g, dtype_name(dt));
      const TensorView& v = g.d_k.view;
      int64_t nonzero = 0, zero_checked = 0;
      for (int64_t b = 0; b < v.batch; ++b)
        for (int64_t s = 0; s < v.seq; ++s) {
          const int64_t col = s / block;
          if (col != 2 && col != 5 && s < plan.key_limit) continue;
          for (int64_t h = 0; h < v.heads; ++h)
            for (int64_t d = 0; d < v.dim; ++d) {
              ++zero_checked;
              nonzero += g.d_k.get(b, s, h, d) != 0.0 || g.d_v.get(b, s, h, d) != 0.0;
            }
        }
      EXPECT_GT(zero_checked, 0);
      EXPECT_EQ(nonzero, 0) << "dK or dV of keys no query attends to";
    }
  }
}

// The reference backward against central differences of the reference forward, with the
// loss L = sum(out * dO): an independent check that the reference is the gradient.
TEST(BackwardReference, MatchesFiniteDifferencesOfReferenceForward) {
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  // 3 block rows of 64 with a tail, text keys padded, one key block unkept.
  const Plan plan = pattern_plan(100, 50, 30, 64, [](int32_t r, int32_t c) { return r == c || c == 0; });
  Inputs in(DType::f32, Layout::bshd, 1, plan.seq_len, 1, 4, rng);
  in.q.fill_random(rng, 1.0f);  // milder scores: the differences stay accurate
  in.k.fill_random(rng, 1.0f);
  const ReferenceGradients ref =
      attention_backward_reference(plan, in.q.view, in.k.view, in.v.view, in.d_out.view, 0.7);
  const auto loss = [&] {
    const ReferenceResult r = attention_reference(plan, in.q.view, in.k.view, in.v.view, 0.7);
    double sum = 0.0;
    for (int64_t s = 0; s < plan.seq_len; ++s)
      for (int64_t d = 0; d < 4; ++d) sum += r.at(0, s, 0, d) * in.d_out.get(0, s, 0, d);
    return sum;
  };
  std::uniform_int_distribution<int64_t> token(0, plan.seq_len - 1), dim(0, 3);
  Tensor* tensors[] = {&in.q, &in.k, &in.v};
  const std::vector<double>* grads[] = {&ref.dq, &ref.dk, &ref.dv};
  double worst = 0.0;
  for (int which = 0; which < 3; ++which) {
    for (int trial = 0; trial < 25; ++trial) {
      const int64_t s = trial == 0 ? plan.seq_len - 1 : token(rng), d = dim(rng);
      Tensor& t = *tensors[which];
      const float x = static_cast<float>(t.get(0, s, 0, d));
      // The steps actually taken in float32, so the quotient is exact up to rounding of L.
      const float up = x + 1e-3f, down = x - 1e-3f;
      t.set(0, s, 0, d, up);
      const double l_up = loss();
      t.set(0, s, 0, d, down);
      const double l_down = loss();
      t.set(0, s, 0, d, x);
      const double numeric = (l_up - l_down) / (static_cast<double>(up) - down);
      const double analytic = (*grads[which])[ref.index(0, s, 0, d)];
      worst = std::max(worst, std::fabs(numeric - analytic));
      EXPECT_NEAR(analytic, numeric, 1e-6 + 1e-5 * std::fabs(numeric))
          << "tensor " << which << " token " << s << " dim " << d;
    }
  }
  RecordProperty("max_abs_error", std::to_string(worst));
}

TEST(BackwardCpu, SameBitsForAnyThreadCount) {
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  Geometry g;
  g.frames = 5, g.tokens_per_frame = 150;
  PlanSpec spec;
  spec.block_size = 64;
  const Plan plan = make_plan(g, spec);
  Inputs in(DType::bf16, Layout::bshd, 1, plan.seq_len, 3, 64, rng);
  AttentionOptions one, many;
  one.threads = 1, many.threads = 5;
  const Gradients a = run_backward(plan, in, Layout::bshd, one);
  const Gradients b = run_backward(plan, in, Layout::bshd, many);
  for (auto [x, y] : {std::pair{&a.d_q, &b.d_q}, {&a.d_k, &b.d_k}, {&a.d_v, &b.d_v}}) {
    EXPECT_EQ(std::memcmp(x->bytes.data(), y->bytes.data(), x->bytes.size()), 0);
  }
}

TEST(BackwardCpu, EveryInstructionSetVariantMatchesReference) {
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  Geometry g;
  g.frames = 3, g.tokens_per_frame = 100, g.text_tokens = 30, g.text_valid = 11;
  const Plan plan = make_dense_plan(g, 64);
  Inputs in(DType::f32, Layout::bhsd, 1, plan.seq_len, 2, 48, rng);
  for (cpu::Isa isa : {cpu::Isa::avx512, cpu::Isa::avx2, cpu::Isa::baseline}) {
    if (!cpu::isa_supported(isa)) continue;
    cpu::force_isa(isa);
    const Gradients grads = run_backward(plan, in, Layout::bshd);
    cpu::force_isa(cpu::Isa::best);
    expect_matches_reference(plan, in, grads, ("isa " + std::to_string(static_cast<int>(isa))).c_str());
  }
}

// NaN in one query row reaches that row's dQ (and the keys it attends to), never a silently
// finite answer; the other batch stays finite.
TEST(BackwardCpu, NaNInputPropagates) {
  std::mt19937 rng(fresh_seed());
  Geometry g;
  g.frames = 1, g.tokens_per_frame = 100;
  const Plan plan = make_dense_plan(g, 64);
  Inputs in(DType::f32, Layout::bshd, 2, plan.seq_len, 1, 16, rng);
  in.d_out.set(0, 7, 0, 3, NAN);
  const Gradients grads = run_backward(plan, in, Layout::bshd);
  EXPECT_TRUE(std::isnan(grads.d_q.get(0, 7, 0, 0)));
  EXPECT_TRUE(std::isnan(grads.d_v.get(0, 50, 0, 3)));
  EXPECT_FALSE(std::isnan(grads.d_q.get(1, 7, 0, 0)));
  EXPECT_FALSE(std::isnan(grads.d_k.get(1, 50, 0, 0)));
}

}  // namespace
}  // namespace radial
