// The CUDA forward kernel against the float64 CPU reference on fresh random inputs: both
// dtypes, head dims 64 and 128, block sizes 64 and 128, batch and heads, every layout, partial
// last blocks, padded text keys, custom scale, with and without lse, each portable kernel
// choice (tiles, L2 prefetch) and row order.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <cmath>
#include <iostream>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "../../src/cuda/backend.hpp"
#include "../../src/cuda/plan_device.hpp"
#include "gpu_harness.hpp"
#include "radial/cuda.hpp"
#include "radial/error.hpp"

namespace radial::gpu_test {
namespace {

using Case = KernelCase;

std::vector<Case> cases() {
  const DType bf = DType::bf16, hf = DType::f16;
  return {
      // 1200 tokens: the last block of 128 holds 48.
      {"wan_bf16_d128_b128_bshd", geo(5, 240), spec(Model::wan, 1.0, 128), false,
       run(bf, 1, 2, 128, Layout::bshd)},
      {"wan_f16_d64_b64_bhsd", geo(4, 200), spec(Model::wan, 0.5, 64), false,
       run(hf, 2, 3, 64, Layout::bhsd)},
      // Joint attention: 100 text tokens, 61 valid; keys 1085.. masked token by token.
      {"hunyuan_text_bf16_d64_b128_packed", geo(4, 256, 100, 61),
       spec(Model::hunyuan, 0.95, 128), false, run(bf, 2, 2, 64, Layout::packed)},
      {"hunyuan_text_f16_d128_b64_padded_scale", geo(3, 300, 77, 40),
       spec(Model::hunyuan, 0.95, 64), false, run(hf, 1, 2, 128, Layout::padded, 0.07)},
      {"dense_bf16_d128_b64_no_lse", geo(1, 333), spec(Model::wan, 1.0, 64), true,
       run(bf, 1, 3, 128, Layout::bhsd, 0.0, false)},
      {"wan_f16_d128_b128_batch3", geo(3, 250), spec(Model::wan, 1.0, 128), false,
       run(hf, 3, 1, 128, Layout::bhsd)},
      {"dense_f16_d64_b128_padded", geo(2, 150, 20, 5), spec(Model::wan, 1.0, 128), true,
       run(hf, 1, 2, 64, Layout::padded)},
      // Many key tiles per row (4096 tokens).
      {"wan_bf16_d64_b128_long", geo(8, 512), spec(Model::wan, 0.5, 128), false,
       run(bf, 1, 1, 64, Layout::bshd)},
      // The eight-warp tile (block 128 only), both head dims.
      {"eight_warps_bf16_d128", geo(4, 256, 50, 31), spec(Model::hunyuan, 0.95, 128), false,
       run(bf, 1, 2, 128, Layout::packed), "family=portable,tile=eight_warps"},
      {"eight_warps_f16_d64", geo(5, 240), spec(Model::wan, 1.0, 128), false,
       run(hf, 2, 1, 64, Layout::padded, 0.2), "family=portable,tile=eight_warps"},
      // K/V double buffered (block 128 only): rows of one and two tiles, odd and even counts.
      {"double_buffer_bf16_d128", geo(4, 256, 50, 31), spec(Model::hunyuan, 0.95, 128), false,
       run(bf, 2, 2, 128, Layout::bhsd), "family=portable,tile=double_buffer"},
      {"double_buffer_f16_d64_dense", geo(1, 700), spec(Model::wan, 1.0, 128), true,
       run(hf, 1, 3, 64, Layout::packed), "family=portable,tile=double_buffer"},
      {"natural_order_bf16_d128", geo(5, 240), spec(Model::wan, 0.5, 128), false,
       run(bf, 1, 2, 128, Layout::padded), "family=portable,row_order=natural"},
      // Locality order (the standard one) with rotated block lists: several frames, so rows
      // start mid-list and wrap; blocks straddling frames, text rows, both block sizes.
      {"locality_bf16_d128_b128", geo(7, 200, 70, 45), spec(Model::hunyuan, 0.95, 128), false,
       run(bf, 1, 2, 128, Layout::bhsd), "family=portable,row_order=locality"},
      {"locality_f16_d64_b64", geo(8, 150), spec(Model::wan, 1.0, 64), false,
       run(hf, 2, 1, 64, Layout::packed), "family=portable,row_order=locality"},
      // Heavy-first row order (the standard before the locality order), unrotated.
      {"heavy_first_bf16_d128", geo(5, 240), spec(Model::wan, 0.5, 128), false,
       run(bf, 1, 2, 128, Layout::bshd), "family=portable,row_order=heavy_first"},
      // L2 prefetch two blocks ahead (block 128), alone and with the locality order.
      {"prefetch_bf16_d128", geo(5, 300, 40, 25), spec(Model::hunyuan, 0.95, 128), false,
       run(bf, 1, 1, 128, Layout::bshd),
       "family=portable,row_order=heavy_first,l2_prefetch=on"},
      {"prefetch_f16_d64_dense", geo(1, 700), spec(Model::wan, 1.0, 128), true,
       run(hf, 1, 2, 64, Layout::padded),
       "family=portable,row_order=heavy_first,l2_prefetch=on"},
      {"locality_prefetch_bf16_d128", geo(8, 200), spec(Model::wan, 1.0, 128), false,
       run(bf, 2, 1, 128, Layout::bhsd), "family=portable,l2_prefetch=on"},
      {"locality_prefetch_f16_d64_text", geo(6, 200, 90, 50), spec(Model::hunyuan, 0.95, 128),
       false, run(hf, 1, 2, 64, Layout::packed), "family=portable,l2_prefetch=on"},
  };
}

class CudaAttention : public ::testing::TestWithParam<Case> {};

TEST_P(CudaAttention, MatchesFloat64Reference) {
  RADIAL_REQUIRE_GPU();
  expect_matches_reference(GetParam(), "");
}

INSTANTIATE_TEST_SUITE_P(Cases, CudaAttention, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

// The case compute-sanitizer memcheck runs on (scripts/gpu/test): small, partial blocks and
// masked text keys, both block sizes.
TEST(CudaAttentionSmall, SanitizerCase) {
  RADIAL_REQUIRE_GPU();
  for (int block : {64, 128}) {
    const Plan plan = make_plan(geo(2, 100, 30, 17), spec(Model::hunyuan, 0.95, block));
    const CaseResult r = run_case(plan, run(DType::bf16, 1, 2, 64, Layout::packed));
    EXPECT_EQ(r.non_finite_out, 0);
    EXPECT_EQ(r.touched_gaps, 0);
    EXPECT_EQ(r.bad_lse, 0);
    EXPECT_LT(r.out_rel_error, out_tolerance(DType::bf16)) << "seed " << r.seed;
  }
}

// The plan goes to the device once; later calls reuse it and give bit-identical results.
TEST(CudaAttentionPlanCache, UploadsOnceAndRepeatsExactly) {
  RADIAL_REQUIRE_GPU();
  const Plan plan = make_plan(geo(3, 256), spec(Model::wan, 1.0, 128));
  EXPECT_EQ(detail::PlanAccess::cache(plan), nullptr);
  TestTensor q(DType::bf16, Layout::bshd, 1, plan.seq_len, 2, 64);
  TestTensor k(DType::bf16, Layout::bshd, 1, plan.seq_len, 2, 64);
  TestTensor v(DType::bf16, Layout::bshd, 1, plan.seq_len, 2, 64);
  TestTensor out(DType::bf16, Layout::bshd, 1, plan.seq_len, 2, 64);
  q.randomize(std::random_device{}());
  k.randomize(std::random_device{}());
  v.randomize(std::random_device{}());
  out.poison();
  attention_cuda(plan, q.device_view(), k.device_view(), v.device_view(), out.device_view(),
                 nullptr);
  ASSERT_NE(detail::PlanAccess::cache(plan), nullptr);
  ASSERT_EQ(detail::PlanAccess::cache(plan)->entries.size(), 1u);
  const int32_t* uploaded = detail::PlanAccess::cache(plan)->entries[0].buffer;
  out.download();
  const std::vector<uint16_t> first = out.host;

  // A copy of the plan shares the cache; a second call on another stream reuses it.
  const Plan copy = plan;
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  out.poison();
  AttentionOptions options;
  options.stream = stream;
  attention_cuda(copy, q.device_view(), k.device_view(), v.device_view(), out.device_view(),
                 nullptr, options);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
  EXPECT_EQ(detail::PlanAccess::cache(plan)->entries.size(), 1u);
  EXPECT_EQ(detail::PlanAccess::cache(plan)->entries[0].buffer, uploaded);
  out.download();
  EXPECT_EQ(out.host, first) << "two runs on the same inputs differ";
}

// A choice that is not built, or that no kernel has yet, is refused by the field's name before
// anything runs.
TEST(CudaAttentionChoice, UnbuiltChoicesNameTheField) {
  RADIAL_REQUIRE_GPU();
  const Plan plan = make_plan(geo(2, 256), spec(Model::wan, 1.0, 128));
  const CaseSpec c = run(DType::bf16, 1, 1, 128, Layout::bshd);
  const auto refused = [&](const std::string& choice) -> std::string {
    try {
      run_case(plan, c, choice);
    } catch (const Error& e) {
      return e.argument();
    }
    return "(nothing thrown)";
  };
  EXPECT_EQ(refused("family=portable,direction=backward"), "choice.direction");
  EXPECT_EQ(refused("family=portable,row_order=natural,l2_prefetch=on,tile=eight_warps"),
            "choice.l2_prefetch");
  if (!ablation_kernels_built()) {
    EXPECT_EQ(refused("family=portable,tile=eight_warps"), "choice.tile");
    EXPECT_EQ(refused("family=portable,l2_prefetch=on"), "choice.l2_prefetch");
  }
  const Plan b64 = make_plan(geo(2, 256), spec(Model::wan, 1.0, 64));
  try {
    run_case(b64, c, "family=portable,tile=double_buffer");
    ADD_FAILURE() << "block 64 has the standard tile only";
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), "choice.tile") << e.what();
  }
}

// The public dispatcher reaches the CUDA backend for device tensors.
TEST(CudaAttentionDispatch, AttentionUsesCudaForDeviceTensors) {
  RADIAL_REQUIRE_GPU();
  const Plan plan = make_plan(geo(2, 200), spec(Model::wan, 1.0, 64));
  CaseSpec c = run(DType::bf16, 1, 1, 64, Layout::bshd);
  TestTensor q(c.dtype, c.layout, 1, plan.seq_len, 1, 64);
  TestTensor k(c.dtype, c.layout, 1, plan.seq_len, 1, 64);
  TestTensor v(c.dtype, c.layout, 1, plan.seq_len, 1, 64);
  TestTensor out(c.dtype, c.layout, 1, plan.seq_len, 1, 64);
  q.randomize(std::random_device{}());
  k.randomize(std::random_device{}());
  v.randomize(std::random_device{}());
  out.poison();
  attention(plan, q.device_view(), k.device_view(), v.device_view(), out.device_view(), nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  out.download();
  const ReferenceResult ref = attention_reference(plan, q.host_view(), k.host_view(), v.host_view());
  double err2 = 0, ref2 = 0;
  for (int64_t s = 0; s < plan.seq_len; ++s)
    for (int64_t d = 0; d < 64; ++d) {
      const double o = out.at(0, s, 0, d), r = ref.at(0, s, 0, d);
      ASSERT_TRUE(std::isfinite(o)) << "token " << s << " dim " << d;
      err2 += (o - r) * (o - r), ref2 += r * r;
    }
  EXPECT_LT(std::sqrt(err2 / ref2), out_tolerance(DType::bf16));
}

}  // namespace
}  // namespace radial::gpu_test
