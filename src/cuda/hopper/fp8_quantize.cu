// The FP8 forward's quantisation pass (fp8_quantize.hpp). Each thread owns 8 consecutive
// channels (one 16-byte load) of a row; D / 8 threads make a row, 256 threads 2048 / D rows.
#include "cuda/hopper/fp8_quantize.hpp"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <cstdint>

#include "cuda/check.hpp"
#include "cuda/hopper/fwd_fp8_layout.hpp"

namespace radial::cuda_detail::hopper {
namespace {

constexpr int kThreads = 256;
// Tokens per CTA of the statistics pass: small enough that a long video makes several waves of
// CTAs (2048 left the last of 1.3 waves mostly idle on Wan's 69 frames, 40 heads).
constexpr int kChunkRows = 512;
constexpr float kE4m3Max = 448.f;

size_t align256(size_t n) { return (n + 255) & ~static_cast<size_t>(255); }

// The means that smooth Q and K come from a fixed sample of the tokens, the first
// kFp8MeanSampleRows of every 128-token block (fp8_quantize.hpp says why any vector is exact):
// the statistics pass then reads V whole but only an eighth of Q and K.
__host__ __device__ __forceinline__ bool mean_sampled(int row) {
  return (row & 127) < kFp8MeanSampleRows;
}
// How many of the tokens 0 .. n - 1 are sampled (at least one when n > 0).
__host__ __device__ __forceinline__ int mean_samples(int n) {
  const int tail = n % 128;
  return n / 128 * kFp8MeanSampleRows + (tail < kFp8MeanSampleRows ? tail : kFp8MeanSampleRows);
}

// Chunks of kChunkRows tokens of the statistics pass (at least one).
int chunk_count(const FwdParams& p) { return std::max((p.seq + kChunkRows - 1) / kChunkRows, 1); }

__device__ __forceinline__ uint4 load16(const void* src) {
  return __ldg(reinterpret_cast<const uint4*>(src));
}

__device__ __forceinline__ void to_float(const __nv_bfloat16*, const uint4& raw, float (&x)[8]) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(h[i]);
    x[2 * i] = f.x, x[2 * i + 1] = f.y;
  }
}

__device__ __forceinline__ void to_float(const __half*, const uint4& raw, float (&x)[8]) {
  const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __half22float2(h[i]);
    x[2 * i] = f.x, x[2 * i + 1] = f.y;
  }
}

__device__ __forceinline__ uint32_t e4m3x4(float a, float b, float c, float d) {
  const uint32_t lo = __nv_cvt_float2_to_fp8x2(make_float2(a, b), __NV_SATFINITE, __NV_E4M3);
  const uint32_t hi = __nv_cvt_float2_to_fp8x2(make_float2(c, d), __NV_SATFINITE, __NV_E4M3);
  return lo | (hi << 16);
}

// Q's and K's sums over the sampled tokens of one chunk (mean_sampled: < seq, < key_limit) and
// V's max |v| per channel over all its valid keys. A row's loads are issued together (rows
// not read count as zeros, which change neither a sum nor a max) so that unrolled rows
// overlap in memory.
template <class E, int D>
__global__ void __launch_bounds__(kThreads) fp8_stats_kernel(const FwdParams p, Fp8Workspace w) {
  constexpr int kG = D / 8, kRows = kThreads / kG;
  __shared__ float s_qsum[kRows][D], s_sum[kRows][D], s_max[kRows][D];
  const int bh = blockIdx.y, b = bh / p.heads, h = bh % p.heads;
  const int g = threadIdx.x % kG, r0 = threadIdx.x / kG;
  const int begin = blockIdx.x * kChunkRows, end = min(begin + kChunkRows, p.seq);
  const E* qb = static_cast<const E*>(p.q) + b * p.q_sb + h * p.q_sh + g * 8;
  const E* kb = static_cast<const E*>(p.k) + b * p.k_sb + h * p.k_sh + g * 8;
  const E* vb = static_cast<const E*>(p.v) + b * p.v_sb + h * p.v_sh + g * 8;
  float qsum[8] = {}, sum[8] = {}, mx[8] = {};
#pragma unroll 4
  for (int row = begin + r0; row < end; row += kRows) {
    const bool key = row < p.key_limit, sampled = mean_sampled(row);
    const bool in_q = sampled && w.smooth_q;  // (no smoothing of Q: its sums stay 0)
    const uint4 zero = make_uint4(0, 0, 0, 0);
    const uint4 rq = in_q ? load16(qb + static_cast<int64_t>(row) * p.q_ss) : zero;
    const uint4 rk = key && sampled ? load16(kb + static_cast<int64_t>(row) * p.k_ss) : zero;
    const uint4 rv = key ? load16(vb + static_cast<int64_t>(row) * p.v_ss) : zero;
    float x[8];
    to_float(qb, rq, x);
#pragma unroll
    for (int c = 0; c < 8; ++c) qsum[c] += x[c];
    to_float(kb, rk, x);
#pragma unroll
    for (int c = 0; c < 8; ++c) sum[c] += x[c];
    to_float(vb, rv, x);
#pragma unroll
    for (int c = 0; c < 8; ++c) mx[c] = fmaxf(mx[c], fabsf(x[c]));
  }
#pragma unroll
  for (int c = 0; c < 8; ++c) {
    s_qsum[r0][g * 8 + c] = qsum[c], s_sum[r0][g * 8 + c] = sum[c], s_max[r0][g * 8 + c] = mx[c];
  }
  __syncthreads();
  if (threadIdx.x < D) {
    float qs = 0.f, s = 0.f, m = 0.f;
    for (int r = 0; r < kRows; ++r) {
      qs += s_qsum[r][threadIdx.x], s += s_sum[r][threadIdx.x];
      m = fmaxf(m, s_max[r][threadIdx.x]);
    }
    const int64_t at = (static_cast<int64_t>(bh) * gridDim.x + blockIdx.x) * D + threadIdx.x;
    w.partial_qsum[at] = qs;
    w.partial_sum[at] = s;
    w.partial_max[at] = m;
  }
}

