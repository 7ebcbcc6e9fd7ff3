// Every bad argument of attention_backward(), attention_backward_cpu() and
// attention_backward_reference() gets a radial::Error that names it, before any gradient is
// written.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "radial/attention.hpp"
#include "radial/error.hpp"
#include "radial/plan.hpp"
#include "error_checks.hpp"

namespace radial {
namespace {

constexpr int64_t kSeq = 100, kHeads = 2, kDim = 16;

class BackwardErrors : public ::testing::Test {
 protected:
  BackwardErrors()
      : q_data(kSeq * kHeads * kDim, 0.5f), k_data(q_data), v_data(q_data), out_data(q_data),
        d_out_data(q_data), lse(kHeads * kSeq, 0.0f), dq_data(q_data.size(), NAN),
        dk_data(dq_data), dv_data(dq_data) {
    Geometry g;
    g.frames = 2, g.tokens_per_frame = 50;
    plan = make_dense_plan(g, 64);
    const auto view = [](std::vector<float>& data) {
      return TensorView::bshd(data.data(), DType::f32, 1, kSeq, kHeads, kDim);
    };
    q = view(q_data), k = view(k_data), v = view(v_data), out = view(out_data);
    d_out = view(d_out_data), d_q = view(dq_data), d_k = view(dk_data), d_v = view(dv_data);
    attention(plan, q, k, v, out, lse.data());
  }

  void run(const AttentionOptions& options = {}) {
    attention_backward(plan, q, k, v, out, d_out, lse_pointer, d_q, d_k, d_v, options);
  }

