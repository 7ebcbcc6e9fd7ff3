// The FP8 forward's quantisation pass (src/cuda/hopper/fp8_quantize.cu) with the key bias in V
// (Fp8Workspace::bias_in_v, the library's kernel since round 4) against a float64 computation
// on the host from the same bf16 inputs: each key block's (shift, wide) pair, its keys' biases
// in k_bias, and V^T's entries weighted by the keys' factors w and its extra row (the factors).
// Q has large channel means and the keys' spread grows block by block, so that both kinds of
// block occur. Skipped unless the Hopper kernel is built and the device is sm_90.
#include <gtest/gtest.h>

#include <cuda_fp8.h>
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "gpu_harness.hpp"

#ifdef RADIAL_WITH_HOPPER
#include "cuda/hopper/fp8_quantize.hpp"
#include "cuda/hopper/fwd_fp8_layout.hpp"
#endif

namespace radial::gpu_test {
namespace {

#ifdef RADIAL_WITH_HOPPER
double e4m3_value(uint8_t bits) {
  __nv_fp8_e4m3 x;
  x.__x = bits;
  return static_cast<double>(static_cast<float>(x));
}

TEST(Fp8Pass, BiasInVMatchesFloat64) {
  if (!gpu_unavailable_reason().empty()) GTEST_SKIP() << gpu_unavailable_reason();
  cudaDeviceProp prop{};
  ASSERT_EQ(cudaGetDeviceProperties(&prop, 0), cudaSuccess);
  if (prop.major != 9 || prop.minor != 0) GTEST_SKIP() << "device is not sm_90";
  constexpr int D = 128, kBlocks = 8, S = kBlocks * 128 - 50;  // a partial last block
  const int key_limit = S - 30;                                 // text-like masked keys
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  TestTensor q(DType::bf16, Layout::bshd, 1, S, 1, D), k(DType::bf16, Layout::bshd, 1, S, 1, D),
      v(DType::bf16, Layout::bshd, 1, S, 1, D);
  // Q: channel means ~ N(0, 3^2) (the bias mean(Q) . (k - mean(K)) grows with them); K's spread
  // grows with its block (0.05 .. 1.6), so the early blocks are narrow and the late ones wide.
  std::vector<double> mu(D);
  for (double& m : mu) m = 3.0 * normal(rng);
  for (int s = 0; s < S; ++s) {
    const double spread = 0.05 * std::pow(2.0, (s / 128) * 5.0 / (kBlocks - 1));
    for (int d = 0; d < D; ++d) {
      q.host[q.index(0, s, 0, d)] = from_float<bf16_t>(mu[d] + normal(rng)).bits;
      k.host[k.index(0, s, 0, d)] = from_float<bf16_t>(spread * normal(rng)).bits;
      v.host[v.index(0, s, 0, d)] = from_float<bf16_t>(normal(rng)).bits;
    }
  }
  for (TestTensor* t : {&q, &k, &v}) {
    ASSERT_EQ(cudaMemcpy(t->device.get(), t->host.data(), t->host.size() * 2,
                         cudaMemcpyHostToDevice),
              cudaSuccess);
  }
  cuda_detail::FwdParams p;
  p.q = q.device.get(), p.k = k.device.get(), p.v = v.device.get();
  p.q_sb = q.stride_batch, p.q_ss = q.stride_seq, p.q_sh = q.stride_head;
  p.k_sb = k.stride_batch, p.k_ss = k.stride_seq, p.k_sh = k.stride_head;
  p.v_sb = v.stride_batch, p.v_ss = v.stride_seq, p.v_sh = v.stride_head;
  p.heads = 1, p.seq = S, p.key_limit = key_limit, p.block_rows = kBlocks, p.batch_heads = 1;
  p.scale = 1.0f / std::sqrt(static_cast<float>(D));
  p.scale_log2 = p.scale * 1.4426950408889634f;
  const int vt_rows = D + 8;
  DeviceBuffer work(cuda_detail::hopper::fp8_workspace_bytes(p, D, vt_rows));
  cuda_detail::hopper::Fp8Workspace w =
      cuda_detail::hopper::fp8_workspace(work.get(), p, D, vt_rows);
  w.bias_in_v = true;
  cuda_detail::hopper::quantize_fp8(p, DType::bf16, D, w, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const int padded = w.operands.padded_seq;
  std::vector<float> shift(2 * kBlocks), bias(padded), v_scale(D);
  std::vector<uint8_t> vt(static_cast<size_t>(vt_rows) * padded);
  ASSERT_EQ(cudaMemcpy(shift.data(), w.operands.k_block_shift, shift.size() * 4,
                       cudaMemcpyDeviceToHost), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(bias.data(), w.operands.k_bias, bias.size() * 4, cudaMemcpyDeviceToHost),
            cudaSuccess);
  ASSERT_EQ(cudaMemcpy(v_scale.data(), w.operands.v_scale, D * 4, cudaMemcpyDeviceToHost),
            cudaSuccess);
  ASSERT_EQ(cudaMemcpy(vt.data(), w.operands.vt, vt.size(), cudaMemcpyDeviceToHost), cudaSuccess);

  // The float64 biases from the bf16 inputs.
  std::vector<double> mq(D, 0.0), mk(D, 0.0), b(S, 0.0);
  for (int d = 0; d < D; ++d) {
    for (int s = 0; s < S; ++s) mq[d] += q.at(0, s, 0, d) / S;
    for (int s = 0; s < key_limit; ++s) mk[d] += k.at(0, s, 0, d) / key_limit;
  }
  for (int s = 0; s < key_limit; ++s)
    for (int d = 0; d < D; ++d) b[s] += mq[d] * (k.at(0, s, 0, d) - mk[d]);
  int narrow = 0, wide = 0;
  for (int blk = 0; blk < kBlocks; ++blk) {
    SCOPED_TRACE("key block " + std::to_string(blk));
    double hi = -INFINITY, lo = INFINITY;
    for (int s = blk * 128; s < std::min((blk + 1) * 128, key_limit); ++s)
      hi = std::max(hi, b[s]), lo = std::min(lo, b[s]);
    const double span = (hi - lo) * p.scale_log2;
    if (std::abs(span - cuda_detail::hopper::kFp8BiasSpan) < 0.05) continue;  // too close to call
    const bool is_wide = span > cuda_detail::hopper::kFp8BiasSpan;
    (is_wide ? wide : narrow) += 1;
    ASSERT_EQ(shift[2 * blk + 1], is_wide ? 1.f : 0.f) << "span " << span;
    const double tol = 1e-3 * std::max(1.0, std::abs(hi));
    if (!is_wide) EXPECT_NEAR(shift[2 * blk], hi, tol);
    if (is_wide) EXPECT_EQ(shift[2 * blk], 0.f);
    for (int s = blk * 128; s < (blk + 1) * 128; ++s) {
      const bool valid = s < key_limit;
      const double want_w = !valid ? 0.0 : is_wide ? 1.0 : std::exp2((b[s] - hi) * p.scale_log2);
      EXPECT_NEAR(bias[s], valid ? b[s] : 0.0, tol) << "key " << s;
      const int pos = (s & ~15) | cuda_detail::hopper::fp8_vt_position(s & 15);
      // V^T's extra row: w x 2^kWLog2 in e4m3 (3 mantissa bits: within 2^-4 relative, or the
      // subnormal step 2^-9 absolute).
      const double row = e4m3_value(vt[static_cast<size_t>(D) * padded + pos]);
      const double want_row = want_w * std::exp2(cuda_detail::hopper::kWLog2);
      EXPECT_NEAR(row, want_row, want_row / 16 + std::exp2(-9)) << "key " << s;
      for (int d = 0; d < D; d += 17) {
        const double got = e4m3_value(vt[static_cast<size_t>(d) * padded + pos]);
        const double want = valid ? v.at(0, s, 0, d) * want_w / v_scale[d] : 0.0;
        EXPECT_NEAR(got, want, std::abs(want) / 16 + std::exp2(-9)) << "key " << s << ", d " << d;
      }
    }
  }
  EXPECT_GT(narrow, 0) << "no narrow block drawn";
  EXPECT_GT(wide, 0) << "no wide block drawn";
}
#endif

}  // namespace
}  // namespace radial::gpu_test
