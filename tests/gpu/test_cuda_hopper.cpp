// The Hopper (sm_90a) forward kernels (family=hopper, src/cuda/hopper) against the
// float64 CPU reference on fresh random inputs: partial last blocks, masked text keys, rotated
// block lists, dense plans, many key blocks per row, batch and heads, every layout. Skipped,
// saying why, unless the Hopper kernel is built in (CuTe found) and the device is compute
// capability 9.0.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <iostream>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "../../src/cuda/backend.hpp"
#include "gpu_harness.hpp"
#include "radial/error.hpp"

namespace radial::gpu_test {
namespace {

const char* const kHopper = "family=hopper";  // the library's schedule
const char* const kHopperSerial = "family=hopper,schedule=serial";
const char* const kHopperOverlap = "family=hopper,schedule=overlap";
const char* const kHopperPingpong = "family=hopper,schedule=pingpong";
const char* const kHopperPersistent = "family=hopper,persistent=on";
const char* const kHopperQRegisters = "family=hopper,schedule=q_registers";
// The library's schedule with the wait for P V kept below the exponentials (a comparison build).
const char* const kHopperLateWait = "family=hopper,variant=bf16_late_wait";
const char* const kPortable = "family=portable";

// Empty when the Hopper kernel can run here, else why not.
std::string hopper_unavailable() {
  if (!gpu_unavailable_reason().empty()) return gpu_unavailable_reason();
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) return "cudaGetDeviceProperties failed";
  if (prop.major != 9 || prop.minor != 0)
    return std::string("device ") + prop.name + " is not compute capability 9.0";
  return choice_not_built(kHopper);
}

#define RADIAL_REQUIRE_HOPPER()                                   \
  do {                                                            \
    static const std::string why = hopper_unavailable();          \
    if (!why.empty()) GTEST_SKIP() << "Hopper test skipped: " << why; \
  } while (0)

using Case = KernelCase;

std::vector<Case> base_cases() {
  const DType bf = DType::bf16;
  return {
      // 1200 tokens: the last block holds 48 rows and 48 keys.
      {"wan_bshd", geo(5, 240), spec(Model::wan, 1.0), false, run(bf, 1, 2, 128, Layout::bshd)},
      // Joint attention: keys from key_limit on masked token by token; custom scale.
      {"hunyuan_text_packed_scale", geo(4, 256, 100, 61), spec(Model::hunyuan, 0.95), false,
       run(bf, 2, 2, 128, Layout::packed, 0.07)},
      // Rows start mid-list and wrap (locality order), blocks straddling frames, text rows.
      {"hunyuan_locality_bhsd", geo(7, 200, 70, 45), spec(Model::hunyuan, 0.95), false,
       run(bf, 1, 3, 128, Layout::bhsd)},
      {"dense_padded_no_lse", geo(1, 700), spec(Model::wan, 1.0), true,
       run(bf, 1, 2, 128, Layout::padded, 0.0, false)},
      // Many key blocks per row (4096 tokens): every stage reused many times.
      {"wan_long_batch2", geo(8, 512), spec(Model::wan, 0.5), false,
       run(bf, 2, 1, 128, Layout::bshd)},
  };
}

// The library's schedule on what the other dtype and head dim add: f16 conversions and
// tensor maps, D 64 (one TMA box per row, four stages, m64n64 P V).
std::vector<Case> dtype_dim_cases() {
  const DType bf = DType::bf16, f16 = DType::f16;
  return {
      {"f16_wan_bshd", geo(5, 240), spec(Model::wan, 1.0), false,
       run(f16, 1, 2, 128, Layout::bshd)},
      {"f16_hunyuan_text_bhsd", geo(4, 256, 100, 61), spec(Model::hunyuan, 0.95), false,
       run(f16, 1, 2, 128, Layout::bhsd)},
      {"d64_bf16_hunyuan_text_packed", geo(7, 200, 70, 45), spec(Model::hunyuan, 0.95), false,
       run(bf, 2, 2, 64, Layout::packed, 0.11)},
      {"d64_f16_wan_long", geo(8, 512), spec(Model::wan, 0.5), false,
       run(f16, 1, 2, 64, Layout::bshd)},
      {"d64_bf16_dense_no_lse", geo(1, 700), spec(Model::wan, 1.0), true,
       run(bf, 1, 2, 64, Layout::padded, 0.0, false)},
  };
}

// Persistent CTAs running many tiles each (capped at 3 and 5 CTAs): the pipeline's stages and
// phases carry over from tile to tile, Q is reloaded under the previous tile's last products;
// f16 and D 64 too.
std::vector<Case> persistent_cases() {
  std::vector<Case> all = {
      {"persistent_wan_3ctas", geo(8, 512), spec(Model::wan, 0.5), false,
       run(DType::bf16, 2, 2, 128, Layout::bshd)},
      {"persistent_hunyuan_text_5ctas", geo(7, 200, 70, 45), spec(Model::hunyuan, 0.95), false,
       run(DType::bf16, 1, 3, 128, Layout::bhsd)},
      {"persistent_d64_f16_3ctas", geo(5, 240), spec(Model::wan, 1.0), false,
       run(DType::f16, 2, 2, 64, Layout::bshd)},
  };
  all[0].run.max_ctas = 3;
  all[1].run.max_ctas = 5;
  all[2].run.max_ctas = 3;
  return all;
}

// Every bf16 D 128 case with every schedule, the others with the library's.
std::vector<Case> cases() {
  const std::pair<const char*, const char*> schedules[] = {{"", kHopper},
                                                   {"_serial", kHopperSerial},
                                                   {"_overlap", kHopperOverlap},
                                                   {"_pingpong", kHopperPingpong},
                                                   {"_persistent", kHopperPersistent},
                                                   {"_q_registers", kHopperQRegisters},
                                                   {"_late_wait", kHopperLateWait}};
  std::vector<Case> all;
  for (const Case& c : base_cases()) {
    for (const auto& [suffix, choice] : schedules) {
      all.push_back(c);
      all.back().name += suffix;
      all.back().choice = choice;
    }
  }
  for (Case c : dtype_dim_cases()) {
    c.choice = kHopper;
    all.push_back(c);
  }
  for (Case c : persistent_cases()) {
    c.choice = kHopperPersistent;
    all.push_back(c);
  }
  return all;
}

class HopperAttention : public ::testing::TestWithParam<Case> {};

TEST_P(HopperAttention, MatchesFloat64Reference) {
  RADIAL_REQUIRE_HOPPER();
  expect_matches_reference(GetParam(), "hopper ");
}

INSTANTIATE_TEST_SUITE_P(Cases, HopperAttention, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

// What the kernel does not cover is refused with an Error naming the argument.
std::string refused_argument(const Plan& plan, const CaseSpec& c,
                             const std::string& choice = kHopper) {
  try {
    run_case(plan, c, choice);
  } catch (const Error& e) {
    return e.argument();
  }
  return "(nothing thrown)";
}

TEST(HopperAttentionErrors, UnsupportedShapesNameTheArgument) {
  RADIAL_REQUIRE_HOPPER();
  const Plan b128 = make_plan(geo(2, 256), spec(Model::wan, 1.0));
  const Plan b64 = make_plan(geo(2, 256), spec(Model::wan, 1.0, 64));
  EXPECT_EQ(refused_argument(b128, run(DType::bf16, 1, 1, 96, Layout::bshd)), "q.dim");
  EXPECT_EQ(refused_argument(b64, run(DType::bf16, 1, 1, 128, Layout::bshd)), "plan.block_size");
  // The other schedules are built for bf16, head dim 128 only.
  EXPECT_EQ(refused_argument(b128, run(DType::f16, 1, 1, 128, Layout::bshd), kHopperSerial),
            "choice.schedule");
}

// The public entry point: on this card it runs the Hopper kernel wherever that covers the call
// (bit for bit the same output as family=hopper), and the portable kernel otherwise
// (block 64: bit for bit family=portable). An empty choice: the public attention().
std::vector<uint16_t> output_bits(const Plan& plan, const CaseSpec& c, const std::string& choice) {
  const int64_t S = plan.seq_len;
  TestTensor q(c.dtype, c.layout, c.batch, S, c.heads, c.dim);
  TestTensor k(c.dtype, c.layout, c.batch, S, c.heads, c.dim);
  TestTensor v(c.dtype, c.layout, c.batch, S, c.heads, c.dim);
  TestTensor out(c.dtype, c.layout, c.batch, S, c.heads, c.dim);
  q.randomize(11), k.randomize(12), v.randomize(13);
  out.poison();
  if (choice.empty()) {
    attention(plan, q.device_view(), k.device_view(), v.device_view(), out.device_view(), nullptr,
              AttentionOptions{});
  } else {
    cuda_detail::attention_cuda_with(plan, q.device_view(), k.device_view(), v.device_view(),
                                     out.device_view(), nullptr, AttentionOptions{},
                                     parse_choice(choice));
  }
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  out.download();
  return out.host;
}

TEST(HopperDispatch, AttentionPicksTheHopperKernelWhereItRuns) {
  RADIAL_REQUIRE_HOPPER();
  const Plan b128 = make_plan(geo(5, 240), spec(Model::wan, 1.0));
  const Plan b64 = make_plan(geo(5, 240), spec(Model::wan, 1.0, 64));
  for (DType dtype : {DType::bf16, DType::f16}) {
    for (int64_t dim : {64, 128}) {
      const CaseSpec c = run(dtype, 1, 2, dim, Layout::bshd);
      const auto public_out = output_bits(b128, c, "");
      EXPECT_EQ(public_out, output_bits(b128, c, kHopper)) << dtype_name(dtype) << " D " << dim;
      EXPECT_NE(public_out, output_bits(b128, c, kPortable))
          << "the two kernels round differently; equal outputs would mean no Hopper dispatch";
    }
  }
  const CaseSpec c = run(DType::bf16, 1, 2, 128, Layout::bshd);
  EXPECT_EQ(output_bits(b64, c, ""), output_bits(b64, c, kPortable)) << "block 64: portable";
}

}  // namespace
}  // namespace radial::gpu_test
