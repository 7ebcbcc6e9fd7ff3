// The plan's copy on each GPU: its CSR and the order in which the kernels visit block rows.
// Uploaded once per device on first use and kept in plan.device_cache, so later calls (every
// layer, every step) allocate nothing and never wait for the host.
#pragma once

#include <cstdint>
#include <vector>

#include "radial/plan.hpp"

namespace radial {

struct PlanDeviceCache {
  struct Entry {
    int device = -1;
    int32_t* buffer = nullptr;  // row_offset, then col_index, then row_order
  };
  std::vector<Entry> entries;  // guarded by the upload mutex in plan_upload.cpp

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
};

// The plan's arrays on `device`, uploading them on first use (thread-safe). The caller has
// validated the plan.
DevicePlan device_plan(const Plan& plan, int device);

// Block rows ordered by kept-block count, heaviest first, so that rows with many blocks (the
// dense tail and text rows, rows that see many frames) start early and the launch does not end
// waiting for one of them. Counts are compared on a coarse log scale (steps of 2^(1/4)) and
// ties keep their natural order, so that rows running side by side stay neighbours and share
// key blocks in L2.
std::vector<int32_t> heavy_first_order(const Plan& plan);

}  // namespace cuda_detail
}  // namespace radial
