// What the forward kernels get from the host: device pointers, strides in elements, the plan's
// device arrays and the softmax scale. Plain data, passed by value to the kernel.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "radial/dtype.hpp"

namespace radial::cuda_detail {

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
  // The persistent Hopper kernel: tiles handed out in tile_order (tile_schedule.hpp) by an
  // atomic counter, zeroed before the launch; nullptr: one CTA per tile.
  int32_t* tile_counter = nullptr;
  const int32_t* tile_order = nullptr;
  int32_t tiles = 0;  // batch_heads x block_rows
  int32_t ctas = 0;   // CTAs of a persistent launch
  float scale = 0.f;       // softmax scale (natural units), for the log-sum-exp
  float scale_log2 = 0.f;  // scale * log2(e): scores go through exp2
};

// Kernel shapes and row orders: which tile configuration runs, visiting block rows in which
// order. `standard` is the one production uses; the others exist so that the benchmark can
// compare them on the same card (bench/gpu/NOTES.md has the measurements).
enum class FwdVariant : int {
  standard = 0,       // 4 warps, 32 query rows each (block 128) or 16 (block 64), Q in shared;
                      // locality row order with rotated block lists (plan_device.hpp)
  eight_warps = 1,    // block 128 only: 8 warps of 16 rows, Q held in registers
  double_buffer = 2,  // block 128 only: standard warps, K and V double buffered (96 KB smem)
  natural_order = 3,  // standard, block rows in natural order, lists unrotated
  locality = 4,       // the same as standard (named for the benchmark)
  prefetch = 5,       // block 128 only: heavy-first order, K/V blocks prefetched into L2 two
                      // blocks ahead
  locality_prefetch = 6,  // block 128 only: standard with the L2 prefetch
  heavy_first = 7,    // standard warps, heavy-first row order, lists unrotated (the standard
                      // until the locality order)
  // The sm_90a kernel of src/cuda/hopper (built with RADIAL_HOPPER=ON/AUTO; bf16/f16, D 64/128,
  // block 128): TMA producer warpgroup, two consumer warpgroups, locality order.
  // attention() picks `hopper` on compute capability 9.0 whenever it covers the call.
  hopper = 8,              // the library's schedule and grid (kDefaultHopperSchedule, one CTA
                           // per tile unless kDefaultHopperPersistent)
  hopper_serial = 9,       // each wgmma product waited for; one CTA per tile
  hopper_overlap = 10,     // softmax of block t during P V of block t-1, Q read from shared
                           // memory by each Q K^T; one CTA per tile
  hopper_pingpong = 11,    // overlap, the consumer warpgroups taking turns; one CTA per tile
  hopper_persistent = 12,  // the library's schedule on persistent CTAs (one per SM) taking
                           // tiles from a counter in a host-made order (tile_schedule.hpp)
  hopper_q_registers = 13,  // overlap with Q held in registers; one CTA per tile
};

// Launches the forward kernel for dtype (bf16 or f16), head dim (64 or 128) and block size
// (64 or 128) on `stream`; throws CudaError if the launch fails.
void launch_fwd(const FwdParams& params, DType dtype, int head_dim, int block_size,
                FwdVariant variant, cudaStream_t stream);

// True for the variants of the Hopper kernel.
bool is_hopper_variant(FwdVariant variant);

// True when FwdVariant::hopper runs persistent CTAs.
bool hopper_default_persistent();

// True when the Hopper kernel is built in and covers this call on `device` (compute
// capability 9.0; bf16/f16, head dim 64/128, block 128).
bool hopper_covers(DType dtype, int head_dim, int block_size, int device);

// One entry per (dtype, head dim), each compiled in its own file.
void launch_fwd_bf16_d64(const FwdParams&, int block_size, FwdVariant, cudaStream_t);
void launch_fwd_bf16_d128(const FwdParams&, int block_size, FwdVariant, cudaStream_t);
void launch_fwd_f16_d64(const FwdParams&, int block_size, FwdVariant, cudaStream_t);
void launch_fwd_f16_d128(const FwdParams&, int block_size, FwdVariant, cudaStream_t);

}  // namespace radial::cuda_detail