// Q's and K's means and V's scale per (batch, head, channel), from the chunks in a fixed order.
template <int D>
__global__ void __launch_bounds__(D) fp8_reduce_kernel(const FwdParams p, Fp8Workspace w) {
  const int bh = blockIdx.x, d = threadIdx.x;
  float qs = 0.f, s = 0.f, m = 0.f;
  for (int c = 0; c < w.chunks; ++c) {
    const int64_t at = (static_cast<int64_t>(bh) * w.chunks + c) * D + d;
    qs += w.partial_qsum[at];
    s += w.partial_sum[at];
    m = fmaxf(m, w.partial_max[at]);
  }
  w.q_mean[bh * D + d] = qs / static_cast<float>(mean_samples(p.seq));
  w.k_mean[bh * D + d] =
      p.key_limit > 0 ? s / static_cast<float>(mean_samples(p.key_limit)) : 0.f;
  const_cast<float*>(w.operands.v_scale)[bh * D + d] = m > 0.f ? m / kE4m3Max : 1.f;
}

// max(a, b), NaN if either is NaN (fmaxf would drop it): a NaN in a block makes its scale NaN,
// and so every value of the block, now that a token outside the means' sample never reaches
// a mean.
__device__ __forceinline__ float max_nan(float a, float b) {
  float r;
  asm("max.NaN.f32 %0, %1, %2;\n" : "=f"(r) : "f"(a), "f"(b));
  return r;
}

// The largest m of the CTA (all threads get it; `none` if no thread has a larger one; NaN if
// any is NaN). The leading barrier lets it follow another reduction, whose scratch may still
// be being read.
__device__ __forceinline__ float cta_max(float m, float* scratch, float none) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) m = max_nan(m, __shfl_xor_sync(0xffffffffu, m, o));
  __syncthreads();
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = m;
  __syncthreads();
  m = none;
#pragma unroll
  for (int i = 0; i < kThreads / 32; ++i) m = max_nan(m, scratch[i]);
  return m;
}

