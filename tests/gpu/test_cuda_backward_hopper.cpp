// The Hopper backward (src/cuda/hopper/bwd_hopper_kernel.cuh), asked for explicitly with an
// explicit kernel choice, against the float64 reference on fresh random inputs (out and lse
// from the CUDA forward, gradients poisoned with NaN): the block-128 cases of test_cuda_backward.cpp
// (both dtypes, head dims 64 and 128, every layout, batch, tails, padded text keys, key blocks
// no query keeps, dense plans, rows keeping only their diagonal), the small case the sanitizers
// run on, and which kernel the automatic choice takes; the same cases for the comparison
// variants (choice variant=bwd_*, built with RADIAL_ABLATION_KERNELS). A timing test prints the
// Hopper (and variants') and the portable kernels' speed on a Wan-like geometry (never
// asserted). Skipped, saying why, unless the Hopper kernel is built in and the device is
// compute capability 9.0.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "../../src/cuda/bwd_params.hpp"
#include "../../src/cuda/backend.hpp"
#include "backward_harness.hpp"
#include "gpu_harness.hpp"
#include "radial/cuda.hpp"
#include "radial/error.hpp"

namespace radial::gpu_test {
namespace {

// Empty when the Hopper backward can run here, else why not.
std::string hopper_unavailable() {
  if (!gpu_unavailable_reason().empty()) return gpu_unavailable_reason();
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return "cudaGetDevice failed";
  if (!hopper_kernel_built() || cuda_detail::compute_capability(device) != 90) {
    return "the Hopper kernel is not built in (no CuTe) or the device is not compute "
           "capability 9.0";
  }
  return "";
}

#define RADIAL_REQUIRE_HOPPER()                                            \
  do {                                                                     \
    static const std::string why = hopper_unavailable();                   \
    if (!why.empty()) GTEST_SKIP() << "Hopper test skipped: " << why;      \
  } while (0)

// The kernels by name, as benchmarks name them (src/api/kernel_choice.hpp).
KernelChoice hopper_choice() { return parse_choice("family=hopper,direction=backward"); }
KernelChoice portable_choice() { return parse_choice("family=portable,direction=backward"); }

struct HopperCase {
  std::string name;
  Geometry geometry;
  PlanSpec spec;
  bool dense = false;
  CaseSpec run;
};
void PrintTo(const HopperCase& c, std::ostream* os) { *os << c.name; }

std::vector<HopperCase> cases() {
  const DType bf = DType::bf16, hf = DType::f16;
  return {
      // 1200 tokens: the last block holds 48 (the second 64-row query tile is skipped).
      {"wan_bf16_d128_bshd_tail", geo(5, 240), spec(Model::wan, 1.0, 128), false,
       run(bf, 1, 2, 128, Layout::bshd)},
      {"wan_f16_d64_bhsd_batch2", geo(4, 200), spec(Model::wan, 0.5, 128), false,
       run(hf, 2, 2, 64, Layout::bhsd)},
      // Joint attention: 100 text tokens, 61 valid; keys 1085.. masked token by token.
      {"hunyuan_text_bf16_d64_packed_batch2", geo(4, 256, 100, 61),
       spec(Model::hunyuan, 0.95, 128), false, run(bf, 2, 2, 64, Layout::packed)},
      {"hunyuan_text_f16_d128_padded_scale", geo(3, 300, 77, 40), spec(Model::hunyuan, 0.95, 128),
       false, run(hf, 1, 2, 128, Layout::padded, 0.07)},
      // Mostly padding: whole key blocks past key_limit, which no query keeps.
      {"text_padding_empty_columns_bf16_d128", geo(2, 160, 400, 20),
       spec(Model::hunyuan, 0.95, 128), false, run(bf, 1, 2, 128, Layout::bhsd)},
      {"dense_bf16_d128_bhsd", geo(1, 333), spec(Model::wan, 1.0, 128), true,
       run(bf, 1, 2, 128, Layout::bhsd)},
      {"dense_f16_d64_padded_text", geo(2, 150, 20, 5), spec(Model::wan, 1.0, 128), true,
       run(hf, 1, 2, 64, Layout::padded)},
      {"wan_bf16_d64_long", geo(8, 512), spec(Model::wan, 0.5, 128), false,
       run(bf, 1, 1, 64, Layout::bshd)},
      {"wan_f16_d128_batch2_bhsd", geo(3, 250), spec(Model::wan, 1.0, 128), false,
       run(hf, 2, 1, 128, Layout::bhsd)},
      {"wan_bf16_d128_many_blocks", geo(12, 256), spec(Model::wan, 1.0, 128), false,
       run(bf, 1, 3, 128, Layout::bshd)},
      // 256 frames of 4 tokens: rows the rules leave empty keep only their diagonal.
      {"diagonal_rows_bf16_d64", geo(256, 4), spec(Model::hunyuan, 1.0, 128), false,
       run(bf, 1, 2, 64, Layout::bshd)},
      {"diagonal_rows_f16_d128_packed", geo(256, 4), spec(Model::hunyuan, 1.0, 128), false,
       run(hf, 1, 1, 128, Layout::packed)},
  };
}

int64_t empty_columns(const Plan& plan) {
  int64_t n = 0;
  for (int32_t c = 0; c < plan.block_cols; ++c) n += plan.col_offset[c] == plan.col_offset[c + 1];
  return n;
}

// `kernel`: the library's Hopper backward, or a comparison variant of it.
void expect_hopper_gradients_match(const Plan& plan, const CaseSpec& spec,
                                   const std::string& name,
                                   const KernelChoice& kernel = hopper_choice()) {
  BackwardCase c(plan, spec, std::random_device{}());
  SCOPED_TRACE("seed " + std::to_string(c.seed) + ", seq " + std::to_string(plan.seq_len) +
               ", key_limit " + std::to_string(plan.key_limit) + ", " + format_choice(kernel));
  c.forward();
  c.backward(false, &kernel);
  const Gradients64 ref = reference_backward(plan, *c.q, *c.k, *c.v, *c.d_out, spec.scale);
  const GradientErrors e = compare(c, ref);
  EXPECT_EQ(e.non_finite, 0) << "gradients left unwritten (NaN) or not finite";
  EXPECT_EQ(e.touched_gaps, 0) << "elements outside the gradient views were written";
  EXPECT_EQ(e.masked_not_zero, 0) << "dK or dV of keys >= key_limit not exactly 0";
  const double tol = grad_tolerance(spec.dtype);
  EXPECT_LT(e.dq, tol) << "dQ";
  EXPECT_LT(e.dk, tol) << "dK";
  EXPECT_LT(e.dv, tol) << "dV";
  std::cout << "  hopper" << (kernel.variant == Variant::standard
                                   ? std::string()
                                   : std::string(" ") + variant_name(kernel.variant))
            << " " << name << ": rel. error dQ " << e.dq << ", dK " << e.dk << ", dV " << e.dv
            << "\n";
}

class CudaBackwardHopper : public ::testing::TestWithParam<HopperCase> {};

TEST_P(CudaBackwardHopper, MatchesFloat64Reference) {
  RADIAL_REQUIRE_HOPPER();
  const HopperCase& c = GetParam();
  const Plan plan = c.dense ? make_dense_plan(c.geometry, c.spec.block_size)
                            : make_plan(c.geometry, c.spec);
  if (c.name.find("empty_columns") != std::string::npos) {
    ASSERT_GT(empty_columns(plan), 0) << "the case must have key blocks no query keeps";
  }
  if (c.name.find("diagonal_rows") != std::string::npos) {
    ASSERT_GT(plan.rows_given_diagonal, 0) << "the case must have rows keeping their diagonal";
  }
  expect_hopper_gradients_match(plan, c.run, c.name);
}

INSTANTIATE_TEST_SUITE_P(Cases, CudaBackwardHopper, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

// The comparison variants of the Hopper backward (KernelChoice::variant bwd_*, built with
// RADIAL_ABLATION_KERNELS: dS^T, and P^T, from shared memory for dK's and dV's products; dK's
// product and the next tile's issued earlier; no producer warpgroup, the consumers' thread 0
// issuing the loads; dQ's adds by the consumer warps; dS^T by 32-bit stores; lse2 and delta by
// 8-byte loads; dQ as swizzled boxes in a row-major accumulator; the key mask by selects) on the
// same cases and bounds as the library's kernel, so that a variant that gets faster by getting
// wrong shows here before a benchmark reports it.
const char* const kBwdVariants[] = {
    "bwd_rs_dv",  "bwd_ss",    "bwd_early_dk", "bwd_consumer_loads", "bwd_consumer_dq",
    "bwd_sts_ds", "bwd_lds64", "bwd_dq_boxes", "bwd_mask_select"};

KernelChoice variant_choice(const std::string& variant) {
  return parse_choice("family=hopper,direction=backward,variant=" + variant);
}

#define RADIAL_REQUIRE_BWD_VARIANTS()                                                      \
  do {                                                                                     \
    RADIAL_REQUIRE_HOPPER();                                                               \
    if (!ablation_kernels_built()) {                                                       \
      GTEST_SKIP() << "the Hopper backward's variants are not built (RADIAL_ABLATION_KERNELS)"; \
    }                                                                                      \
  } while (0)

class CudaBackwardHopperVariant
    : public ::testing::TestWithParam<std::tuple<const char*, HopperCase>> {};

TEST_P(CudaBackwardHopperVariant, MatchesFloat64Reference) {
  RADIAL_REQUIRE_BWD_VARIANTS();
  const auto& [variant, c] = GetParam();
  const Plan plan = c.dense ? make_dense_plan(c.geometry, c.spec.block_size)
                            : make_plan(c.geometry, c.spec);
  if (c.name.find("empty_columns") != std::string::npos) {
    ASSERT_GT(empty_columns(plan), 0) << "the case must have key blocks no query keeps";
  }
  expect_hopper_gradients_match(plan, c.run, c.name, variant_choice(variant));
}

INSTANTIATE_TEST_SUITE_P(Cases, CudaBackwardHopperVariant,
                         ::testing::Combine(::testing::ValuesIn(kBwdVariants),
                                            ::testing::ValuesIn(cases())),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param)) + "_" +
                                  std::get<1>(info.param).name;
                         });

