// What the forward kernels get from the host: device pointers, strides in elements, the plan's
// device arrays and the softmax scale. Plain data, passed by value to the kernel.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "api/kernel_choice.hpp"
#include "radial/dtype.hpp"

namespace radial::cuda_detail {

// The FP8 forward's operands, written by the quantisation pass (hopper/fp8_quantize.cu) into a
// workspace: Q and K, each minus its mean over the tokens (smoothed), in e4m3 as [batch, heads,
// padded_seq, head_dim] with one scale per (batch, head, 128-token block); V in e4m3 transposed,
// [batch, heads, head_dim, padded_seq] (keys permuted within each group of 16, the order of the
// P fragment), with one scale per (batch, head, channel). padded_seq = block_rows x 128; rows
// past seq (Q) or key_limit (K, V) are zeros.
struct Fp8Operands {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* vt = nullptr;
  const float* q_scale = nullptr;  // [batch x heads, block_rows]
  const float* k_scale = nullptr;  // [batch x heads, block_rows]
  const float* v_scale = nullptr;  // [batch x heads, head_dim]
  // Per key, mean(Q) . (k - mean(K)) in score units: what Q's smoothing took from the key's
  // scores, added back to them. [batch x heads, padded_seq]
  const float* k_bias = nullptr;
  // Per query row, q . mean(K) in score units: what the smoothing took from every score of the
  // row, added back to its log-sum-exp. [batch x heads, padded_seq]
  const float* lse_shift = nullptr;
  // Fp8Traits::kBiasInV: per key block a pair (shift, wide). Narrow blocks (wide = 0: their
  // biases span at most kFp8BiasSpan in exp2 units): shift is the block's largest key
  // bias (score units), added to all its scores, and k_bias holds each key's
  // exp2((bias - shift) x scale_log2), by which the pass has multiplied its V. Wide blocks
  // (wide = 1): shift 0, k_bias the biases, added score by score. [batch x heads, block_rows, 2]
  const float* k_block_shift = nullptr;
  int32_t padded_seq = 0;
};

struct FwdParams {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* out = nullptr;
  float* lse = nullptr;  // [batch, heads, seq] or nullptr
  // Element strides of batch, seq and head (the head dim is contiguous).
  int64_t q_sb = 0, q_ss = 0, q_sh = 0;
  int64_t k_sb = 0, k_ss = 0, k_sh = 0;
  int64_t v_sb = 0, v_ss = 0, v_sh = 0;
  int64_t o_sb = 0, o_ss = 0, o_sh = 0;
  int32_t heads = 0;
  int32_t seq = 0;        // query and key tokens
  int32_t key_limit = 0;  // keys at index >= key_limit are masked
  int32_t block_rows = 0;
  int64_t batch_heads = 0;
  const int32_t* row_offset = nullptr;
  const int32_t* col_index = nullptr;
  const int32_t* row_order = nullptr;
  const int32_t* row_start = nullptr;  // per block row: first CSR entry to visit (or nullptr: 0)
  // The persistent Hopper kernel: tiles handed out in tile_order (src/schedule/tile_order.hpp) by an
  // atomic counter, zeroed before the launch; nullptr: one CTA per tile.
  int32_t* tile_counter = nullptr;
  // Persistent: the hand-out order. One CTA per tile, the three-warpgroup FP8 kernel: the order
  // of its 192-row tiles in each (batch, head) (schedule::tile192_order); nullptr: natural.
  const int32_t* tile_order = nullptr;
  int32_t tiles = 0;  // batch_heads x block_rows
  int32_t ctas = 0;   // CTAs of a persistent launch
  float scale = 0.f;       // softmax scale (natural units), for the log-sum-exp
  float scale_log2 = 0.f;  // scale * log2(e): scores go through exp2
  Fp8Operands fp8;         // precision fp8 only
};

// The one dispatcher: runs `choice` (src/api/kernel_choice.hpp) for dtype (bf16 or f16), head
// dim (64 or 128) and block size (64 or 128) on a device of compute capability `arch` (major *
// 10 + minor), on `stream`. Throws radial::Error naming the field (choice.family,
// choice.schedule, ...) or the argument when the choice is not built in or does not cover the
// call, CudaError when the launch fails. The caller has filled params for the choice's row
// order and persistence.
void launch_fwd(const FwdParams& params, const KernelChoice& choice, DType dtype, int head_dim,
                int block_size, int arch, cudaStream_t stream);

// The portable kernel, one entry per (dtype, head dim), each compiled in its own file;
// launch_portable (fwd_kernel.cuh) maps the tile and prefetch to a configuration.
void launch_fwd_bf16_d64(const FwdParams&, int block_size, PortableTile, bool l2_prefetch,
                         cudaStream_t);
void launch_fwd_bf16_d128(const FwdParams&, int block_size, PortableTile, bool l2_prefetch,
                          cudaStream_t);
void launch_fwd_f16_d64(const FwdParams&, int block_size, PortableTile, bool l2_prefetch,
                        cudaStream_t);
void launch_fwd_f16_d128(const FwdParams&, int block_size, PortableTile, bool l2_prefetch,
                         cudaStream_t);

}  // namespace radial::cuda_detail