// A key's bias from Q's smoothing, mean(Q) . (k - mean(K)), over the kG threads of its row
// (x: the thread's 8 channels of k - mean(K)); with Q's row and mean(K), the row's lse_shift.
template <int kG>
__device__ __forceinline__ float row_dot(const float (&x)[8], const float (&mean)[8]) {
  float dot = 0.f;
#pragma unroll
  for (int c = 0; c < 8; ++c) dot = fmaf(x[c], mean[c], dot);
#pragma unroll
  for (int o = kG / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
  return dot;
}

// Workspace::bias_in_v: the block's (shift, wide) from its keys' biases (rows at `limit` and
// past it left out). A narrow block (biases spanning at most kFp8BiasSpan in exp2 units) gets
// shift = its largest bias, a wide one (0, 1): its biases go score by score. With `grid` the
// shift is raised so that shift x scale_log2 is a whole number (Fp8Workspace::shift_grid), the
// span counted from it.
template <int kPass>
__device__ __forceinline__ float2 block_shift(const float (&dot)[kPass], const bool (&valid)[kPass],
                                              float scale_log2, float* scratch, bool grid) {
  float hi = -INFINITY, neg_lo = -INFINITY;
#pragma unroll
  for (int i = 0; i < kPass; ++i) {
    if (valid[i]) hi = max_nan(hi, dot[i]), neg_lo = max_nan(neg_lo, -dot[i]);
  }
  hi = cta_max(hi, scratch, -INFINITY);
  neg_lo = cta_max(neg_lo, scratch, -INFINITY);
  const bool none = hi == -INFINITY;
  if (grid && !none) hi = ceilf(hi * scale_log2) / scale_log2;  // (NaN stays NaN)
  const bool wide = !none && (hi + neg_lo) * scale_log2 > kFp8BiasSpan;
  return make_float2(none || wide ? 0.f : hi, wide ? 1.f : 0.f);
}

// Which rows of a 128-token block a thread owns. Each thread holds 8 channels of kPass rows
// (kPass = 1024 / D), four at a time the keys of one 16-key group whose V^T positions
// (fp8_vt_position, and fp8_vt_position_ss alike) are four consecutive bytes: keys 2m, 2m + 1,
// 2m + 8 and 2m + 9 of the group, byte i & 3 of the word. The thread's V^T is then whole 32-bit
// words, one per channel and group, and the warps' loads stay whole 128- or 256-byte rows.
template <int D>
struct BlockRows {
  static constexpr int kG = D / 8, kRows = kThreads / kG, kPass = 128 / kRows, kWords = kPass / 4;
  static_assert(kPass % 4 == 0, "a thread's rows make whole V^T words");
  // The 16-key group of the thread's word `word` and the key pair m of its rows.
  __device__ static int group(int r0, int word) { return (r0 >> 2) * kWords + word; }
  __device__ static int pair(int r0) { return r0 & 3; }
  __device__ static int row(int r0, int i) {  // offsets 0, 1, 8, 9 in the group
    return 16 * group(r0, i >> 2) + 2 * pair(r0) + (i & 1) + 8 * ((i >> 1) & 1);
  }
};

// V^T's staging in shared memory: a row a channel, 32 words of four keys each, the words of a
// row XOR-swizzled by its channel so that a warp's 32 word stores (16 or 8 channels, 2 or 4
// words) fall in 32 banks (unswizzled they would all fall in one or two).
__device__ __forceinline__ int vt_swizzle(int channel) {
  return 4 * ((channel >> 3) & 7) | 2 * ((channel >> 6) & 1);
}

// A 16-byte copy from global to shared memory that holds no registers while in flight (zeros
// if !valid; src is then not read).
__device__ __forceinline__ void copy16(uint4* dst, const void* src, bool valid) {
  const unsigned at = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(at), "l"(src),
               "r"(valid ? 16 : 0));
}

// The quantisation kernel's dynamic shared memory: the thread-owned copies of the block's Q or
// K rows, then of its V rows (thread t's row i at [i][t], so that a warp reads 512 contiguous
// bytes), kPass x 256 x 16 bytes each. V^T's staging reuses the first half.
template <int D>
constexpr size_t quantize_smem_bytes() {
  return 2 * BlockRows<D>::kPass * kThreads * sizeof(uint4);
}

