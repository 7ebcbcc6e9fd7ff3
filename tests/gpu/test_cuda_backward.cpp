// The CUDA backward against a float64 reference on fresh random inputs (out and lse from the
// CUDA forward, gradients poisoned with NaN): dQ, dK and dV each, both dtypes, head dims 64 and
// 128, blocks 64 and 128, every layout, batch 2, tails, padded text keys (key blocks no query
// keeps: dK = dV = 0 exactly), a dense plan, rows keeping only their diagonal; dQ by atomics
// and deterministic; the deterministic mode bit-identical across runs; bad inputs named.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <cstring>
#include <memory>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "../../src/cuda/bwd_params.hpp"
#include "../../src/cuda/plan_device.hpp"
#include "backward_harness.hpp"
#include "gpu_harness.hpp"
#include "radial/cuda.hpp"
#include "radial/error.hpp"

namespace radial::gpu_test {
namespace {

struct BwdCase {
  std::string name;
  Geometry geometry;
  PlanSpec spec;
  bool dense = false;
  CaseSpec run;
  bool deterministic = false;
};
void PrintTo(const BwdCase& c, std::ostream* os) { *os << c.name; }

Plan plan_of(const BwdCase& c) {
  return c.dense ? make_dense_plan(c.geometry, c.spec.block_size) : make_plan(c.geometry, c.spec);
}

// Key blocks that no query block keeps (empty CSC columns).
int64_t empty_columns(const Plan& plan) {
  int64_t n = 0;
  for (int32_t c = 0; c < plan.block_cols; ++c) n += plan.col_offset[c] == plan.col_offset[c + 1];
  return n;
}

std::vector<BwdCase> cases() {
  const DType bf = DType::bf16, hf = DType::f16;
  std::vector<BwdCase> list = {
      // 1200 tokens: the last block of 128 holds 48 (the second 64-row query tile is empty).
      {"wan_bf16_d128_b128_bshd_tail", geo(5, 240), spec(Model::wan, 1.0, 128), false,
       run(bf, 1, 2, 128, Layout::bshd)},
      {"wan_f16_d64_b64_bhsd_batch2", geo(4, 200), spec(Model::wan, 0.5, 64), false,
       run(hf, 2, 2, 64, Layout::bhsd)},
      // Joint attention: 100 text tokens, 61 valid; keys 1085.. masked token by token.
      {"hunyuan_text_bf16_d64_b128_packed_batch2", geo(4, 256, 100, 61),
       spec(Model::hunyuan, 0.95, 128), false, run(bf, 2, 2, 64, Layout::packed)},
      {"hunyuan_text_f16_d128_b64_padded_scale", geo(3, 300, 77, 40),
       spec(Model::hunyuan, 0.95, 64), false, run(hf, 1, 2, 128, Layout::padded, 0.07)},
      // Mostly padding: whole key blocks past key_limit, which no query keeps.
      {"text_padding_empty_columns_bf16_d128_b64", geo(2, 160, 300, 20),
       spec(Model::hunyuan, 0.95, 64), false, run(bf, 1, 2, 128, Layout::bhsd)},
      {"dense_bf16_d128_b64_bhsd", geo(1, 333), spec(Model::wan, 1.0, 64), true,
       run(bf, 1, 2, 128, Layout::bhsd)},
      {"dense_f16_d64_b128_padded_text", geo(2, 150, 20, 5), spec(Model::wan, 1.0, 128), true,
       run(hf, 1, 2, 64, Layout::padded)},
      {"wan_bf16_d64_b128_long", geo(8, 512), spec(Model::wan, 0.5, 128), false,
       run(bf, 1, 1, 64, Layout::bshd)},
      {"wan_f16_d128_b128_batch2_bhsd", geo(3, 250), spec(Model::wan, 1.0, 128), false,
       run(hf, 2, 1, 128, Layout::bhsd)},
      // 256 frames of 4 tokens: rows the rules leave empty keep only their diagonal.
      {"diagonal_rows_bf16_d64_b128", geo(256, 4), spec(Model::hunyuan, 1.0, 128), false,
       run(bf, 1, 2, 64, Layout::bshd)},
      {"diagonal_rows_f16_d128_b64", geo(256, 4), spec(Model::hunyuan, 1.0, 64), false,
       run(hf, 1, 1, 128, Layout::packed)},
  };
  // Every case again with the deterministic dQ pass.
  const size_t n = list.size();
  for (size_t i = 0; i < n; ++i) {
    BwdCase c = list[i];
    c.name = "deterministic_" + c.name;
    c.deterministic = true;
    list.push_back(c);
  }
  return list;
}

class CudaBackward : public ::testing::TestWithParam<BwdCase> {};

void expect_gradients_match(const Plan& plan, const CaseSpec& spec, bool deterministic,
                            const std::string& name) {
  BackwardCase c(plan, spec, std::random_device{}());
  SCOPED_TRACE("seed " + std::to_string(c.seed) + ", seq " + std::to_string(plan.seq_len) +
               ", key_limit " + std::to_string(plan.key_limit));
  c.forward();
  c.backward(deterministic);
  const Gradients64 ref =
      reference_backward(plan, *c.q, *c.k, *c.v, *c.d_out, spec.scale);
  const GradientErrors e = compare(c, ref);
  EXPECT_EQ(e.non_finite, 0) << "gradients left unwritten (NaN) or not finite";
  EXPECT_EQ(e.touched_gaps, 0) << "elements outside the gradient views were written";
  EXPECT_EQ(e.masked_not_zero, 0) << "dK or dV of keys >= key_limit not exactly 0";
  const double tol = grad_tolerance(spec.dtype);
  EXPECT_LT(e.dq, tol) << "dQ";
  EXPECT_LT(e.dk, tol) << "dK";
  EXPECT_LT(e.dv, tol) << "dV";
  std::cout << "  " << name << ": rel. error dQ " << e.dq << ", dK " << e.dk << ", dV " << e.dv
            << "\n";
}

TEST_P(CudaBackward, MatchesFloat64Reference) {
  RADIAL_REQUIRE_GPU();
  const BwdCase& c = GetParam();
  const Plan plan = plan_of(c);
  if (c.name.find("empty_columns") != std::string::npos) {
    ASSERT_GT(empty_columns(plan), 0) << "the case must have key blocks no query keeps";
  }
  if (c.name.find("diagonal_rows") != std::string::npos) {
    ASSERT_GT(plan.rows_given_diagonal, 0) << "the case must have rows keeping their diagonal";
  }
  expect_gradients_match(plan, c.run, c.deterministic, c.name);
}

INSTANTIATE_TEST_SUITE_P(Cases, CudaBackward, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

// The deterministic mode gives bit-identical gradients run to run (dQ without atomics), on a
// case with many key blocks per query row and batch x heads > 1.
TEST(CudaBackwardDeterministic, BitIdenticalAcrossRuns) {
  RADIAL_REQUIRE_GPU();
  for (DType dtype : {DType::bf16, DType::f16}) {
    const Plan plan = make_plan(geo(6, 300, 64, 40), spec(Model::hunyuan, 0.95, 128));
    BackwardCase c(plan, run(dtype, 2, 3, 128, Layout::bhsd), std::random_device{}());
    c.forward();
    c.backward(true);
    const std::vector<uint16_t> dq = c.d_q->host, dk = c.d_k->host, dv = c.d_v->host;
    for (int i = 0; i < 3; ++i) {
      c.backward(true);
      EXPECT_EQ(c.d_q->host, dq) << "dQ differs on run " << i + 2;
      EXPECT_EQ(c.d_k->host, dk) << "dK differs on run " << i + 2;
      EXPECT_EQ(c.d_v->host, dv) << "dV differs on run " << i + 2;
    }
    // dK and dV never use atomics: the portable kernel's atomic mode gives the same bits for
    // them (the Hopper kernel, which the default mode takes on compute capability 9.0, computes
    // them with other products).
    cuda_detail::set_bwd_kernel(cuda_detail::BwdKernel::portable);
    c.backward(false);
    cuda_detail::set_bwd_kernel(cuda_detail::BwdKernel::automatic);
    EXPECT_EQ(c.d_k->host, dk) << "dK of the atomic mode differs from the deterministic one";
    EXPECT_EQ(c.d_v->host, dv) << "dV of the atomic mode differs from the deterministic one";
  }
}

// The case compute-sanitizer memcheck and racecheck run on (scripts/gpu/test): small, a tail,
// masked text keys, both block sizes and both dQ modes.
TEST(CudaBackwardSmall, SanitizerCase) {
  RADIAL_REQUIRE_GPU();
  for (int block : {64, 128}) {
    const Plan plan = make_plan(geo(2, 100, 30, 17), spec(Model::hunyuan, 0.95, block));
    for (bool deterministic : {false, true}) {
      expect_gradients_match(plan, run(DType::bf16, 1, 1, 64, Layout::packed), deterministic,
                             "block " + std::to_string(block) +
                                 (deterministic ? " deterministic" : " atomics"));
    }
  }
}

// A stream other than the default one, twice on one plan (the CSC upload is cached and the
// workspace comes from the stream's pool): both results match the reference.
TEST(CudaBackwardStream, RunsOnAStreamAndReusesTheUpload) {
  RADIAL_REQUIRE_GPU();
  const Plan plan = make_plan(geo(3, 256), spec(Model::wan, 1.0, 128));
  BackwardCase c(plan, run(DType::bf16, 1, 2, 64, Layout::bshd), std::random_device{}());
  c.forward();
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  AttentionOptions options;
  options.stream = stream;
  for (int i = 0; i < 2; ++i) {
    c.d_q->poison(), c.d_k->poison(), c.d_v->poison();
    attention_backward_cuda(plan, c.q->device_view(), c.k->device_view(), c.v->device_view(),
                            c.out->device_view(), c.d_out->device_view(), c.lse_ptr(),
                            c.d_q->device_view(), c.d_k->device_view(), c.d_v->device_view(),
                            options);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    ASSERT_NE(plan.device_cache, nullptr);
    EXPECT_EQ(plan.device_cache->backward_entries.size(), 1u);
    c.d_q->download(), c.d_k->download(), c.d_v->download();
    const GradientErrors e =
        compare(c, reference_backward(plan, *c.q, *c.k, *c.v, *c.d_out, 0.0));
    EXPECT_EQ(e.non_finite, 0);
    EXPECT_LT(e.dq, grad_tolerance(DType::bf16));
    EXPECT_LT(e.dk, grad_tolerance(DType::bf16));
    EXPECT_LT(e.dv, grad_tolerance(DType::bf16));
  }
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}

// Bad arguments: a radial::Error naming the argument, before any launch (the poisoned
// gradients stay untouched).
class CudaBackwardErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    RADIAL_REQUIRE_GPU();
    plan_ = make_plan(geo(2, 128), PlanSpec{});
    case_ = std::make_unique<BackwardCase>(plan_, run(DType::bf16, 1, 2, 64, Layout::bshd), 99);
    case_->forward();
    case_->d_q->poison(), case_->d_k->poison(), case_->d_v->poison();
  }

