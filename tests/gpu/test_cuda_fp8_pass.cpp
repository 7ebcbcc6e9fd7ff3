// The FP8 forward's quantisation pass (src/cuda/hopper/fp8_quantize.cu) with the key bias in V
// (Fp8Workspace::bias_in_v, the library's kernel since round 4) against a float64 computation
// on the host from the same bf16 inputs: each key block's (shift, wide) pair, its keys' biases
// in k_bias, and V^T's entries weighted by the keys' factors w and its extra row (the factors).
// Q has large channel means and the keys' spread grows block by block, so that both kinds of
// block occur. Fp8PassWhole checks every output of the pass (Q and K in e4m3 with their block
// scales, lse_shift, k_bias, V^T with its channel scales and extra rows, the key blocks'
// shifts) on the settings each kernel variant asks for. Skipped unless the Hopper kernel is
// built and the device is sm_90.
#include <gtest/gtest.h>

#include <cuda_fp8.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
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

// The pass's smoothing mean of channel d (fp8_quantize.hpp): over the tokens below n that are
// among the first kFp8MeanSampleRows of their 128-token block.
double sampled_mean(const TestTensor& x, int b, int h, int d, int n) {
  double sum = 0.0;
  int count = 0;
  for (int s = 0; s < n; ++s) {
    if (s % 128 < cuda_detail::hopper::kFp8MeanSampleRows) sum += x.at(b, s, h, d), ++count;
  }
  return count > 0 ? sum / count : 0.0;
}