// Q (blockIdx.z 0), or K and V (1), of one 128-token block of one (batch, head). The loads go
// to shared memory by cp.async: every byte of the block in flight at once without holding
// registers, so that three CTAs fit a multiprocessor.
template <class E, int D>
__global__ void __launch_bounds__(kThreads, 3) fp8_quantize_kernel(const FwdParams p,
                                                                Fp8Workspace w) {
  using Rows = BlockRows<D>;
  constexpr int kG = Rows::kG, kPass = Rows::kPass;
  __shared__ float scratch[kThreads / 32];
  __shared__ alignas(16) uint32_t w_row[32];
  extern __shared__ uint4 stage[];  // quantize_smem_bytes<D>()
  uint4* own = stage + threadIdx.x;                      // [i * kThreads]: Q's or K's row i
  uint4* vown = stage + kPass * kThreads + threadIdx.x;  // [i * kThreads]: V's row i
  auto vt = reinterpret_cast<uint32_t(*)[32]>(stage);    // [D][32], once K's rows are used
  const int blk = blockIdx.x, bh = blockIdx.y, is_kv = blockIdx.z;
  const int b = bh / p.heads, h = bh % p.heads;
  const int g = threadIdx.x % kG, r0 = threadIdx.x / kG;
  const int padded = w.operands.padded_seq;
  const int limit = is_kv ? p.key_limit : p.seq;
  const E* src = is_kv ? static_cast<const E*>(p.k) + b * p.k_sb + h * p.k_sh
                       : static_cast<const E*>(p.q) + b * p.q_sb + h * p.q_sh;
  const int64_t ss = is_kv ? p.k_ss : p.q_ss;
  const E* vsrc = static_cast<const E*>(p.v) + b * p.v_sb + h * p.v_sh + g * 8;
  src += g * 8;

  // All loads first (V's too, a second group), rows past the limit as zeros.
  bool valid[kPass];
#pragma unroll
  for (int i = 0; i < kPass; ++i) {
    const int row = blk * 128 + Rows::row(r0, i);
    valid[i] = row < limit;
    copy16(own + i * kThreads, valid[i] ? src + static_cast<int64_t>(row) * ss : src, valid[i]);
  }
  asm volatile("cp.async.commit_group;\n" ::);
  if (is_kv) {
#pragma unroll
    for (int i = 0; i < kPass; ++i) {
      const int row = blk * 128 + Rows::row(r0, i);
      copy16(vown + i * kThreads, valid[i] ? vsrc + static_cast<int64_t>(row) * p.v_ss : vsrc,
             valid[i]);
    }
  }
  asm volatile("cp.async.commit_group;\n" ::);
  // Q: mean(K) for lse_shift, mean(Q) subtracted. K: mean(K) subtracted, mean(Q) for k_bias.
  float k_mean[8], q_mean[8];
#pragma unroll
  for (int c = 0; c < 8; ++c) {
    k_mean[c] = w.k_mean[bh * D + g * 8 + c];
    q_mean[c] = w.q_mean[bh * D + g * 8 + c];
  }

  // Q: the row's q . mean(K) for the log-sum-exp, then smoothed. K: smoothed, then the key's
  // mean(Q) . (k - mean(K)) for its scores. Rows past the limit stay zeros (their dots too).
  // The smoothed rows are made again from the shared copies for the stores below (fewer live
  // registers).
  asm volatile("cp.async.wait_group 1;\n" ::: "memory");
  const auto smoothed = [&](int i, float (&x)[8]) {
    to_float(src, own[i * kThreads], x);
    if (valid[i]) {
#pragma unroll
      for (int c = 0; c < 8; ++c) x[c] -= is_kv ? k_mean[c] : q_mean[c];
    }
  };
  float dot[kPass], m = 0.f;
#pragma unroll
  for (int i = 0; i < kPass; ++i) {
    float x[8];
    if (is_kv) {
      smoothed(i, x);
      dot[i] = row_dot<kG>(x, q_mean);
    } else {
      to_float(src, own[i * kThreads], x);
      dot[i] = row_dot<kG>(x, k_mean);
      smoothed(i, x);
    }
#pragma unroll
    for (int c = 0; c < 8; ++c) m = max_nan(m, fabsf(x[c]));
  }
  // bias_in_v: the block's (shift, wide) to k_block_shift; the kernel reads the plain biases
  // of wide blocks only, and V's keys are weighted by exp2((bias - shift) x scale_log2) <= 1 in
  // a narrow block, 1 in a wide one, 0 past the limit.
  float kw[kPass];
#pragma unroll
  for (int i = 0; i < kPass; ++i) kw[i] = 1.f;
  if (is_kv && w.bias_in_v) {
    const float2 shift = block_shift<kPass>(dot, valid, p.scale_log2, scratch, w.shift_grid);
    if (threadIdx.x == 0)
      reinterpret_cast<float2*>(const_cast<float*>(w.operands.k_block_shift))
          [bh * (padded / 128) + blk] = shift;
#pragma unroll
    for (int i = 0; i < kPass; ++i)
      kw[i] = !valid[i] ? 0.f : shift.y != 0.f ? 1.f : exp2f((dot[i] - shift.x) * p.scale_log2);
  }
  float* dots = const_cast<float*>(is_kv ? w.operands.k_bias : w.operands.lse_shift);
  if (g == 0) {
#pragma unroll
    for (int i = 0; i < kPass; ++i) {
      const int key = Rows::row(r0, i);
      const int at = is_kv && w.k_bias_vt_order ? (key & ~15) | fp8_vt_position(key & 15) : key;
      dots[static_cast<int64_t>(bh) * padded + blk * 128 + at] = dot[i];
    }
  }
  m = cta_max(m, scratch, 0.f);
  const float scale = m == 0.f ? 1.f : m / w.qk_top;  // (NaN stays NaN)
  const float inv = 1.f / scale;
  const float* scales = is_kv ? w.operands.k_scale : w.operands.q_scale;
  if (threadIdx.x == 0) const_cast<float*>(scales)[bh * (padded / 128) + blk] = scale;
  uint8_t* dst = static_cast<uint8_t*>(const_cast<void*>(is_kv ? w.operands.k : w.operands.q)) +
                 static_cast<int64_t>(bh) * padded * D + g * 8;
#pragma unroll
  for (int i = 0; i < kPass; ++i) {
    const int row = blk * 128 + Rows::row(r0, i);
    float x[8];
    smoothed(i, x);
    uint2 out;
    out.x = e4m3x4(x[0] * inv, x[1] * inv, x[2] * inv, x[3] * inv);
    out.y = e4m3x4(x[4] * inv, x[5] * inv, x[6] * inv, x[7] * inv);
    *reinterpret_cast<uint2*>(dst + static_cast<int64_t>(row) * D) = out;
  }
  if (!is_kv) return;

  // V: per-channel scales (max |v|: the weights are at most 1), transposed into V^T with its
  // keys in fp8_vt_position order in each 16 (or fp8_vt_position_ss order over the block).
  float vinv[8];
#pragma unroll
  for (int c = 0; c < 8; ++c) vinv[c] = 1.f / w.operands.v_scale[bh * D + g * 8 + c];
  asm volatile("cp.async.wait_group 0;\n" ::: "memory");
  __syncthreads();  // every thread's K rows read: V^T's staging may overwrite them
#pragma unroll
  for (int word = 0; word < Rows::kWords; ++word) {
    float x[4][8];
#pragma unroll
    for (int j = 0; j < 4; ++j) to_float(vsrc, vown[(4 * word + j) * kThreads], x[j]);
    const int group = Rows::group(r0, word), pair = Rows::pair(r0);
    const int col = w.vt_ss_order ? 8 * pair + group : 4 * group + pair;
    const float* k4 = &kw[4 * word];
#pragma unroll
    for (int c = 0; c < 8; ++c) {
      const int channel = g * 8 + c;
      const float s = vinv[c];
      vt[channel][col ^ vt_swizzle(channel)] =
          e4m3x4(x[0][c] * s * k4[0], x[1][c] * s * k4[1], x[2][c] * s * k4[2],
                 x[3][c] * s * k4[3]);
    }
    constexpr float kW = 1 << static_cast<int>(kWLog2);
    if (g == 0) w_row[col] = e4m3x4(k4[0] * kW, k4[1] * kW, k4[2] * kW, k4[3] * kW);
  }
  __syncthreads();
  uint8_t* vdst = static_cast<uint8_t*>(const_cast<void*>(w.operands.vt)) +
                  static_cast<int64_t>(bh) * w.vt_rows * padded + blk * 128;
  for (int c = threadIdx.x; c < D * 8; c += kThreads) {
    const int d = c >> 3, part = c & 7, swz = vt_swizzle(d);
    uint4 v = *reinterpret_cast<const uint4*>(&vt[d][4 * (part ^ (swz >> 2))]);
    if (swz & 2) v = make_uint4(v.z, v.w, v.x, v.y);
    *reinterpret_cast<uint4*>(vdst + static_cast<int64_t>(d) * padded + part * 16) = v;
  }
  // The rows past the head dim (Fp8Workspace::vt_rows): ones (e4m3 0x38), or with bias_in_v
  // the weights x 2^kWLog2, then zeros.
  for (int c = threadIdx.x; c < (w.vt_rows - D) * 8; c += kThreads) {
    const int d = D + (c >> 3), part = c & 7;
    const uint32_t word = d == D ? 0x38383838u : 0u;
    *reinterpret_cast<uint4*>(vdst + static_cast<int64_t>(d) * padded + part * 16) =
        d == D && w.bias_in_v ? *reinterpret_cast<const uint4*>(&w_row[4 * part])
                              : make_uint4(word, word, word, word);
  }
}