// The backward's key-block orders (choice row_order: locality, heavy_first, natural) give the
// same gradients, in both families, on a plan with text keys, padded ones and many frames; with
// RADIAL_BACKWARD_CHUNK_TOKENS=128 the locality order walks one spatial position over all
// frames at a time, a permutation far from the natural one.
TEST(CudaBackwardOrders, EveryOrderMatchesFloat64Reference) {
  RADIAL_REQUIRE_HOPPER();
  struct ChunkEnv {  // unset again at the end, also when the test fails
    ChunkEnv() { setenv("RADIAL_BACKWARD_CHUNK_TOKENS", "128", 1); }
    ~ChunkEnv() { unsetenv("RADIAL_BACKWARD_CHUNK_TOKENS"); }
  } chunk_env;
  const Plan plan = make_plan(geo(12, 256, 100, 40), spec(Model::hunyuan, 0.95, 128));
  for (const char* family : {"hopper", "portable"}) {
    for (const char* order : {"locality", "heavy_first", "natural"}) {
      const KernelChoice k = parse_choice(std::string("family=") + family +
                                          ",direction=backward,row_order=" + order);
      expect_hopper_gradients_match(plan, run(DType::bf16, 1, 1, 128, Layout::bshd),
                                    std::string(family) + " " + order, k);
    }
  }
}