  struct Args {
    TensorView q, k, v, out, d_out;
    const float* lse;
    TensorView d_q, d_k, d_v;
    AttentionOptions options;
  };
  Args good() const {
    const BackwardCase& c = *case_;
    return {c.q->device_view(),  c.k->device_view(),  c.v->device_view(),
            c.out->device_view(), c.d_out->device_view(), c.lse_ptr(),
            c.d_q->device_view(), c.d_k->device_view(), c.d_v->device_view(), {}};
  }

  void expect_error(const Args& a, const std::string& argument, const Plan* plan = nullptr) {
    try {
      attention_backward_cuda(plan ? *plan : plan_, a.q, a.k, a.v, a.out, a.d_out, a.lse, a.d_q,
                              a.d_k, a.d_v, a.options);
      ADD_FAILURE() << "no error; expected one naming " << argument;
    } catch (const Error& e) {
      EXPECT_EQ(e.argument(), argument) << e.what();
      EXPECT_NE(std::string(e.what()).find(argument), std::string::npos) << e.what();
    }
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    for (TestTensor* t : {case_->d_q.get(), case_->d_k.get(), case_->d_v.get()}) {
      t->download();
      for (uint16_t bits : t->host) ASSERT_EQ(bits, 0xffff) << "a gradient was written";
    }
  }