template <class E, int D>
void launch_all(const FwdParams& p, const Fp8Workspace& w, cudaStream_t stream) {
  const int block_rows = w.operands.padded_seq / 128;
  const unsigned bh = static_cast<unsigned>(p.batch_heads);
  fp8_stats_kernel<E, D><<<dim3(static_cast<unsigned>(w.chunks), bh), kThreads, 0, stream>>>(
      p, w);
  check_cuda(cudaGetLastError(), "fp8_stats_kernel<<<...>>>");
  fp8_reduce_kernel<D><<<bh, D, 0, stream>>>(p, w);
  check_cuda(cudaGetLastError(), "fp8_reduce_kernel<<<...>>>");
  constexpr size_t smem = quantize_smem_bytes<D>();
  check_cuda(cudaFuncSetAttribute(fp8_quantize_kernel<E, D>,
                                  cudaFuncAttributeMaxDynamicSharedMemorySize, smem),
             "cudaFuncSetAttribute(fp8_quantize_kernel)");
  fp8_quantize_kernel<E, D>
      <<<dim3(static_cast<unsigned>(block_rows), bh, 2), kThreads, smem, stream>>>(p, w);
  check_cuda(cudaGetLastError(), "fp8_quantize_kernel<<<...>>>");
}

}  // namespace

