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
constexpr int kChunkRows = 2048;  // keys per CTA of the statistics pass
constexpr float kE4m3Max = 448.f;

size_t align256(size_t n) { return (n + 255) & ~static_cast<size_t>(255); }

// Chunks of kChunkRows tokens of the statistics pass (at least one).
int chunk_count(const FwdParams& p) { return std::max((p.seq + kChunkRows - 1) / kChunkRows, 1); }

__device__ __forceinline__ void load8(const __nv_bfloat16* src, float (&x)[8]) {
  const uint4 raw = __ldg(reinterpret_cast<const uint4*>(src));
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(h[i]);
    x[2 * i] = f.x, x[2 * i + 1] = f.y;
  }
}

__device__ __forceinline__ void load8(const __half* src, float (&x)[8]) {
  const uint4 raw = __ldg(reinterpret_cast<const uint4*>(src));
  const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __half22float2(h[i]);
    x[2 * i] = f.x, x[2 * i + 1] = f.y;
  }
}

__device__ __forceinline__ uint8_t e4m3(float x) {
  return __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3);
}

__device__ __forceinline__ uint32_t e4m3x4(float a, float b, float c, float d) {
  const uint32_t lo = __nv_cvt_float2_to_fp8x2(make_float2(a, b), __NV_SATFINITE, __NV_E4M3);
  const uint32_t hi = __nv_cvt_float2_to_fp8x2(make_float2(c, d), __NV_SATFINITE, __NV_E4M3);
  return lo | (hi << 16);
}

// Q's sums over one chunk of query rows (< seq), K's sums and V's max |v| per channel over its
// valid keys (< key_limit).
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
  for (int row = begin + r0; row < end; row += kRows) {
    float x[8];
    load8(qb + static_cast<int64_t>(row) * p.q_ss, x);
#pragma unroll
    for (int c = 0; c < 8; ++c) qsum[c] += x[c];
    if (row >= p.key_limit) continue;
    load8(kb + static_cast<int64_t>(row) * p.k_ss, x);
#pragma unroll
    for (int c = 0; c < 8; ++c) sum[c] += x[c];
    load8(vb + static_cast<int64_t>(row) * p.v_ss, x);
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

// K's mean and V's scale per (batch, head, channel), from the chunks in a fixed order.
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
  w.q_mean[bh * D + d] = qs / p.seq;
  w.k_mean[bh * D + d] = p.key_limit > 0 ? s / p.key_limit : 0.f;
  const_cast<float*>(w.operands.v_scale)[bh * D + d] = m > 0.f ? m / kE4m3Max : 1.f;
}

// The largest m of the CTA (all threads get it; `none` if no thread has a larger one). The
// leading barrier lets it follow another reduction, whose scratch may still be being read.
__device__ __forceinline__ float cta_max(float m, float* scratch, float none) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
  __syncthreads();
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = m;
  __syncthreads();
  m = none;
#pragma unroll
  for (int i = 0; i < kThreads / 32; ++i) m = fmaxf(m, scratch[i]);
  return m;
}

