// The Hopper (sm_90a) forward kernels (FwdVariant::hopper.., src/cuda/hopper) against the
// float64 CPU reference on fresh random inputs: partial last blocks, masked text keys, rotated
// block lists, dense plans, many key blocks per row, batch and heads, every layout. Skipped,
// saying why, unless the build has RADIAL_HOPPER=ON and the device is compute capability 9.0.
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

constexpr int kHopper = 8;        // cuda_detail::FwdVariant::hopper (softmax overlapped)
constexpr int kHopperSerial = 9;  // cuda_detail::FwdVariant::hopper_serial
constexpr int kHopperWs = 10;     // cuda_detail::FwdVariant::hopper_ws (TMA, warp-specialised)
constexpr int kHopperPingpong = 11;  // cuda_detail::FwdVariant::hopper_pingpong
constexpr int kHopperSplit = 12;     // cuda_detail::FwdVariant::hopper_split
constexpr int kHopperSplitPingpong = 13;  // cuda_detail::FwdVariant::hopper_split_pingpong

// Empty when the Hopper kernel can run here, else why not.
std::string hopper_unavailable() {
  if (!gpu_unavailable_reason().empty()) return gpu_unavailable_reason();
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) return "cudaGetDeviceProperties failed";
  if (prop.major != 9 || prop.minor != 0)
    return std::string("device ") + prop.name + " is not compute capability 9.0";
  try {  // the smallest call: throws Error("variant") when the kernel is not built in
    const Plan plan = make_plan(geo(1, 128), spec(Model::wan, 1.0));
    run_case(plan, run(DType::bf16, 1, 1, 128, Layout::bshd), kHopper);
  } catch (const Error& e) {
    if (e.argument() == "variant") return "built without RADIAL_HOPPER";
    throw;
  }
  return "";
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
      // Many key blocks per row (4096 tokens): both stages reused many times.
      {"wan_long_batch2", geo(8, 512), spec(Model::wan, 0.5), false,
       run(bf, 2, 1, 128, Layout::bshd)},
  };
}

// Every case with every schedule.
std::vector<Case> cases() {
  const std::pair<const char*, int> schedules[] = {{"_overlap", kHopper},
                                                   {"_serial", kHopperSerial},
                                                   {"_ws", kHopperWs},
                                                   {"_pingpong", kHopperPingpong},
                                                   {"_split", kHopperSplit},
                                                   {"_split_pingpong", kHopperSplitPingpong}};
  std::vector<Case> all;
  for (const Case& c : base_cases()) {
    for (const auto& [suffix, variant] : schedules) {
      all.push_back(c);
      all.back().name += suffix;
      all.back().variant = variant;
    }
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

// What the kernel does not support yet is refused with an Error naming the argument.
std::string refused_argument(const Plan& plan, const CaseSpec& c) {
  try {
    run_case(plan, c, kHopperSerial);
  } catch (const Error& e) {
    return e.argument();
  }
  return "(nothing thrown)";
}

TEST(HopperAttentionErrors, UnsupportedShapesNameTheArgument) {
  RADIAL_REQUIRE_HOPPER();
  const Plan b128 = make_plan(geo(2, 256), spec(Model::wan, 1.0));
  const Plan b64 = make_plan(geo(2, 256), spec(Model::wan, 1.0, 64));
  EXPECT_EQ(refused_argument(b128, run(DType::f16, 1, 1, 128, Layout::bshd)), "q.dtype");
  EXPECT_EQ(refused_argument(b128, run(DType::bf16, 1, 1, 64, Layout::bshd)), "q.dim");
  EXPECT_EQ(refused_argument(b64, run(DType::bf16, 1, 1, 128, Layout::bshd)), "plan.block_size");
}

}  // namespace
}  // namespace radial::gpu_test