size_t fp8_workspace_bytes(const FwdParams& p, int head_dim, int vt_rows) {
  const size_t bh = static_cast<size_t>(p.batch_heads);
  const size_t padded = static_cast<size_t>(p.block_rows) * 128;
  const size_t chunks = chunk_count(p);
  const size_t rows = static_cast<size_t>(vt_rows > 0 ? vt_rows : head_dim);
  return 2 * align256(bh * padded * head_dim) + align256(bh * padded * rows) +  // q, k, vt
         4 * align256(bh * p.block_rows * sizeof(float)) +  // q_scale, k_scale, k_block_shift x 2
         3 * align256(bh * head_dim * sizeof(float)) +         // v_scale, k_mean, q_mean
         2 * align256(bh * padded * sizeof(float)) +           // lse_shift, k_bias
         3 * align256(bh * chunks * head_dim * sizeof(float));  // partial sums and maxima
}

Fp8Workspace fp8_workspace(void* base, const FwdParams& p, int head_dim, int vt_rows) {
  const size_t bh = static_cast<size_t>(p.batch_heads);
  const size_t padded = static_cast<size_t>(p.block_rows) * 128;
  Fp8Workspace w;
  w.chunks = chunk_count(p);
  char* at = static_cast<char*>(base);
  const auto take = [&](size_t bytes) {
    char* here = at;
    at += align256(bytes);
    return here;
  };
  w.operands.q = take(bh * padded * head_dim);
  w.operands.k = take(bh * padded * head_dim);
  w.vt_rows = vt_rows > 0 ? vt_rows : head_dim;
  w.operands.vt = take(bh * padded * w.vt_rows);
  w.operands.q_scale = reinterpret_cast<float*>(take(bh * p.block_rows * sizeof(float)));
  w.operands.k_scale = reinterpret_cast<float*>(take(bh * p.block_rows * sizeof(float)));
  w.operands.k_block_shift =
      reinterpret_cast<float*>(take(2 * bh * p.block_rows * sizeof(float)));
  w.operands.v_scale = reinterpret_cast<float*>(take(bh * head_dim * sizeof(float)));
  w.k_mean = reinterpret_cast<float*>(take(bh * head_dim * sizeof(float)));
  w.q_mean = reinterpret_cast<float*>(take(bh * head_dim * sizeof(float)));
  w.operands.lse_shift = reinterpret_cast<float*>(take(bh * padded * sizeof(float)));
  w.operands.k_bias = reinterpret_cast<float*>(take(bh * padded * sizeof(float)));
  w.partial_qsum = reinterpret_cast<float*>(take(bh * w.chunks * head_dim * sizeof(float)));
  w.partial_sum = reinterpret_cast<float*>(take(bh * w.chunks * head_dim * sizeof(float)));
  w.partial_max = reinterpret_cast<float*>(take(bh * w.chunks * head_dim * sizeof(float)));
  w.operands.padded_seq = static_cast<int32_t>(padded);
  return w;
}

void quantize_fp8(const FwdParams& p, DType dtype, int head_dim, const Fp8Workspace& w,
                  cudaStream_t stream) {
  const bool bf16 = dtype == DType::bf16;
  if (head_dim == 128) {
    bf16 ? launch_all<__nv_bfloat16, 128>(p, w, stream) : launch_all<__half, 128>(p, w, stream);
  } else {
    bf16 ? launch_all<__nv_bfloat16, 64>(p, w, stream) : launch_all<__half, 64>(p, w, stream);
  }
}

}  // namespace radial::cuda_detail::hopper