// The case compute-sanitizer memcheck and racecheck run on (scripts/gpu/test): small, a tail,
// masked text keys, both dtypes and head dims.
TEST(CudaBackwardHopperSmall, SanitizerCase) {
  RADIAL_REQUIRE_HOPPER();
  const Plan plan = make_plan(geo(2, 100, 30, 17), spec(Model::hunyuan, 0.95, 128));
  expect_hopper_gradients_match(plan, run(DType::bf16, 1, 1, 64, Layout::packed), "bf16 d64");
  expect_hopper_gradients_match(plan, run(DType::f16, 1, 2, 128, Layout::bshd), "f16 d128");
}

// The same small case for each comparison variant (memcheck and racecheck run it too): 330
// tokens of which 17 of 30 text keys valid, so the last key block is partly padded and the
// zeroed keys reach dV through P^T, in registers or shared memory; and a mostly padded case
// whose key blocks past key_limit no query keeps (their dK and dV must be written as zeros).
TEST(CudaBackwardHopperSmall, VariantSanitizerCase) {
  RADIAL_REQUIRE_BWD_VARIANTS();
  const Plan plan = make_plan(geo(2, 100, 30, 17), spec(Model::hunyuan, 0.95, 128));
  const Plan padded = make_plan(geo(2, 160, 400, 20), spec(Model::hunyuan, 0.95, 128));
  ASSERT_GT(empty_columns(padded), 0) << "the case must have key blocks no query keeps";
  for (const char* variant : kBwdVariants) {
    SCOPED_TRACE(variant);
    const KernelChoice k = variant_choice(variant);
    expect_hopper_gradients_match(plan, run(DType::bf16, 1, 1, 64, Layout::packed), "bf16 d64",
                                  k);
    expect_hopper_gradients_match(plan, run(DType::f16, 1, 2, 128, Layout::bshd), "f16 d128", k);
    expect_hopper_gradients_match(padded, run(DType::bf16, 1, 1, 128, Layout::bhsd),
                                  "bf16 d128 padded", k);
  }
}