// A key's bias from Q's smoothing, mean(Q) . (k - mean(K)), over the kG threads of its row
// (x: the thread's 8 channels of k - mean(K)). The K and the V blocks compute it alike.
template <int kG>
__device__ __forceinline__ float key_bias(const float (&x)[8], const float (&q_mean)[8]) {
  float dot = 0.f;
#pragma unroll
  for (int c = 0; c < 8; ++c) dot = fmaf(x[c], q_mean[c], dot);
#pragma unroll
  for (int o = kG / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
  return dot;
}

// Workspace::bias_in_v: the block's (shift, wide) from its keys' biases (rows at `limit` and
// past it left out). A narrow block (biases spanning at most kFp8BiasSpan in exp2 units) gets
// shift = its largest bias, a wide one (0, 1): its biases go score by score. The K and the V
// blocks compute it alike.
template <int kPass>
__device__ __forceinline__ float2 block_shift(const float (&dot)[kPass], int first_row,
                                              int rows_step, int limit, float scale_log2,
                                              float* scratch) {
  float hi = -INFINITY, neg_lo = -INFINITY;
#pragma unroll
  for (int i = 0; i < kPass; ++i) {
    if (first_row + i * rows_step < limit) hi = fmaxf(hi, dot[i]), neg_lo = fmaxf(neg_lo, -dot[i]);
  }
  hi = cta_max(hi, scratch, -INFINITY);
  neg_lo = cta_max(neg_lo, scratch, -INFINITY);
  const bool none = hi == -INFINITY;
  const bool wide = !none && (hi + neg_lo) * scale_log2 > kFp8BiasSpan;
  return make_float2(none || wide ? 0.f : hi, wide ? 1.f : 0.f);
}

// One 128-token block of Q (blockIdx.z 0), K (1) or V (2) of one (batch, head).
template <class E, int D>
__global__ void __launch_bounds__(kThreads) fp8_quantize_kernel(const FwdParams p,
                                                                Fp8Workspace w) {
  constexpr int kG = D / 8, kRows = kThreads / kG, kPass = 128 / kRows;
  __shared__ float scratch[kThreads / 32];
  __shared__ alignas(16) uint8_t vt[D][128 + 16];
  const int blk = blockIdx.x, bh = blockIdx.y, which = blockIdx.z;
  const int b = bh / p.heads, h = bh % p.heads;
  const int g = threadIdx.x % kG, r0 = threadIdx.x / kG;
  const int padded = w.operands.padded_seq;
  const int limit = which == 0 ? p.seq : p.key_limit;
  const E* src;
  int64_t ss;
  if (which == 0) {
    src = static_cast<const E*>(p.q) + b * p.q_sb + h * p.q_sh, ss = p.q_ss;
  } else if (which == 1) {
    src = static_cast<const E*>(p.k) + b * p.k_sb + h * p.k_sh, ss = p.k_ss;
  } else {
    src = static_cast<const E*>(p.v) + b * p.v_sb + h * p.v_sh, ss = p.v_ss;
  }
  src += g * 8;
  // K's mean (Q: for lse_shift; K: subtracted) and Q's (Q: subtracted; K: for k_bias).
  // (V with bias_in_v: both, for its keys' weights.)
  const bool means = which != 2 || w.bias_in_v;
  float k_mean[8], q_mean[8];
#pragma unroll
  for (int c = 0; c < 8; ++c) {
    k_mean[c] = means ? w.k_mean[bh * D + g * 8 + c] : 0.f;
    q_mean[c] = means ? w.q_mean[bh * D + g * 8 + c] : 0.f;
  }

  float x[kPass][8];
#pragma unroll
  for (int i = 0; i < kPass; ++i) {
    const int row = blk * 128 + r0 + i * kRows;
    if (row < limit) {
      load8(src + static_cast<int64_t>(row) * ss, x[i]);
    } else {
#pragma unroll
      for (int c = 0; c < 8; ++c) x[i][c] = 0.f;
    }
  }

  if (which == 2) {  // V: per-channel scales, transposed, keys in fp8_vt_position order
    // bias_in_v: each key's V times its weight (from its K row, as the K block computes it).
    // The channel scales stay max |v|: w <= 1.
    float kw[kPass];
    __shared__ alignas(16) uint8_t w_row[128];
    if (w.bias_in_v) {
      const E* kb = static_cast<const E*>(p.k) + b * p.k_sb + h * p.k_sh + g * 8;
      float dot[kPass];
#pragma unroll
      for (int i = 0; i < kPass; ++i) {
        const int row = blk * 128 + r0 + i * kRows;
        float kx[8] = {};
        if (row < limit) {
          load8(kb + static_cast<int64_t>(row) * p.k_ss, kx);
#pragma unroll
          for (int c = 0; c < 8; ++c) kx[c] -= k_mean[c];
        }
        dot[i] = key_bias<kG>(kx, q_mean);
      }
      // Each key's V factor: exp2((bias - shift) x scale_log2) <= 1 in a narrow block, 1 in a
      // wide one, 0 past the limit.
      const float2 shift = block_shift<kPass>(dot, blk * 128 + r0, kRows, limit, p.scale_log2,
                                              scratch);
#pragma unroll
      for (int i = 0; i < kPass; ++i) {
        const bool valid = blk * 128 + r0 + i * kRows < limit;
        kw[i] = !valid ? 0.f : shift.y != 0.f ? 1.f : exp2f((dot[i] - shift.x) * p.scale_log2);
      }
    } else {
#pragma unroll
      for (int i = 0; i < kPass; ++i) kw[i] = 1.f;
    }
    float inv[8];
#pragma unroll
    for (int c = 0; c < 8; ++c) inv[c] = 1.f / w.operands.v_scale[bh * D + g * 8 + c];
#pragma unroll
    for (int i = 0; i < kPass; ++i) {
      const int key = r0 + i * kRows;
      const int pos =
          w.vt_ss_order ? fp8_vt_position_ss(key) : (key & ~15) | fp8_vt_position(key & 15);
#pragma unroll
      for (int c = 0; c < 8; ++c) vt[g * 8 + c][pos] = e4m3(x[i][c] * inv[c] * kw[i]);
      if (g == 0) w_row[pos] = e4m3(kw[i] * (1 << static_cast<int>(kWLog2)));
    }
    __syncthreads();
    uint8_t* dst = static_cast<uint8_t*>(const_cast<void*>(w.operands.vt)) +
                   static_cast<int64_t>(bh) * w.vt_rows * padded + blk * 128;
    for (int c = threadIdx.x; c < D * 8; c += kThreads) {
      const int d = c >> 3, part = c & 7;
      *reinterpret_cast<uint4*>(dst + static_cast<int64_t>(d) * padded + part * 16) =
          *reinterpret_cast<const uint4*>(&vt[d][part * 16]);
    }
    // The rows past the head dim (Fp8Workspace::vt_rows): ones (e4m3 0x38), or with bias_in_v
    // the weights x 2^kWLog2, then zeros.
    for (int c = threadIdx.x; c < (w.vt_rows - D) * 8; c += kThreads) {
      const int d = D + (c >> 3), part = c & 7;
      const uint32_t word = d == D ? 0x38383838u : 0u;
      *reinterpret_cast<uint4*>(dst + static_cast<int64_t>(d) * padded + part * 16) =
          d == D && w.bias_in_v ? *reinterpret_cast<const uint4*>(&w_row[part * 16])
                                : make_uint4(word, word, word, word);
    }
    return;
  }

  // Q: the row's q . mean(K) for the log-sum-exp, then smoothed. K: smoothed, then the key's
  // mean(Q) . (k - mean(K)) for its scores. Rows past the limit stay zeros (their dots too).
  // (bias_in_v: k_block_shift gets the block's pair; the kernel reads the biases of wide
  // blocks only.)
  float* dots = const_cast<float*>(which == 0 ? w.operands.lse_shift : w.operands.k_bias);
  float dot[kPass];
#pragma unroll
  for (int i = 0; i < kPass; ++i) {
    const bool valid = blk * 128 + r0 + i * kRows < limit;
    if (which == 1 && valid) {
#pragma unroll
      for (int c = 0; c < 8; ++c) x[i][c] -= k_mean[c];
    }
    dot[i] = key_bias<kG>(x[i], which == 0 ? k_mean : q_mean);
    if (which == 0 && valid) {
#pragma unroll
      for (int c = 0; c < 8; ++c) x[i][c] -= q_mean[c];
    }
  }
  if (which == 1 && w.bias_in_v) {
    const float2 shift = block_shift<kPass>(dot, blk * 128 + r0, kRows, limit, p.scale_log2,
                                            scratch);
    if (threadIdx.x == 0)
      reinterpret_cast<float2*>(const_cast<float*>(w.operands.k_block_shift))
          [bh * (padded / 128) + blk] = shift;
  }
#pragma unroll
  for (int i = 0; i < kPass; ++i) {
    const int key = r0 + i * kRows;
    const int at = which == 1 && w.k_bias_vt_order ? (key & ~15) | fp8_vt_position(key & 15) : key;
    if (g == 0) dots[static_cast<int64_t>(bh) * padded + blk * 128 + at] = dot[i];
  }
  float m = 0.f;
#pragma unroll
  for (int i = 0; i < kPass; ++i)
#pragma unroll
    for (int c = 0; c < 8; ++c) m = fmaxf(m, fabsf(x[i][c]));
  m = cta_max(m, scratch, 0.f);
  const float scale = m > 0.f ? m / w.qk_top : 1.f;
  const float inv = 1.f / scale;
  const float* scales = which == 0 ? w.operands.q_scale : w.operands.k_scale;
  if (threadIdx.x == 0) const_cast<float*>(scales)[bh * (padded / 128) + blk] = scale;
  uint8_t* dst = static_cast<uint8_t*>(const_cast<void*>(which == 0 ? w.operands.q
                                                                    : w.operands.k)) +
                 static_cast<int64_t>(bh) * padded * D + g * 8;
#pragma unroll
  for (int i = 0; i < kPass; ++i) {
    const int row = blk * 128 + r0 + i * kRows;
    uint2 out;
    out.x = e4m3x4(x[i][0] * inv, x[i][1] * inv, x[i][2] * inv, x[i][3] * inv);
    out.y = e4m3x4(x[i][4] * inv, x[i][5] * inv, x[i][6] * inv, x[i][7] * inv);
    *reinterpret_cast<uint2*>(dst + static_cast<int64_t>(row) * D) = out;
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
  fp8_quantize_kernel<E, D>
      <<<dim3(static_cast<unsigned>(block_rows), bh, 3), kThreads, 0, stream>>>(p, w);
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
