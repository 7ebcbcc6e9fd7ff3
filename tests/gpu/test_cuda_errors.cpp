// Every argument the CUDA backend refuses gets a radial::Error naming it, before any launch
// (the poisoned output stays untouched).
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "gpu_harness.hpp"
#include "radial/cuda.hpp"
#include "radial/error.hpp"

namespace radial::gpu_test {
namespace {

class CudaErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    RADIAL_REQUIRE_GPU();
    Geometry g;
    g.frames = 2, g.tokens_per_frame = 128;
    plan_ = make_plan(g, PlanSpec{});
    const int64_t S = plan_.seq_len;
    q_.emplace_back(DType::bf16, Layout::bshd, 1, S, 2, 64);
    q_.emplace_back(DType::bf16, Layout::bshd, 1, S, 2, 64);
    q_.emplace_back(DType::bf16, Layout::bshd, 1, S, 2, 64);
    q_.emplace_back(DType::bf16, Layout::bshd, 1, S, 2, 64);
    for (int i = 0; i < 3; ++i) q_[i].randomize(1234 + i);
    q_[3].poison();
    lse_ = std::make_unique<DeviceBuffer>(static_cast<size_t>(2 * S) * sizeof(float));
  }

  struct Args {
    TensorView q, k, v, out;
    float* lse;
    AttentionOptions options;
  };
  Args good() {
    return {q_[0].device_view(), q_[1].device_view(), q_[2].device_view(), q_[3].device_view(),
            static_cast<float*>(lse_->get()), {}};
  }

  // Runs attention_cuda on `args` and expects an Error naming `argument`; the output must
  // stay poisoned.
  void expect_error(const Args& a, const std::string& argument) {
    try {
      attention_cuda(plan_, a.q, a.k, a.v, a.out, a.lse, a.options);
      ADD_FAILURE() << "no error; expected one naming " << argument;
    } catch (const Error& e) {
      EXPECT_EQ(e.argument(), argument) << e.what();
      EXPECT_NE(std::string(e.what()).find(argument), std::string::npos) << e.what();
    }
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    q_[3].download();
    for (uint16_t bits : q_[3].host) ASSERT_EQ(bits, 0xffff) << "out was written";
  }

  Plan plan_;
  std::deque<TestTensor> q_;  // q, k, v, out
  std::unique_ptr<DeviceBuffer> lse_;
};

TEST_F(CudaErrors, GoodArgumentsRun) {
  const Args a = good();
  attention_cuda(plan_, a.q, a.k, a.v, a.out, a.lse);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

TEST_F(CudaErrors, HostMemoryInDeviceView) {
  Args a = good();
  a.q.data = q_[0].host.data();
  expect_error(a, "q.data");
  a = good();
  a.out.data = q_[3].host.data();
  expect_error(a, "out.data");
}

TEST_F(CudaErrors, CpuTensors) {
  Args a = good();
  for (TensorView* t : {&a.q, &a.k, &a.v, &a.out}) t->device = Device::cpu;
  expect_error(a, "q.device");
}

TEST_F(CudaErrors, DeviceIndexOutOfRange) {
  int count = 0;
  ASSERT_EQ(cudaGetDeviceCount(&count), cudaSuccess);
  Args a = good();
  for (TensorView* t : {&a.q, &a.k, &a.v, &a.out}) t->device_index = count;
  expect_error(a, "q.device_index");
}

TEST_F(CudaErrors, PointerOnAnotherDevice) {
  int count = 0;
  ASSERT_EQ(cudaGetDeviceCount(&count), cudaSuccess);
  if (count < 2) GTEST_SKIP() << "needs two CUDA devices (found " << count << ")";
  Args a = good();
  for (TensorView* t : {&a.q, &a.k, &a.v, &a.out}) t->device_index = 1;  // memory is on 0
  expect_error(a, "q.data");
}

TEST_F(CudaErrors, Float32Unsupported) {
  Args a = good();
  for (TensorView* t : {&a.q, &a.k, &a.v, &a.out}) t->dtype = DType::f32;
  expect_error(a, "q.dtype");
}

TEST_F(CudaErrors, HeadDimUnsupported) {
  Args a = good();
  for (TensorView* t : {&a.q, &a.k, &a.v, &a.out}) {
    t->dim = 32;  // a valid view of the same buffer, but no kernel for 32
  }
  expect_error(a, "q.dim");
}

TEST_F(CudaErrors, MisalignedData) {
  Args a = good();
  a.k.data = static_cast<char*>(a.k.data) + 2;  // one element in
  a.k.batch = 1;
  expect_error(a, "k.data");
}

TEST_F(CudaErrors, MisalignedStride) {
  Args a = good();
  // Heads 68 elements apart: no overlap, but rows no longer start on 16-byte boundaries.
  a.v.stride_head = 68, a.v.stride_seq = 2 * 68;
  a.v.seq = plan_.seq_len;
  expect_error(a, "v.stride_head");
}

TEST_F(CudaErrors, PlanDoesNotMatchInputs) {
  Args a = good();
  for (TensorView* t : {&a.q, &a.k, &a.v, &a.out}) t->seq = plan_.seq_len - 8;
  expect_error(a, "q.seq");
}

// A plan edited after the planner made it (here a copy, so the upload cache is fresh too) is
// walked and refused, before the kernel can read a column past the keys.
TEST_F(CudaErrors, EditedPlanIsWalked) {
  Args a = good();
  Plan edited = plan_;
  edited.col_index.back() = edited.block_cols + 3;
  try {
    attention_cuda(edited, a.q, a.k, a.v, a.out, a.lse, a.options);
    ADD_FAILURE() << "no error; expected one naming plan.col_index";
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), "plan.col_index") << e.what();
  }
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  q_[3].download();
  for (uint16_t bits : q_[3].host) ASSERT_EQ(bits, 0xffff) << "out was written";
}

TEST_F(CudaErrors, LseOnHost) {
  Args a = good();
  std::vector<float> host_lse(static_cast<size_t>(2 * plan_.seq_len));
  a.lse = host_lse.data();
  expect_error(a, "lse");
}

TEST_F(CudaErrors, BadScale) {
  Args a = good();
  a.options.scale = -1.0;
  expect_error(a, "options.scale");
}

TEST_F(CudaErrors, MixedDtypes) {
  Args a = good();
  a.v.dtype = DType::f16;
  expect_error(a, "v.dtype");
}

TEST(CudaAvailable, AgreesWithTheRuntime) {
  int count = 0;
  const bool runtime = cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
  cudaGetLastError();
  EXPECT_EQ(cuda_available(), runtime);
}

}  // namespace
}  // namespace radial::gpu_test