// What the automatic choice takes, and that asking for the Hopper kernel where it cannot run is
// an error naming the choice (before any launch).
TEST(CudaBackwardHopperChoice, AutomaticAndForced) {
  RADIAL_REQUIRE_HOPPER();
  // The one chooser, as attention_backward_cuda asks it on this card (compute capability 9.0).
  const auto pick = [](DType dtype, int dim, int block, bool deterministic) {
    return choose_kernel(90, dtype, dim, block, Direction::backward, deterministic);
  };
  EXPECT_EQ(pick(DType::bf16, 128, 128, false), hopper_choice());
  EXPECT_EQ(pick(DType::f16, 64, 128, false), hopper_choice());
  EXPECT_EQ(pick(DType::bf16, 128, 64, false), portable_choice());
  EXPECT_EQ(pick(DType::bf16, 128, 128, true),
            parse_choice("family=portable,direction=backward,deterministic=on"));
  // The Hopper kernel asked for in deterministic mode: refused by the dispatcher, by name.
  const Plan plan = make_plan(geo(2, 100, 30, 17), spec(Model::hunyuan, 0.95, 128));
  BackwardCase c(plan, run(DType::bf16, 1, 1, 64, Layout::bshd), 1);
  c.forward();
  KernelChoice bad = hopper_choice();
  bad.deterministic = true;
  try {
    cuda_detail::attention_backward_cuda_with(
        plan, c.q->device_view(), c.k->device_view(), c.v->device_view(), c.out->device_view(),
        c.d_out->device_view(), c.lse_ptr(), c.d_q->device_view(), c.d_k->device_view(),
        c.d_v->device_view(), AttentionOptions{}, bad);
    ADD_FAILURE() << "no error for the Hopper kernel in deterministic mode";
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), "choice.deterministic") << e.what();
  }
  // A backward variant where it is not built, or on the portable family: refused by name.
  const auto refused = [&](const KernelChoice& kernel) -> std::string {
    try {
      cuda_detail::attention_backward_cuda_with(
          plan, c.q->device_view(), c.k->device_view(), c.v->device_view(),
          c.out->device_view(), c.d_out->device_view(), c.lse_ptr(), c.d_q->device_view(),
          c.d_k->device_view(), c.d_v->device_view(), AttentionOptions{}, kernel);
    } catch (const Error& e) {
      return e.argument();
    }
    return "(nothing thrown)";
  };
  KernelChoice portable_variant = portable_choice();
  portable_variant.variant = Variant::bwd_rs_dv;
  EXPECT_EQ(refused(portable_variant), "choice.variant");
  KernelChoice fp8_variant_here = hopper_choice();
  fp8_variant_here.variant = Variant::fp8_direct_o;
  EXPECT_EQ(refused(fp8_variant_here), "choice.variant");
  if (!ablation_kernels_built()) {
    EXPECT_EQ(refused(parse_choice("family=hopper,direction=backward,variant=bwd_rs_dv")),
              "choice.variant");
  } else {
    // A call the variants do not cover (block 64): refused naming the variant.
    const Plan plan64 = make_plan(geo(2, 100, 30, 17), spec(Model::hunyuan, 0.95, 64));
    BackwardCase c64(plan64, run(DType::bf16, 1, 1, 64, Layout::bshd), 2);
    c64.forward();
    try {
      cuda_detail::attention_backward_cuda_with(
          plan64, c64.q->device_view(), c64.k->device_view(), c64.v->device_view(),
          c64.out->device_view(), c64.d_out->device_view(), c64.lse_ptr(),
          c64.d_q->device_view(), c64.d_k->device_view(), c64.d_v->device_view(),
          AttentionOptions{}, parse_choice("family=hopper,direction=backward,variant=bwd_rs_dv"));
      ADD_FAILURE() << "no error for a backward variant on a block-64 plan";
    } catch (const Error& e) {
      EXPECT_EQ(e.argument(), "choice.variant") << e.what();
    }
  }
}