  Plan plan_;
  std::unique_ptr<BackwardCase> case_;
};

TEST_F(CudaBackwardErrors, GoodArgumentsRun) {
  const Args a = good();
  attention_backward_cuda(plan_, a.q, a.k, a.v, a.out, a.d_out, a.lse, a.d_q, a.d_k, a.d_v);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

TEST_F(CudaBackwardErrors, MissingOrHostLse) {
  Args a = good();
  a.lse = nullptr;
  expect_error(a, "lse");
  std::vector<float> host_lse(static_cast<size_t>(2 * plan_.seq_len), 0.f);
  a.lse = host_lse.data();
  expect_error(a, "lse");
}

TEST_F(CudaBackwardErrors, GradientsInHostMemory) {
  Args a = good();
  a.d_q.data = case_->d_q->host.data();
  expect_error(a, "d_q.data");
  a = good();
  a.d_out.data = case_->d_out->host.data();
  expect_error(a, "d_out.data");
}

TEST_F(CudaBackwardErrors, MisalignedGradients) {
  Args a = good();
  a.d_k.data = static_cast<uint16_t*>(a.d_k.data) + 1;
  expect_error(a, "d_k.data");
  a = good();
  a.d_v.stride_seq = 132;  // heads 2 x dim 64 = 128 would be contiguous; 132 is not 16-byte
  expect_error(a, "d_v.stride_seq");
}

TEST_F(CudaBackwardErrors, GradientShapeOrDtypeUnlikeQ) {
  Args a = good();
  a.d_q.seq = plan_.seq_len - 1;
  expect_error(a, "d_q.seq");
  a = good();
  a.d_out.dtype = DType::f16;
  expect_error(a, "d_out.dtype");
  a = good();
  a.d_v.heads = 1;
  expect_error(a, "d_v.heads");
}

TEST_F(CudaBackwardErrors, PlanOfAnotherGeometry) {
  const Plan other = make_plan(geo(3, 128), PlanSpec{});
  expect_error(good(), "q.seq", &other);
}

TEST_F(CudaBackwardErrors, CorruptCsc) {
  Plan bad = plan_;
  bad.device_cache.reset();  // not uploaded yet: the CSC is walked before its upload
  bad.row_index[0] = bad.block_rows + 5;
  expect_error(good(), "plan.row_index", &bad);
  bad = plan_;
  bad.device_cache.reset();
  bad.col_offset.pop_back();
  expect_error(good(), "plan.col_offset", &bad);
}

TEST_F(CudaBackwardErrors, UnsupportedHeadDim) {
  const int64_t S = plan_.seq_len;
  TestTensor t(DType::bf16, Layout::bshd, 1, S, 2, 96);
  t.randomize(5);
  Args a = good();
  for (TensorView* view : {&a.q, &a.k, &a.v, &a.out, &a.d_out, &a.d_q, &a.d_k, &a.d_v}) {
    *view = t.device_view();
  }
  try {
    attention_backward_cuda(plan_, a.q, a.k, a.v, a.out, a.d_out, a.lse, a.d_q, a.d_k, a.d_v);
    ADD_FAILURE() << "no error for head dim 96";
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), "q.dim") << e.what();
  }
}

}  // namespace
}  // namespace radial::gpu_test