// Uploads q, k and v (filled on the host) and describes them to the pass, keys past key_limit
// masked, the softmax scale 1 / sqrt(head dim).
void upload_params(TestTensor& q, TestTensor& k, TestTensor& v, int key_limit,
                   cuda_detail::FwdParams& p) {
  for (TestTensor* t : {&q, &k, &v}) {
    ASSERT_EQ(cudaMemcpy(t->device.get(), t->host.data(), t->host.size() * 2,
                         cudaMemcpyHostToDevice),
              cudaSuccess);
  }
  p.q = q.device.get(), p.k = k.device.get(), p.v = v.device.get();
  p.q_sb = q.stride_batch, p.q_ss = q.stride_seq, p.q_sh = q.stride_head;
  p.k_sb = k.stride_batch, p.k_ss = k.stride_seq, p.k_sh = k.stride_head;
  p.v_sb = v.stride_batch, p.v_ss = v.stride_seq, p.v_sh = v.stride_head;
  p.heads = static_cast<int32_t>(q.heads), p.seq = static_cast<int32_t>(q.seq);
  p.key_limit = key_limit, p.block_rows = static_cast<int32_t>((q.seq + 127) / 128);
  p.batch_heads = q.batch * q.heads;
  p.scale = 1.0f / std::sqrt(static_cast<float>(q.dim));
  p.scale_log2 = p.scale * 1.4426950408889634f;
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
  cuda_detail::FwdParams p;
  ASSERT_NO_FATAL_FAILURE(upload_params(q, k, v, key_limit, p));
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
    mq[d] = sampled_mean(q, 0, 0, d, S);
    mk[d] = sampled_mean(k, 0, 0, d, key_limit);
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
// The settings of the pass that the kernel variants use (fp8_forward.cpp) and the shapes that
// its indexing must get right: several statistics chunks (512 tokens each), several heads and
// batches in both layouts, a partial last block, masked keys, head dim 64 and 128, f16.
struct PassCase {
  const char* name;
  DType dtype;
  Layout layout;
  int batch, heads, dim, seq, key_limit;
  bool bias_in_v, vt_ss_order, k_bias_vt_order;
  int extra_rows;  // V^T's rows past the head dim
  float qk_top;
  bool shift_grid = false;  // (Fp8Workspace::shift_grid: the pair-step variant's)
};

void PrintTo(const PassCase& c, std::ostream* os) { *os << c.name; }

class Fp8PassWhole : public ::testing::TestWithParam<PassCase> {};

// Counts mismatches, keeping the first few for the failure message.
struct Mismatches {
  int64_t count = 0;
  std::string first;
  void check(bool ok, const std::string& what) {
    if (ok) return;
    if (count++ < 5) first += what + "\n";
  }
};

std::string at_text(int bh, int s, int d, double got, double want) {
  return "bh " + std::to_string(bh) + " token " + std::to_string(s) + " d " + std::to_string(d) +
         ": got " + std::to_string(got) + ", want " + std::to_string(want);
}

TEST_P(Fp8PassWhole, MatchesFloat64) {
  if (!gpu_unavailable_reason().empty()) GTEST_SKIP() << gpu_unavailable_reason();
  cudaDeviceProp prop{};
  ASSERT_EQ(cudaGetDeviceProperties(&prop, 0), cudaSuccess);
  if (prop.major != 9 || prop.minor != 0) GTEST_SKIP() << "device is not sm_90";
  namespace hopper = cuda_detail::hopper;
  const PassCase& c = GetParam();
  const int D = c.dim, S = c.seq, BH = c.batch * c.heads, blocks = (S + 127) / 128;
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  TestTensor q(c.dtype, c.layout, c.batch, S, c.heads, D),
      k(c.dtype, c.layout, c.batch, S, c.heads, D), v(c.dtype, c.layout, c.batch, S, c.heads, D);
  const auto bits = [&](double x) {
    return c.dtype == DType::bf16 ? from_float<bf16_t>(static_cast<float>(x)).bits
                                  : from_float<f16_t>(static_cast<float>(x)).bits;
  };
  // DiT-like: Q and K with channel means per head, K's spread growing block by block (narrow
  // and wide key blocks), V with some channels four times larger (different channel scales).
  for (int b = 0; b < c.batch; ++b)
    for (int h = 0; h < c.heads; ++h) {
      std::vector<double> mu_q(D), mu_k(D);
      for (int d = 0; d < D; ++d) mu_q[d] = 3.0 * normal(rng), mu_k[d] = 2.0 * normal(rng);
      for (int s = 0; s < S; ++s) {
        const double spread = 0.05 * std::pow(2.0, (s / 128) * 5.0 / std::max(blocks - 1, 1));
        for (int d = 0; d < D; ++d) {
          q.host[q.index(b, s, h, d)] = bits(mu_q[d] + normal(rng));
          k.host[k.index(b, s, h, d)] = bits(mu_k[d] + spread * normal(rng));
          v.host[v.index(b, s, h, d)] = bits((d % 9 == 0 ? 4.0 : 1.0) * normal(rng));
        }
      }
    }
  cuda_detail::FwdParams p;
  ASSERT_NO_FATAL_FAILURE(upload_params(q, k, v, c.key_limit, p));
  const int vt_rows = D + c.extra_rows;
  DeviceBuffer work(hopper::fp8_workspace_bytes(p, D, vt_rows));
  ASSERT_EQ(cudaMemset(work.get(), 0xff, work.bytes()), cudaSuccess);  // NaN in e4m3 and fp32
  hopper::Fp8Workspace w = hopper::fp8_workspace(work.get(), p, D, vt_rows);
  w.bias_in_v = c.bias_in_v, w.vt_ss_order = c.vt_ss_order;
  w.k_bias_vt_order = c.k_bias_vt_order, w.qk_top = c.qk_top, w.shift_grid = c.shift_grid;
  hopper::quantize_fp8(p, c.dtype, D, w, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  const int padded = w.operands.padded_seq;
  const auto fetch = [](auto& host, const void* device) {
    ASSERT_EQ(cudaMemcpy(host.data(), device, host.size() * sizeof(host[0]),
                         cudaMemcpyDeviceToHost),
              cudaSuccess);
  };
  std::vector<uint8_t> q8(static_cast<size_t>(BH) * padded * D), k8(q8.size()),
      vt(static_cast<size_t>(BH) * vt_rows * padded);
  std::vector<float> q_scale(static_cast<size_t>(BH) * blocks), k_scale(q_scale.size()),
      shift(2 * q_scale.size()), v_scale(static_cast<size_t>(BH) * D),
      lse_shift(static_cast<size_t>(BH) * padded), k_bias(lse_shift.size());
  fetch(q8, w.operands.q), fetch(k8, w.operands.k), fetch(vt, w.operands.vt);
  fetch(q_scale, w.operands.q_scale), fetch(k_scale, w.operands.k_scale);
  fetch(shift, w.operands.k_block_shift), fetch(v_scale, w.operands.v_scale);
  fetch(lse_shift, w.operands.lse_shift), fetch(k_bias, w.operands.k_bias);

  // e4m3 against the exact value in e4m3 units: within half a step (1/16 relative) or the
  // subnormal step 2^-9; the scales and dots to float32 accuracy (relative to the magnitudes of
  // their terms, the float32 means included).
  const auto e4m3_close = [](double got, double want) {
    return std::abs(got - want) <= std::abs(want) / 16 * 1.001 + std::exp2(-9);
  };
  const auto close = [](double got, double want, double magnitude) {
    return std::abs(got - want) <= 1e-5 * magnitude;
  };
  Mismatches bad;
  int narrow = 0, wide = 0;
  for (int b = 0; b < c.batch; ++b)
    for (int h = 0; h < c.heads; ++h) {
      const int bh = b * c.heads + h;
      std::vector<double> mq(D, 0.0), mk(D, 0.0), vmax(D, 0.0);
      for (int d = 0; d < D; ++d) {
        mq[d] = sampled_mean(q, b, h, d, S);
        mk[d] = sampled_mean(k, b, h, d, c.key_limit);
        for (int s = 0; s < c.key_limit; ++s)
          vmax[d] = std::max(vmax[d], std::abs(static_cast<double>(v.at(b, s, h, d))));
        const double want = vmax[d] > 0 ? vmax[d] / 448 : 1.0;
        bad.check(close(v_scale[bh * D + d], want, want), "v_scale " + at_text(bh, 0, d,
                                                                 v_scale[bh * D + d], want));
      }
      for (int blk = 0; blk < blocks; ++blk) {
        // Q: smoothed rows, their block scale and e4m3 values, q . mean(K) per row.
        double top = 0.0;
        for (int s = blk * 128; s < std::min(S, (blk + 1) * 128); ++s)
          for (int d = 0; d < D; ++d) top = std::max(top, std::abs(q.at(b, s, h, d) - mq[d]));
        const double qs = top > 0 ? top / c.qk_top : 1.0;
        const float got_qs = q_scale[bh * blocks + blk];
        bad.check(close(got_qs, qs, qs), "q_scale " + at_text(bh, blk * 128, 0, got_qs, qs));
        for (int s = blk * 128; s < (blk + 1) * 128; ++s) {
          double dot = 0.0, magnitude = 0.0;
          for (int d = 0; d < D; ++d) {
            const double qd = s < S ? q.at(b, s, h, d) : 0.0, x = s < S ? qd - mq[d] : 0.0;
            dot += qd * mk[d], magnitude += std::abs(qd * mk[d]);
            const double got = e4m3_value(q8[(static_cast<size_t>(bh) * padded + s) * D + d]);
            bad.check(e4m3_close(got, x / got_qs), "q " + at_text(bh, s, d, got, x / got_qs));
          }
          const double got = lse_shift[static_cast<size_t>(bh) * padded + s];
          bad.check(close(got, dot, magnitude), "lse_shift " + at_text(bh, s, 0, got, dot));
        }
        // K: smoothed rows, block scale, e4m3 values and each key's bias mean(Q) . (k - mean(K)).
        top = 0.0;
        std::vector<double> bias(128, 0.0), magnitude(128, 0.0);
        for (int s = blk * 128; s < std::min(c.key_limit, (blk + 1) * 128); ++s)
          for (int d = 0; d < D; ++d) {
            const double x = k.at(b, s, h, d) - mk[d];
            top = std::max(top, std::abs(x));
            bias[s - blk * 128] += mq[d] * x;
            magnitude[s - blk * 128] +=
                std::abs(mq[d]) * (std::abs(k.at(b, s, h, d)) + std::abs(mk[d]));
          }
        const double ks = top > 0 ? top / c.qk_top : 1.0;
        const float got_ks = k_scale[bh * blocks + blk];
        bad.check(close(got_ks, ks, ks), "k_scale " + at_text(bh, blk * 128, 0, got_ks, ks));
        for (int s = blk * 128; s < (blk + 1) * 128; ++s) {
          for (int d = 0; d < D; ++d) {
            const double x = s < c.key_limit ? k.at(b, s, h, d) - mk[d] : 0.0;
            const double got = e4m3_value(k8[(static_cast<size_t>(bh) * padded + s) * D + d]);
            bad.check(e4m3_close(got, x / got_ks), "k " + at_text(bh, s, d, got, x / got_ks));
          }
          const int at = c.k_bias_vt_order ? (s & ~15) | hopper::fp8_vt_position(s & 15) : s;
          const double got = k_bias[static_cast<size_t>(bh) * padded + at];
          bad.check(close(got, bias[s - blk * 128], magnitude[s - blk * 128]),
                    "k_bias " + at_text(bh, s, 0, got, bias[s - blk * 128]));
        }
        // The block's (shift, wide) and its keys' weights in V (1 without bias_in_v).
        std::vector<double> weight(128, 0.0);
        double hi = -INFINITY, lo = INFINITY;
        for (int s = blk * 128; s < std::min(c.key_limit, (blk + 1) * 128); ++s)
          hi = std::max(hi, bias[s - blk * 128]), lo = std::min(lo, bias[s - blk * 128]);
        if (c.shift_grid && hi > -INFINITY) {  // raised to the next whole number of exp2 units
          const double x = hi * p.scale_log2;
          if (std::abs(x - std::round(x)) < 1e-3) continue;  // (too close to call in float32)
          hi = std::ceil(x) / p.scale_log2;
        }
        const double span = (hi - lo) * p.scale_log2;
        const bool is_wide = span > hopper::kFp8BiasSpan;
        if (c.bias_in_v && std::abs(span - hopper::kFp8BiasSpan) < 0.05) continue;  // too close
        if (c.bias_in_v && hi > -INFINITY) {
          (is_wide ? wide : narrow) += 1;
          const float got_hi = shift[2 * (bh * blocks + blk)];
          const float got_wide = shift[2 * (bh * blocks + blk) + 1];
          bad.check(got_wide == (is_wide ? 1.f : 0.f), "wide flag of block " + std::to_string(blk));
          const double want_hi = is_wide ? 0.0 : hi;
          bad.check(std::abs(got_hi - want_hi) <= 1e-4 * std::max(1.0, std::abs(hi)),
                    "shift " + at_text(bh, blk * 128, 0, got_hi, want_hi));
          if (c.shift_grid) {  // (what the kernel takes as whole: within float32's rounding)
            const float x = got_hi * static_cast<float>(p.scale_log2);
            bad.check(std::abs(x - std::rint(x)) <= 1e-5f * std::max(1.f, std::abs(x)),
                      "shift off the grid " + at_text(bh, blk * 128, 0, x, std::rint(x)));
          }
        }
        for (int s = blk * 128; s < (blk + 1) * 128; ++s) {
          const double bias_s = bias[s - blk * 128];
          weight[s - blk * 128] = s >= c.key_limit ? 0.0
                                  : !c.bias_in_v || is_wide
                                      ? 1.0
                                      : std::exp2((bias_s - hi) * p.scale_log2);
        }
        // V^T: every channel of every key at its position, then the extra rows.
        for (int s = blk * 128; s < (blk + 1) * 128; ++s) {
          const int pos = c.vt_ss_order ? blk * 128 + hopper::fp8_vt_position_ss(s & 127)
                                        : (s & ~15) | hopper::fp8_vt_position(s & 15);
          const double ws = weight[s - blk * 128];
          for (int d = 0; d < vt_rows; ++d) {
            double want;
            if (d < D) {
              want = s < c.key_limit ? v.at(b, s, h, d) * ws / v_scale[bh * D + d] : 0.0;
            } else {
              want = d > D ? 0.0 : c.bias_in_v ? ws * std::exp2(hopper::kWLog2) : 1.0;
            }
            const double got =
                e4m3_value(vt[(static_cast<size_t>(bh) * vt_rows + d) * padded + pos]);
            bad.check(e4m3_close(got, want), "vt " + at_text(bh, s, d, got, want));
          }
        }
      }
    }
  EXPECT_EQ(bad.count, 0) << bad.first;
  if (c.bias_in_v && blocks >= 4) {  // the keys' spread ramps from narrow to wide over the blocks
    EXPECT_GT(narrow, 0) << "no narrow block drawn";
    EXPECT_GT(wide, 0) << "no wide block drawn";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, Fp8PassWhole,
    ::testing::Values(
        // The library's head-dim-128 kernel (S with an f16 accumulator: a narrower Q/K top).
        PassCase{"library_d128", DType::bf16, Layout::bshd, 2, 3, 128, 9 * 128 - 50, 9 * 128 - 80,
                 true, false, false, 8, cuda_detail::hopper::kFp8SF16Top},
        PassCase{"library_d64_bhsd_f16", DType::f16, Layout::bhsd, 1, 2, 64, 1500, 1500, true,
                 false, false, 8, 448.f},
        PassCase{"no_bias_in_v_vt_order", DType::bf16, Layout::bhsd, 1, 2, 128, 700, 650, false,
                 false, true, 0, 448.f},
        PassCase{"ss_order_ones_row", DType::bf16, Layout::bshd, 1, 1, 128, 600, 600, false, true,
                 false, 8, 448.f},
        PassCase{"one_partial_block_d64", DType::bf16, Layout::bshd, 2, 1, 64, 100, 90, true,
                 false, false, 8, 448.f},
        // The pair-step comparison variant's (round 16): the shifts on the whole exp2 grid.
        PassCase{"shift_grid_d128", DType::bf16, Layout::bshd, 1, 3, 128, 9 * 128 - 50,
                 9 * 128 - 80, true, false, false, 8, cuda_detail::hopper::kFp8SF16Top, true}),
    [](const ::testing::TestParamInfo<PassCase>& info) { return std::string(info.param.name); });
#endif


}  // namespace
}  // namespace radial::gpu_test