// Speed of both kernels (and of the Hopper backward's comparison variants where built) on a
// Wan-like geometry (40 heads, 18,432 tokens, head dim 128, bf16), a radial plan and a dense
// one: milliseconds per backward and effective TFLOP/s (2.5 x the forward's 4 x 128 x 128 x dim
// FLOPs per kept block). Printed, never asserted.
TEST(CudaBackwardHopperTiming, PrintsSpeed) {
  RADIAL_REQUIRE_HOPPER();
  const int64_t heads = 40, dim = 128;
  const Geometry g = geo(18, 1024);
  const int64_t S = g.frames * g.tokens_per_frame;
  const size_t n = static_cast<size_t>(S * heads * dim);
  // Random bf16 values (a repeated block of N(0, 1) draws: speed does not care).
  std::vector<uint16_t> host(n);
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (size_t i = 0; i < 65536; ++i) {
    const float x = normal(rng);
    uint32_t bits;
    std::memcpy(&bits, &x, 4);
    host[i] = static_cast<uint16_t>(bits >> 16);
  }
  for (size_t i = 65536; i < n; ++i) host[i] = host[i % 65536];
  std::vector<std::unique_ptr<DeviceBuffer>> buffers;
  const auto tensor = [&](bool fill) {
    buffers.push_back(std::make_unique<DeviceBuffer>(n * 2));
    if (fill) {
      EXPECT_EQ(cudaMemcpy(buffers.back()->get(), host.data(), n * 2, cudaMemcpyHostToDevice),
                cudaSuccess);
    }
    TensorView v = TensorView::bshd(buffers.back()->get(), DType::bf16, 1, S, heads, dim,
                                    Device::cuda);
    cudaGetDevice(&v.device_index);
    return v;
  };
  const TensorView q = tensor(true), k = tensor(true), v = tensor(true), d_out = tensor(true);
  const TensorView out = tensor(false), d_q = tensor(false), d_k = tensor(false),
                   d_v = tensor(false);
  DeviceBuffer lse(static_cast<size_t>(heads * S) * sizeof(float));
  float* lse_ptr = static_cast<float*>(lse.get());
  cudaEvent_t start, stop;
  ASSERT_EQ(cudaEventCreate(&start), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&stop), cudaSuccess);
  for (bool dense : {false, true}) {
    const Plan plan = dense ? make_dense_plan(g, 128) : make_plan(g, spec(Model::wan, 1.0, 128));
    attention_cuda(plan, q, k, v, out, lse_ptr);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const double flops = 2.5 * 4.0 * static_cast<double>(plan.row_offset.back()) * 128 * 128 *
                         static_cast<double>(dim * heads);
    std::vector<KernelChoice> kernels = {portable_choice(), hopper_choice()};
    if (ablation_kernels_built()) {  // the comparison variants too, in the same run
      for (const char* variant : kBwdVariants) kernels.push_back(variant_choice(variant));
    }
    for (const KernelChoice& kernel : kernels) {
      const auto once = [&] {
        cuda_detail::attention_backward_cuda_with(plan, q, k, v, out, d_out, lse_ptr, d_q, d_k,
                                                  d_v, AttentionOptions{}, kernel);
      };
      once();  // warm-up (plan upload, pools)
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      const int reps = 5;
      cudaEventRecord(start);
      for (int i = 0; i < reps; ++i) once();
      cudaEventRecord(stop);
      ASSERT_EQ(cudaEventSynchronize(stop), cudaSuccess);
      float ms = 0.f;
      cudaEventElapsedTime(&ms, start, stop);
      ms /= reps;
      std::cout << "  " << (dense ? "dense " : "radial") << " plan ("
                << plan.row_offset.back() << " of " << int64_t{plan.block_rows} * plan.block_cols
                << " blocks), "
                << (kernel.family == Family::portable ? std::string("portable")
                    : kernel.variant == Variant::standard
                        ? std::string("hopper  ")
                        : std::string("hopper ") + variant_name(kernel.variant))
                << ": " << ms << " ms, " << flops / (ms * 1e-3) / 1e12 << " TFLOP/s\n";
    }
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
}

}  // namespace
}  // namespace radial::gpu_test