  // attention_backward() must throw an Error for `argument` whose message names it and
  // contains `fragment`, and must not have written any gradient.
  void expect_error(const std::string& argument, const std::string& fragment = "",
                    const AttentionOptions& options = {}) {
    expect_error_from([&] { run(options); }, argument, fragment);
    for (const auto* data : {&dq_data, &dk_data, &dv_data}) {
      for (float x : *data) ASSERT_TRUE(std::isnan(x)) << "gradient written before the check";
    }
  }
  std::vector<float> q_data, k_data, v_data, out_data, d_out_data, lse, dq_data, dk_data, dv_data;
  const float* lse_pointer = nullptr;  // set by the tests that want one
  Plan plan;
  TensorView q, k, v, out, d_out, d_q, d_k, d_v;
};

TEST_F(BackwardErrors, ValidArgumentsPass) {
  lse_pointer = lse.data();
  EXPECT_NO_THROW(run());
  // All inputs 0.5: every score is equal, P = 1/100 on this dense plan and dP = D, so dS = 0
  // (dQ = dK = 0) and dV = sum over queries of P dO = 0.5.
  for (float x : dq_data) EXPECT_NEAR(x, 0.0f, 1e-6f);
  for (float x : dv_data) EXPECT_NEAR(x, 0.5f, 1e-6f);
}

TEST_F(BackwardErrors, MissingLse) {
  expect_error("lse", "the forward's log-sum-exp");
}

class BackwardErrorsWithLse : public BackwardErrors {
 protected:
  BackwardErrorsWithLse() { lse_pointer = lse.data(); }
};

// Shapes or dtypes that differ from the forward's.
TEST_F(BackwardErrorsWithLse, GradOutDimDiffers) {
  d_out.dim = 8;
  expect_error("d_out.dim", "16 (q.dim), got 8");
}
TEST_F(BackwardErrorsWithLse, GradOutDtypeDiffers) {
  d_out.dtype = DType::bf16;
  expect_error("d_out.dtype", "float32 (q.dtype), got bfloat16");
}
TEST_F(BackwardErrorsWithLse, OutHeadsDiffer) {
  out.heads = 1;
  expect_error("out.heads", "2 (q.heads), got 1");
}
TEST_F(BackwardErrorsWithLse, KeyDtypeDiffers) {
  k.dtype = DType::f16;
  expect_error("k.dtype", "got float16");
}
TEST_F(BackwardErrorsWithLse, GradientBatchDiffers) {
  d_k.batch = 2;
  expect_error("d_k.batch", "1 (q.batch), got 2");
}
TEST_F(BackwardErrorsWithLse, GradientDtypeDiffers) {
  d_q.dtype = DType::bf16;
  expect_error("d_q.dtype", "got bfloat16");
}
TEST_F(BackwardErrorsWithLse, GradientSeqDiffers) {
  d_v.seq = 50;
  expect_error("d_v.seq", "100 (q.seq), got 50");
}
TEST_F(BackwardErrorsWithLse, NullGradient) {
  d_v.data = nullptr;
  expect_error("d_v.data", "got nullptr");
}
TEST_F(BackwardErrorsWithLse, OverlappingGradient) {
  d_q.stride_head = 8;  // heads of one token overlap in a 16-wide head dim
  expect_error("d_q.strides", "stride_head 8");
}
TEST_F(BackwardErrorsWithLse, GradOutStrideZero) {
  d_out.stride_seq = 0;
  expect_error("d_out.stride_seq", "got 0");
}

// Gradients on a plan of another geometry: its token count is not the tensors'.
TEST_F(BackwardErrorsWithLse, PlanOfAnotherGeometry) {
  Geometry g;
  g.frames = 3, g.tokens_per_frame = 50;
  plan = make_dense_plan(g, 64);
  expect_error("q.seq", "150 (plan.seq_len), got 100");
}

// The backward reads the plan's CSC; a plan with a CSR but a wrong or missing CSC is refused.
TEST_F(BackwardErrorsWithLse, PlanWithoutCsc) {
  plan.col_offset.clear();
  plan.row_index.clear();
  expect_error("plan.col_offset", "offsets from 0");
}
TEST_F(BackwardErrorsWithLse, PlanCscNotTheTranspose) {
  Geometry g;
  g.frames = 2, g.tokens_per_frame = 100;  // 4 block rows of 64
  PlanSpec spec;
  spec.block_size = 64;
  plan = make_plan(g, spec);
  // A 200-token problem to match.
  q.seq = k.seq = v.seq = out.seq = d_out.seq = d_q.seq = d_k.seq = d_v.seq = 200;
  std::vector<std::vector<float>*> buffers = {&q_data, &k_data, &v_data, &out_data, &d_out_data};
  for (auto* data : buffers) data->assign(200 * kHeads * kDim, 0.5f);
  for (auto* data : {&dq_data, &dk_data, &dv_data}) data->assign(200 * kHeads * kDim, NAN);
  lse.assign(kHeads * 200, 0.0f);
  lse_pointer = lse.data();
  for (TensorView* t : {&q, &k, &v, &out, &d_out, &d_q, &d_k, &d_v}) t->stride_batch = 200 * kHeads * kDim;
  q.data = q_data.data(), k.data = k_data.data(), v.data = v_data.data(), out.data = out_data.data();
  d_out.data = d_out_data.data(), d_q.data = dq_data.data(), d_k.data = dk_data.data();
  d_v.data = dv_data.data();
  EXPECT_NO_THROW(run());
  for (auto* data : {&dq_data, &dk_data, &dv_data}) data->assign(200 * kHeads * kDim, NAN);
  plan.row_index[0] = plan.row_index[0] == 0 ? 1 : 0;
  expect_error("plan.row_index", "the transpose of the CSR");
}

TEST_F(BackwardErrorsWithLse, BadOptions) {
  AttentionOptions o;
  o.threads = -1;
  expect_error("options.threads", "got -1", o);
  o.threads = 0;
  o.scale = -1.0;
  expect_error("options.scale", "got -1", o);
}
TEST_F(BackwardErrorsWithLse, CudaBackendForHostTensors) {
  AttentionOptions o;
  o.backend = Backend::cuda;
  expect_error("q.device", "cuda (options.backend = cuda), got cpu", o);
}
#ifndef RADIAL_WITH_CUDA
TEST_F(BackwardErrorsWithLse, DeviceTensorsWithoutCudaBuild) {
  for (TensorView* t : {&q, &k, &v, &out, &d_out, &d_q, &d_k, &d_v}) t->device = Device::cuda;
  expect_error("q.device", "cpu (this build has no CUDA), got cuda:0");
}
#endif

// The backend and the reference check on their own too (they are public).
TEST_F(BackwardErrorsWithLse, CpuBackendAndReferenceCheckArguments) {
  d_out.heads = 3;
  expect_error_from([&] {
    attention_backward_cpu(plan, q, k, v, out, d_out, lse.data(), d_q, d_k, d_v);
  }, "d_out.heads", "got 3");
  expect_error_from([&] { attention_backward_reference(plan, q, k, v, d_out); }, "d_out.heads",
                    "got 3");
  d_out.heads = kHeads;
  expect_error_from([&] {
    attention_backward_cpu(plan, q, k, v, out, d_out, nullptr, d_q, d_k, d_v);
  }, "lse");
  expect_error_from([&] { attention_backward_reference(plan, q, k, v, d_out, -2.0); }, "scale");
}

}  // namespace
}  // namespace radial
