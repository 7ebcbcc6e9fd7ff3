// What every attention kernel does the same way, whatever its tiles and tensor-core
// instructions: find its block row and walk that row's kept key blocks (rotated to start where
// the plan's row order says), mask keys at or past key_limit, update the online softmax, and
// finish each row with its normaliser and log-sum-exp. The portable kernel (fwd_kernel.cuh) and
// the Hopper kernel (hopper/fwd_hopper_kernel.cuh) call these small pieces at the same places;
// the backward kernels will walk the same lists. Scores go through exp2 with the softmax scale
// folded in (scale_log2 = scale * log2(e)).
#pragma once

#include <cmath>
#include <cstdint>

#include "cuda/fwd_params.hpp"
#include "cuda/ptx.cuh"

namespace radial::cuda_detail {

// ---- The block walk -------------------------------------------------------------------------

// The block row that the tile of `rank` within its (batch, head) computes: in the plan's row
// order when the launch has one (locality or heavy-first), else natural.
__device__ __forceinline__ int block_row_of_rank(const FwdParams& p, int rank) {
  return p.row_order != nullptr ? __ldg(p.row_order + rank) : rank;
}

// One block row's kept key blocks: CSR entries begin .. begin + n_blocks, walked from entry
// `first` on, wrapping around (the online softmax does not depend on the order).
struct BlockWalk {
  int begin, n_blocks, first;
};

__device__ __forceinline__ BlockWalk block_walk(const FwdParams& p, int qblock) {
  BlockWalk w;
  w.begin = __ldg(p.row_offset + qblock);
  w.n_blocks = __ldg(p.row_offset + qblock + 1) - w.begin;
  w.first = p.row_start != nullptr ? __ldg(p.row_start + qblock) : 0;
  return w;
}

// Where step i of the walk is in the row's list: first + i, wrapped.
__device__ __forceinline__ int walk_offset(const BlockWalk& w, int i) {
  const int e = w.first + i;
  return e >= w.n_blocks ? e - w.n_blocks : e;
}

// The key block column of step i of the walk.
__device__ __forceinline__ int walk_block(const FwdParams& p, const BlockWalk& w, int i) {
  return __ldg(p.col_index + (w.begin + walk_offset(w, i)));
}

// ---- Masking --------------------------------------------------------------------------------

// True when a tile of `keys` keys from key0 holds keys at or past key_limit (the padded tail,
// unused text), which only the tile that holds key_limit does.
__device__ __forceinline__ bool crosses_key_limit(int key0, int keys, int key_limit) {
  return key0 + keys > key_limit;
}

// The key of entry j (0..3) of n-tile nt in an m16n8 accumulator fragment (mma.sync and wgmma
// alike): columns 8 nt + 2 (lane % 4) + j % 2; entries 2, 3 repeat 0, 1 eight rows down.
__device__ __forceinline__ int fragment_key(int key0, int nt, int j, int lane) {
  return key0 + nt * 8 + (lane & 3) * 2 + (j & 1);
}

// ---- Online softmax -------------------------------------------------------------------------

// A row's maximum over the quad of threads that share it.
__device__ __forceinline__ float quad_max(float m) {
  m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
  return fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
}

// A row's sum over the quad of threads that share it.
__device__ __forceinline__ float quad_sum(float s) {
  s += __shfl_xor_sync(0xffffffffu, s, 1);
  return s + __shfl_xor_sync(0xffffffffu, s, 2);
}

// The exponent offset of a row whose running maximum is now `max` (in score units). A row with
// no visible key yet keeps max -inf; 0 then avoids (-inf) - (-inf).
__device__ __forceinline__ float softmax_base(float max, float scale_log2) {
  return max == -INFINITY ? 0.f : max * scale_log2;
}

// The factor by which what a row accumulated under its previous maximum is rescaled.
__device__ __forceinline__ float softmax_alpha(float old_max, float base, float scale_log2) {
  return fast_exp2(old_max * scale_log2 - base);
}

// One unnormalised probability: exp2(score * scale_log2 - base).
__device__ __forceinline__ float softmax_exp(float score, float scale_log2, float base) {
  return fast_exp2(fmaf(score, scale_log2, -base));
}

// A row's running sum after a block: what it had, rescaled, plus the block's probabilities.
__device__ __forceinline__ float softmax_sum(float sum, float alpha, float added) {
  return sum * alpha + added;
}

// ---- Epilogue -------------------------------------------------------------------------------

// 1 / the row's full sum, or 0 for a row that saw no key (its output is then 0).
__device__ __forceinline__ float row_inverse(float sum) { return sum > 0.f ? 1.f / sum : 0.f; }

// The row's log-sum-exp in natural units (scale * max + log(sum)), -inf for a row with no key.
__device__ __forceinline__ float row_lse(float max, float sum, float scale) {
  return sum > 0.f ? max * scale + logf(sum) : -INFINITY;
}

}  // namespace radial::cuda_detail
