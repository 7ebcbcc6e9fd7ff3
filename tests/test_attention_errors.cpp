// Every bad argument of attention(), attention_cpu() and attention_reference() gets a
// radial::Error that names it, before any work is done.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "radial/attention.hpp"
#include "radial/error.hpp"
#include "radial/plan.hpp"
#include "error_checks.hpp"

namespace radial {
namespace {

constexpr int64_t kSeq = 100, kHeads = 2, kDim = 16;

class AttentionErrors : public ::testing::Test {
 protected:
  AttentionErrors()
      : q_data(kSeq * kHeads * kDim, 0.5f), k_data(q_data), v_data(q_data),
        out_data(q_data.size(), NAN) {
    Geometry g;
    g.frames = 2, g.tokens_per_frame = 50;
    plan = make_dense_plan(g, 64);
    q = TensorView::bshd(q_data.data(), DType::f32, 1, kSeq, kHeads, kDim);
    k = TensorView::bshd(k_data.data(), DType::f32, 1, kSeq, kHeads, kDim);
    v = TensorView::bshd(v_data.data(), DType::f32, 1, kSeq, kHeads, kDim);
    out = TensorView::bshd(out_data.data(), DType::f32, 1, kSeq, kHeads, kDim);
  }

  // attention() must throw an Error for `argument` whose message names it and contains
  // `fragment` (what was expected or what came), and must not have written the output.
  void expect_error(const std::string& argument, const std::string& fragment = "",
                    const AttentionOptions& options = {}) {
    expect_error_from([&] { attention(plan, q, k, v, out, nullptr, options); }, argument, fragment);
    for (float x : out_data) ASSERT_TRUE(std::isnan(x)) << "output written before the check";
  }
  std::vector<float> q_data, k_data, v_data, out_data;
  Plan plan;
  TensorView q, k, v, out;
};

TEST_F(AttentionErrors, ValidArgumentsPass) {
  std::vector<float> lse(kHeads * kSeq, NAN);
  EXPECT_NO_THROW(attention(plan, q, k, v, out, lse.data()));
  for (float x : out_data) EXPECT_FLOAT_EQ(x, 0.5f);  // every value row is 0.5
}

TEST_F(AttentionErrors, EmptyPlan) {
  plan = Plan{};
  expect_error("plan", "empty plan");
}
TEST_F(AttentionErrors, PlanBlockSize) {
  plan.spec.block_size = 96;
  expect_error("plan.spec.block_size", "got 96");
}
TEST_F(AttentionErrors, PlanBlockRows) {
  plan.block_rows = 3;
  expect_error("plan.block_rows", "3 rows");
}
TEST_F(AttentionErrors, PlanKeyLimit) {
  plan.key_limit = kSeq + 1;
  expect_error("plan.key_limit", "got 101");
}
TEST_F(AttentionErrors, PlanRowOffsetsSize) {
  plan.row_offset.pop_back();
  expect_error("plan.row_offset", "2 offsets");
}
TEST_F(AttentionErrors, PlanEmptyRow) {
  plan.row_offset = {0, 0, 2};
  plan.col_index = {0, 1};
  expect_error("plan.row_offset", "row 0 with 0");
}
TEST_F(AttentionErrors, PlanColumnOutOfRange) {
  plan.col_index.back() = 5;
  expect_error("plan.col_index", "got 5 in row 1");
}
TEST_F(AttentionErrors, PlanColumnsNotIncreasing) {
  plan.col_index = {1, 0, 0, 1};
  expect_error("plan.col_index", "got 0 in row 0");
}
TEST_F(AttentionErrors, PlanColumnPastKeyLimit) {
  plan.key_limit = 60;  // block 1 holds no valid key, so no row may keep it
  expect_error("plan.col_index", "0..0");
}

TEST_F(AttentionErrors, NullData) {
  q.data = nullptr;
  expect_error("q.data", "got nullptr");
}
TEST_F(AttentionErrors, NullKeyValueOut) {
  k.data = nullptr;
  expect_error("k.data");
  k.data = k_data.data(), v.data = nullptr;
  expect_error("v.data");
  v.data = v_data.data(), out.data = nullptr;
  expect_error("out.data");
}
TEST_F(AttentionErrors, ZeroBatch) {
  q.batch = 0;
  expect_error("q.batch", "got 0");
}
TEST_F(AttentionErrors, ZeroSeq) {
  k.seq = 0;
  expect_error("k.seq", ">= 1");
}
TEST_F(AttentionErrors, NegativeHeads) {
  v.heads = -2;
  expect_error("v.heads", "got -2");
}
TEST_F(AttentionErrors, ZeroDim) {
  out.dim = 0;
  expect_error("out.dim", "got 0");
}
TEST_F(AttentionErrors, HeadDimTooLarge) {
  q.dim = k.dim = v.dim = out.dim = 257;
  expect_error("q.dim", "1..256, got 257");
}

TEST_F(AttentionErrors, SeqNotPlanSeqLen) {
  q.seq = k.seq = v.seq = out.seq = 99;
  expect_error("q.seq", "100 (plan.seq_len), got 99");
}
TEST_F(AttentionErrors, KeySeqNotPlanSeqLen) {
  k.seq = 64;
  expect_error("k.seq", "got 64");
}
TEST_F(AttentionErrors, ValueSeqNotPlanSeqLen) {
  v.seq = 101;
  expect_error("v.seq", "got 101");
}
TEST_F(AttentionErrors, OutSeqMismatch) {
  out.seq = 50;
  expect_error("out.seq", "100 (q.seq), got 50");
}
TEST_F(AttentionErrors, KeyBatchMismatch) {
  k.batch = 2;
  expect_error("k.batch", "1 (q.batch), got 2");
}
TEST_F(AttentionErrors, ValueHeadsMismatch) {
  v.heads = 1;
  expect_error("v.heads", "2 (q.heads), got 1");
}
TEST_F(AttentionErrors, OutDimMismatch) {
  out.dim = 8;
  expect_error("out.dim", "16 (q.dim), got 8");
}

TEST_F(AttentionErrors, ValueDtypeMismatch) {
  v.dtype = DType::bf16;
  expect_error("v.dtype", "float32 (q.dtype), got bfloat16");
}
TEST_F(AttentionErrors, OutDtypeMismatch) {
  out.dtype = DType::f16;
  expect_error("out.dtype", "got float16");
}
TEST_F(AttentionErrors, KeyDeviceMismatch) {
  k.device = Device::cuda;
  expect_error("k.device", "cpu (q.device), got cuda:0");
}
TEST_F(AttentionErrors, DeviceIndexMismatch) {
  q.device = k.device = v.device = out.device = Device::cuda;
  out.device_index = 1;
  expect_error("out.device", "cuda:0 (q.device), got cuda:1");
}

TEST_F(AttentionErrors, ZeroSeqStride) {
  q.stride_seq = 0;
  expect_error("q.stride_seq", "got 0");
}
TEST_F(AttentionErrors, NegativeHeadStride) {
  k.stride_head = -16;
  expect_error("k.stride_head", "got -16");
}
TEST_F(AttentionErrors, ZeroBatchStrideWithBatchTwo) {
  q.batch = k.batch = v.batch = out.batch = 2;
  v.stride_batch = 0;
  expect_error("v.stride_batch", "got 0");
}
TEST_F(AttentionErrors, OverlappingOutput) {
  out.stride_head = 8;  // heads of one token overlap in a 16-wide head dim
  expect_error("out.strides", "stride_head 8");
}

TEST_F(AttentionErrors, ScaleNegative) {
  AttentionOptions o;
  o.scale = -0.5;
  expect_error("options.scale", "got -0.5", o);
}
TEST_F(AttentionErrors, ScaleNotFinite) {
  AttentionOptions o;
  o.scale = std::numeric_limits<double>::quiet_NaN();
  expect_error("options.scale", "finite", o);
  o.scale = std::numeric_limits<double>::infinity();
  expect_error("options.scale", "got inf", o);
}
TEST_F(AttentionErrors, NegativeThreads) {
  AttentionOptions o;
  o.threads = -1;
  expect_error("options.threads", "got -1", o);
}
TEST_F(AttentionErrors, UnknownBackend) {
  AttentionOptions o;
  o.backend = static_cast<Backend>(7);
  expect_error("options.backend", "got 7", o);
}
TEST_F(AttentionErrors, Fp8OnTheCpuBackend) {
  AttentionOptions o;
  o.precision = Precision::fp8;
  expect_error("options.precision", "native on the CPU backend", o);
}
TEST_F(AttentionErrors, UnknownPrecision) {
  AttentionOptions o;
  o.precision = static_cast<Precision>(5);
  expect_error("options.precision", "got 5", o);
}
TEST_F(AttentionErrors, Fp8Backward) {
  std::vector<float> lse(kHeads * kSeq, 0.f), grad(q_data.size(), 0.f);
  const TensorView g = TensorView::bshd(grad.data(), DType::f32, 1, kSeq, kHeads, kDim);
  AttentionOptions o;
  o.precision = Precision::fp8;
  expect_error_from(
      [&] { attention_backward(plan, q, k, v, out, g, lse.data(), g, g, g, o); },
      "options.precision", "native for the backward");
}
TEST_F(AttentionErrors, CudaBackendForHostTensors) {
  AttentionOptions o;
  o.backend = Backend::cuda;
  expect_error("q.device", "cuda (options.backend = cuda), got cpu", o);
}
TEST_F(AttentionErrors, CpuBackendForDeviceTensors) {
  q.device = k.device = v.device = out.device = Device::cuda;
  AttentionOptions o;
  o.backend = Backend::cpu;
  expect_error("q.device", "cpu (options.backend = cpu), got cuda:0", o);
}
#ifndef RADIAL_WITH_CUDA
TEST_F(AttentionErrors, DeviceTensorsWithoutCudaBuild) {
  q.device = k.device = v.device = out.device = Device::cuda;
  expect_error("q.device", "cpu (this build has no CUDA), got cuda:0");
}
#endif

// The backend and the reference check on their own too (they are public).
TEST_F(AttentionErrors, CpuBackendChecksArguments) {
  k.dim = 8;
  expect_error_from([&] { attention_cpu(plan, q, k, v, out, nullptr); }, "k.dim", "got 8");
  k.dim = kDim;
  AttentionOptions o;
  o.threads = -3;
  expect_error_from([&] { attention_cpu(plan, q, k, v, out, nullptr, o); }, "options.threads");
  q.device = k.device = v.device = out.device = Device::cuda;
  expect_error_from([&] { attention_cpu(plan, q, k, v, out, nullptr); }, "q.device",
                    "cpu (attention_cpu), got cuda:0");
}
TEST_F(AttentionErrors, ReferenceChecksArguments) {
  k.dtype = DType::f16;
  expect_error_from([&] { attention_reference(plan, q, k, v); }, "k.dtype", "got float16");
  k.dtype = DType::f32;
  expect_error_from([&] { attention_reference(plan, q, k, v, -1.0); }, "scale", "got -1");
  q.seq = k.seq = v.seq = 64;
  expect_error_from([&] { attention_reference(plan, q, k, v); }, "q.seq", "got 64");
  q.seq = k.seq = v.seq = kSeq;
  q.device = k.device = v.device = Device::cuda;
  expect_error_from([&] { attention_reference(plan, q, k, v); }, "q.device", "got cuda:0");
}

}  // namespace
}  // namespace radial
