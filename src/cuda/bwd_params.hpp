// What the backward kernels get from the host: device pointers, strides in elements, the plan's
// device arrays (CSR and CSC), the per-call float32 workspace and the softmax scale. Plain data,
// passed by value to every kernel of the backward (bwd_kernel.cuh).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "api/kernel_choice.hpp"
#include "radial/dtype.hpp"

namespace radial::cuda_detail {

struct BwdParams {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  const void* out = nullptr;    // the forward's output
  const void* d_out = nullptr;  // its gradient
  const float* lse = nullptr;   // the forward's [batch, heads, seq] (natural log, scaled scores)
  void* d_q = nullptr;
  void* d_k = nullptr;
  void* d_v = nullptr;
  // Element strides of batch, seq and head (the head dim is contiguous).
  int64_t q_sb = 0, q_ss = 0, q_sh = 0;
  int64_t k_sb = 0, k_ss = 0, k_sh = 0;
  int64_t v_sb = 0, v_ss = 0, v_sh = 0;
  int64_t o_sb = 0, o_ss = 0, o_sh = 0;
  int64_t do_sb = 0, do_ss = 0, do_sh = 0;
  int64_t dq_sb = 0, dq_ss = 0, dq_sh = 0;
  int64_t dk_sb = 0, dk_ss = 0, dk_sh = 0;
  int64_t dv_sb = 0, dv_ss = 0, dv_sh = 0;
  int32_t heads = 0;
  int32_t seq = 0;        // query and key tokens
  int32_t seq_pad = 0;    // block_rows x block size: rows of the workspace per (batch, head)
  int32_t key_limit = 0;  // keys at index >= key_limit are masked
  int32_t block_rows = 0;  // = block columns
  int64_t batch_heads = 0;
  // The plan: CSR (query block rows -> kept key blocks) for the deterministic dQ pass, CSC (key
  // blocks -> query block rows that keep them) for the dK/dV pass, and the orders in which the
  // two passes visit their rows (heaviest first) and columns (choice.row_order; null: natural).
  const int32_t* row_offset = nullptr;
  const int32_t* col_index = nullptr;
  const int32_t* row_order = nullptr;
  const int32_t* col_offset = nullptr;
  const int32_t* row_index = nullptr;
  const int32_t* col_order = nullptr;
  // Workspace (float32, bwd_workspace_floats): per (batch x head, padded row) the forward's lse
  // in base 2 (+inf for rows past seq, so that their probabilities are 0) and
  // delta = sum_d dO * O; the dQ accumulator [batch x heads, seq_pad, head dim] when dQ goes
  // by atomics (nullptr in deterministic mode).
  float* lse2 = nullptr;
  float* delta = nullptr;
  float* dq_accum = nullptr;
  // lse2 and delta in the Hopper kernel's order: within each 64-row tile, row r at
  // hopper_row_slot(r) (set by launch_bwd_block when the Hopper main kernel runs).
  bool hopper_rows = false;
  float scale = 0.f;       // softmax scale (natural units)
  float scale_log2 = 0.f;  // scale * log2(e): probabilities go through exp2
};

// Where the Hopper backward's consumer thread wants row r (0..63) of a query tile's lse2 and
// delta: a thread of lane % 4 = q reads rows 8 nt + 2 q + {0, 1} for nt = 0..7; they lie at
// 16 q + 4 ((nt / 2) ^ (q / 2)) + 2 (nt % 2) + {0, 1}, so that two n-tiles are one 16-byte load
// and the four q of a warp's load fall in different banks.
constexpr int hopper_row_slot(int r) {
  const int nt = r / 8, q = (r % 8) / 2, j = r % 2;
  return 16 * q + 4 * ((nt / 2) ^ (q / 2)) + 2 * (nt % 2) + j;
}
constexpr bool hopper_row_slots_permute() {
  bool seen[64] = {};
  for (int r = 0; r < 64; ++r) {
    const int slot = hopper_row_slot(r);
    if (slot < 0 || slot >= 64 || seen[slot]) return false;
    seen[slot] = true;
  }
  return true;
}
static_assert(hopper_row_slots_permute(), "hopper_row_slot permutes a tile's 64 rows");

// The order of dQ's float32 accumulator of a (batch x head): row-major [seq_pad, head dim]
// (the portable kernels'), or the Hopper kernel's fragment order (hopper_dq_offset).
enum class DQAccumOrder { rows, hopper_fragments };

// Where the Hopper backward's fragment order puts dQ's entry (row r, column c) within a
// (batch x head): 16-row x 64-column tiles of 1024 floats, row tile by row tile (the column
// tiles of a row tile together); in each, slot k * 32 + l (four floats) holds what lane l of
// the consumer warp that owns the tile has in its accumulator entries 4 k .. 4 k + 3: rows
// l / 4 and l / 4 + 8, columns 8 k + 2 (l % 4) + {0, 1}. So a thread's 32 entries are eight
// 16-byte stores, and a warp's tile is one 4096-byte bulk reduce.
constexpr int64_t hopper_dq_offset(int64_t r, int c, int head_dim) {
  const int64_t tile = r / 16 * (head_dim / 64) + c / 64;
  const int rr = static_cast<int>(r % 16), cc = c % 64;
  const int lane = (rr % 8) * 4 + (cc % 8) / 2, k = cc / 8, e = (rr / 8) * 2 + cc % 2;
  return tile * 1024 + (k * 32 + lane) * 4 + e;
}
constexpr bool hopper_dq_offsets_permute() {
  bool seen[2048] = {};  // two row tiles of head dim 64, one of head dim 128
  for (const int d : {64, 128}) {
    for (int i = 0; i < 2048; ++i) seen[i] = false;
    for (int r = 0; r < 2048 / d; ++r) {
      for (int c = 0; c < d; ++c) {
        const int64_t at = hopper_dq_offset(r, c, d);
        if (at < 0 || at >= 2048 || seen[at]) return false;
        seen[at] = true;
      }
    }
  }
  return true;
}
static_assert(hopper_dq_offsets_permute(), "hopper_dq_offset permutes a row tile's entries");

// Floats of workspace one backward call needs (lse2 and delta, plus the dQ accumulator unless
// deterministic); the caller allocates them and sets lse2 / delta / dq_accum with
// bwd_set_workspace.
int64_t bwd_workspace_floats(int64_t batch_heads, int64_t seq_pad, int head_dim,
                             bool deterministic);
void bwd_set_workspace(BwdParams& params, float* workspace, int head_dim, bool deterministic);

// Dynamic shared memory per CTA of the largest kernel the backward launches (the entry point
// checks it against the device's limit: head dim 128 with block 128 needs more than the 99 KB of
// sm86/sm89 cards).
int bwd_smem_bytes(int head_dim, int block_size, bool deterministic);

// A main kernel that replaces the portable dK/dV kernel (atomic dQ mode only); returns the order
// in which it left the dQ accumulator (for the conversion).
using BwdMainKernel = DQAccumOrder (*)(const BwdParams&, cudaStream_t);

// Launches the whole backward for dtype (bf16 or f16), head dim (64 or 128) and block size (64
// or 128) on `stream`: the preprocess (delta, base-2 lse, zeroed dQ accumulator), the dK/dV
// kernel over the plan's CSC columns (adding dQ by float32 atomics unless deterministic), then
// either the dQ conversion to the output dtype or, deterministic, the dQ kernel over the CSR
// rows (no atomics: bit-identical gradients run to run). Throws CudaError if a launch fails.
// The choice (direction=backward) names the main kernel and the dQ mode; one that is not built
// or does not cover the call is refused with an Error naming the field. arch: the device's
// compute capability (major * 10 + minor).
void launch_bwd(const BwdParams& params, const KernelChoice& choice, DType dtype, int head_dim,
                int block_size, int arch, cudaStream_t stream);

// One entry per (dtype, head dim), each compiled in its own file. `main`, when not null, runs
// instead of the portable dK/dV kernel (between the preprocess and the dQ conversion).
void launch_bwd_bf16_d64(const BwdParams&, int block_size, bool deterministic, BwdMainKernel main,
                         cudaStream_t);
void launch_bwd_bf16_d128(const BwdParams&, int block_size, bool deterministic,
                          BwdMainKernel main, cudaStream_t);
void launch_bwd_f16_d64(const BwdParams&, int block_size, bool deterministic, BwdMainKernel main,
                        cudaStream_t);
void launch_bwd_f16_d128(const BwdParams&, int block_size, bool deterministic, BwdMainKernel main,
                         cudaStream_t);

}  // namespace radial::cuda_detail
