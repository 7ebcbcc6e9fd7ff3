// The plan's copy on each GPU: its CSR and the orders in which the kernels visit block rows.
// Uploaded once per device on first use and kept in the plan's private cache (shared by its
// copies, reached only through detail::PlanAccess), so later calls (every layer, every step)
// allocate nothing and never wait for the host.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "plan/plan_access.hpp"
#include "radial/plan.hpp"

namespace radial {

struct PlanDeviceCache {
  struct Entry {
    int device = -1;
    int32_t* buffer = nullptr;  // row_offset, col_index, row_order, local_order, local_start
    // The host lists it was made from (col_index, or row_index for the CSC) and a digest of
    // their contents: copies of a plan share this cache, and a copy edited afterwards must not
    // be served what its original uploaded. Same buffer: the same lists; another buffer (a
    // copy): reused only when the digest matches.
    const int32_t* source = nullptr;
    uint64_t digest = 0;
  };
  // The persistent Hopper kernel's hand-out orders (src/schedule/tile_order.hpp), one per device,
  // batch x heads and tail length.
  struct Schedule {
    int device = -1;
    int64_t batch_heads = 0;
    int64_t tail = 0;
    int32_t* buffer = nullptr;
  };
  // The three-warpgroup FP8 kernel's 192-row tile order (one per device).
  struct Tile192 {
    int device = -1;
    int32_t* buffer = nullptr;
  };
  std::vector<Entry> entries;         // guarded by the upload mutex in plan_upload.cpp
  std::vector<Schedule> schedules;    // likewise
  std::vector<Tile192> tile192;       // likewise
  // The backward's CSC arrays, uploaded on the first backward call on a device: col_offset,
  // row_index, col_order, local_col_order (one buffer per device).
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
  const int32_t* local_col_order = nullptr;  // block_cols: a permutation for L2 locality
};

// The plan's CSC arrays on `device`, uploading them on first use (thread-safe).
DeviceBackwardPlan device_backward_plan(const Plan& plan, int device);

// The hand-out order of batch_heads x the plan's block rows for `ctas` persistent CTAs (the
// last 2 x ctas tiles longest first), built and uploaded on first use (thread-safe).
const int32_t* device_handout_order(const Plan& plan, int device, int64_t batch_heads, int ctas);

// The order of the 192-row tiles of a (batch, head) for the three-warpgroup FP8 kernel, from the
// locality order (schedule::tile192_order), built and uploaded on first use (thread-safe).
const int32_t* device_tile192_order(const Plan& plan, int device);

// A zeroed-per-launch tile counter for persistent launches on (device, stream): one per stream,
// so that launches on one stream, which run in order, share it, and launches on different
// streams never do. Lives as long as the process.
int32_t* device_tile_counter(int device, cudaStream_t stream);

}  // namespace cuda_detail
}  // namespace radial
