// The plan's copy on each GPU: its CSR and the orders in which the kernels visit block rows.
// Uploaded once per device on first use and kept in plan.device_cache, so later calls (every
// layer, every step) allocate nothing and never wait for the host.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "radial/plan.hpp"

namespace radial {

struct PlanDeviceCache {
  struct Entry {
    int device = -1;
    int32_t* buffer = nullptr;  // row_offset, col_index, row_order, local_order, local_start
  };
  // The persistent Hopper kernel's hand-out orders (tile_schedule.hpp), one per device,
  // batch x heads and tail length.
  struct Schedule {
    int device = -1;
    int64_t batch_heads = 0;
    int64_t tail = 0;
    int32_t* buffer = nullptr;
  };
  std::vector<Entry> entries;         // guarded by the upload mutex in plan_upload.cpp
  std::vector<Schedule> schedules;    // likewise
  // The backward's CSC arrays, uploaded on the first backward call on a device: col_offset,
  // row_index, col_order (one buffer per device).
  std::vector<Entry> backward_entries;  // likewise

  PlanDeviceCache() = default;
  PlanDeviceCache(const PlanDeviceCache&) = delete;
  PlanDeviceCache& operator=(const PlanDeviceCache&) = delete;
  ~PlanDeviceCache();
};

namespace cuda_detail {

struct DevicePlan {
  const int32_t* row_offset = nullptr;  // block_rows + 1
  const int32_t* col_index = nullptr;   // kept blocks
  const int32_t* row_order = nullptr;   // block_rows: a permutation, heavy rows first
  const int32_t* local_order = nullptr;  // block_rows: a permutation for L2 locality
  const int32_t* local_start = nullptr;  // block_rows: where each row starts in its block list
};

// The plan's arrays on `device`, uploading them on first use (thread-safe). The caller has
// validated the plan.
DevicePlan device_plan(const Plan& plan, int device);

// What the backward needs besides DevicePlan: the CSC (per key block, the query block rows that
// keep it) and the order in which the dK/dV kernel visits key blocks.
struct DeviceBackwardPlan {
  const int32_t* col_offset = nullptr;  // block_cols + 1
  const int32_t* row_index = nullptr;   // kept blocks
  const int32_t* col_order = nullptr;   // block_cols: a permutation, heavy columns first
};

// The plan's CSC arrays on `device`, uploading them on first use (thread-safe).
DeviceBackwardPlan device_backward_plan(const Plan& plan, int device);

// Key block columns ordered by how many query blocks keep them, heaviest first (the same coarse
// log buckets as heavy_first_order): a column the whole video keeps (Wan's first-frame sink, the
// text keys) walks every block row, so it must start early or the launch ends waiting for it.
std::vector<int32_t> heavy_first_columns(const Plan& plan);

// The hand-out order of batch_heads x the plan's block rows for `ctas` persistent CTAs (the
// last 2 x ctas tiles longest first), built and uploaded on first use (thread-safe).
const int32_t* device_handout_order(const Plan& plan, int device, int64_t batch_heads, int ctas);

// A zeroed-per-launch tile counter for persistent launches on (device, stream): one per stream,
// so that launches on one stream, which run in order, share it, and launches on different
// streams never do. Lives as long as the process.
int32_t* device_tile_counter(int device, cudaStream_t stream);

// Block rows ordered by kept-block count, heaviest first, so that rows with many blocks (the
// dense tail and text rows, rows that see many frames) start early and the launch does not end
// waiting for one of them. Counts are compared on a coarse log scale (steps of 2^(1/4)) and
// ties keep their natural order, so that rows running side by side stay neighbours and share
// key blocks in L2.
std::vector<int32_t> heavy_first_order(const Plan& plan);

// The standard order (locality order): block rows, and for each row a rotation of its block
// list, chosen so that the CTAs resident at one time read the same key blocks at about the same
// time. On long videos a head's K and V far exceed L2; this order cut HBM traffic by a fifth on
// HunyuanVideo 509 frames, which on a power-capped H100 buys clock speed (bench/gpu/NOTES.md).
// Video rows go in chunks of spatial positions (1024 tokens of a frame): all frames of one
// chunk, frame by frame, then the next chunk, so that the far-frame bands of the rows in flight
// cover the same spatial window of every key frame. Each video row starts its list at frame
// f - 1 (its dense neighbourhood first), wrapping around. Text rows (dense, the heaviest) come
// first, unrotated. Dense plans and single frames: heavy-first, unrotated.
struct LocalityOrder {
  std::vector<int32_t> order;  // a permutation of the block rows
  std::vector<int32_t> start;  // per block row: index into its CSR row where the walk begins
};
LocalityOrder locality_order(const Plan& plan);

}  // namespace cuda_detail
}  // namespace radial
