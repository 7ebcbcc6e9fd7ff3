// Lazy, once-per-device upload of a plan's block lists (see plan_device.hpp).
#include <mutex>
#include <vector>

#include "cuda/check.hpp"
#include "cuda/device_guard.hpp"
#include "cuda/plan_device.hpp"
#include "schedule/row_order.hpp"
#include "schedule/tile_order.hpp"
#include "radial/error.hpp"

namespace radial {
namespace {

// One lock for every plan: taken once per call for a few lookups, and held across the one
// upload a plan needs per device.
std::mutex& upload_mutex() {
  static std::mutex mutex;
  return mutex;
}

// Frees a buffer on its device. Errors are ignored: at process exit the runtime may already be
// gone.
void free_on(int device, void* buffer) {
  int previous = 0;
  const bool have = cudaGetDevice(&previous) == cudaSuccess;
  if (cudaSetDevice(device) == cudaSuccess) cudaFree(buffer);
  if (have) cudaSetDevice(previous);
  cudaGetLastError();
}

}  // namespace

PlanDeviceCache::~PlanDeviceCache() {
  for (const Schedule& schedule : schedules) free_on(schedule.device, schedule.buffer);
  for (const Tile192& order : tile192) free_on(order.device, order.buffer);
  for (const Entry& entry : backward_entries) free_on(entry.device, entry.buffer);
  for (const Entry& entry : entries) free_on(entry.device, entry.buffer);
}

namespace cuda_detail {

namespace {

// FNV-1a over block lists (offsets then indices): tells a copy of a plan whose lists are
// unchanged (which may reuse the upload) from an edited one.
uint64_t digest(const std::vector<int32_t>& offsets, const std::vector<int32_t>& indices) {
  uint64_t h = 1469598103934665603ull;
  for (const std::vector<int32_t>* list : {&offsets, &indices}) {
    for (const int32_t x : *list) h = (h ^ static_cast<uint32_t>(x)) * 1099511628211ull;
    h = (h ^ 0xffu) * 1099511628211ull;  // list boundary
  }
  return h;
}

// The cached entry for `device` made from these lists, or nullptr.
const PlanDeviceCache::Entry* find_entry(const std::vector<PlanDeviceCache::Entry>& entries,
                                         int device, const std::vector<int32_t>& offsets,
                                         const std::vector<int32_t>& indices) {
  uint64_t h = 0;
  bool hashed = false;
  for (const PlanDeviceCache::Entry& entry : entries) {
    if (entry.device != device) continue;
    if (entry.source == indices.data()) return &entry;
    if (!hashed) h = digest(offsets, indices), hashed = true;
    if (entry.digest == h) return &entry;
  }
  return nullptr;
}

// The plan's cache, made on first use (the caller holds the upload mutex).
PlanDeviceCache& plan_cache(const Plan& plan) {
  std::shared_ptr<PlanDeviceCache>& cache = detail::PlanAccess::cache(plan);
  if (!cache) cache = std::make_shared<PlanDeviceCache>();
  return *cache;
}

// Copies `host` into a new device buffer on `device` (the caller holds the upload mutex).
int32_t* upload(const std::vector<int32_t>& host, int device, const char* what) {
  DeviceGuard guard(device);
  int32_t* buffer = nullptr;
  RADIAL_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&buffer), host.size() * sizeof(int32_t)));
  const cudaError_t copied =
      cudaMemcpy(buffer, host.data(), host.size() * sizeof(int32_t), cudaMemcpyHostToDevice);
  if (copied != cudaSuccess) {
    cudaFree(buffer);
    check_cuda(copied, what);
  }
  return buffer;
}

}  // namespace

const int32_t* device_handout_order(const Plan& plan, int device, int64_t batch_heads,
                                    int ctas) {
  const int64_t tail = 2 * static_cast<int64_t>(ctas);
  std::lock_guard<std::mutex> lock(upload_mutex());
  PlanDeviceCache& cache = plan_cache(plan);
  for (const PlanDeviceCache::Schedule& s : cache.schedules) {
    if (s.device == device && s.batch_heads == batch_heads && s.tail == tail) return s.buffer;
  }
  std::vector<int32_t> row_blocks(static_cast<size_t>(plan.block_rows));
  for (int32_t r = 0; r < plan.block_rows; ++r) {
    row_blocks[static_cast<size_t>(r)] = plan.row_offset[r + 1] - plan.row_offset[r];
  }
  const std::vector<int32_t> order =
      schedule::handout_order(row_blocks, schedule::locality_order(plan).order, batch_heads, tail);
  int32_t* buffer = upload(order, device, "cudaMemcpy(tile hand-out order, host to device)");
  cache.schedules.push_back({device, batch_heads, tail, buffer});
  return buffer;
}

const int32_t* device_tile192_order(const Plan& plan, int device) {
  std::lock_guard<std::mutex> lock(upload_mutex());
  PlanDeviceCache& cache = plan_cache(plan);
  for (const PlanDeviceCache::Tile192& t : cache.tile192) {
    if (t.device == device) return t.buffer;
  }
  const std::vector<int32_t> order =
      schedule::tile192_order(schedule::locality_order(plan).order, plan.seq_len);
  int32_t* buffer = upload(order, device, "cudaMemcpy(192-row tile order, host to device)");
  cache.tile192.push_back({device, buffer});
  return buffer;
}

int32_t* device_tile_counter(int device, cudaStream_t stream) {
  struct Counter {
    int device;
    cudaStream_t stream;
    int32_t* counter;
  };
  static std::vector<Counter> counters;  // guarded by the upload mutex
  std::lock_guard<std::mutex> lock(upload_mutex());
  for (const Counter& c : counters) {
    if (c.device == device && c.stream == stream) return c.counter;
  }
  int32_t* counter = upload(std::vector<int32_t>{0}, device, "cudaMemcpy(tile counter)");
  counters.push_back({device, stream, counter});
  return counter;
}

DevicePlan device_plan(const Plan& plan, int device) {
  const size_t n_offsets = plan.row_offset.size(), n_cols = plan.col_index.size(),
               n_rows = static_cast<size_t>(plan.block_rows);
  const auto view = [&](const int32_t* buffer) {
    const int32_t* orders = buffer + n_offsets + n_cols;
    return DevicePlan{buffer, buffer + n_offsets, orders, orders + n_rows, orders + 2 * n_rows};
  };
  std::lock_guard<std::mutex> lock(upload_mutex());
  PlanDeviceCache& cache = plan_cache(plan);
  if (const auto* entry = find_entry(cache.entries, device, plan.row_offset, plan.col_index)) {
    return view(entry->buffer);
  }
  std::vector<int32_t> host;
  host.reserve(n_offsets + n_cols + 3 * n_rows);
  host.insert(host.end(), plan.row_offset.begin(), plan.row_offset.end());
  host.insert(host.end(), plan.col_index.begin(), plan.col_index.end());
  const std::vector<int32_t> order = schedule::heavy_first_order(plan);
  host.insert(host.end(), order.begin(), order.end());
  const schedule::LocalityOrder local = schedule::locality_order(plan);
  host.insert(host.end(), local.order.begin(), local.order.end());
  host.insert(host.end(), local.start.begin(), local.start.end());
  int32_t* buffer = upload(host, device, "cudaMemcpy(plan block lists, host to device)");
  cache.entries.push_back(
      {device, buffer, plan.col_index.data(), digest(plan.row_offset, plan.col_index)});
  return view(buffer);
}

DeviceBackwardPlan device_backward_plan(const Plan& plan, int device) {
  const size_t n_offsets = plan.col_offset.size(), n_rows = plan.row_index.size();
  const auto view = [&](const int32_t* buffer) {
    const int32_t* orders = buffer + n_offsets + n_rows;
    return DeviceBackwardPlan{buffer, buffer + n_offsets, orders, orders + plan.block_cols};
  };
  std::lock_guard<std::mutex> lock(upload_mutex());
  PlanDeviceCache& cache = plan_cache(plan);
  if (const auto* entry =
          find_entry(cache.backward_entries, device, plan.col_offset, plan.row_index)) {
    return view(entry->buffer);
  }
  // The kernels index with these numbers: walked once, before the one upload (the CSR is
  // walked by validate_plan). Plain `if`s: a message built per entry would cost more than the
  // walk.
  for (int32_t c = 0; c < plan.block_cols; ++c) {
    const int32_t begin = plan.col_offset[c], end = plan.col_offset[c + 1];
    if (!(begin <= end && begin >= 0 && static_cast<size_t>(end) <= n_rows)) {
      throw Error("plan.col_offset", "non-decreasing offsets within row_index",
                  "column " + std::to_string(c) + ": " + std::to_string(begin) + ".." +
                      std::to_string(end));
    }
    for (int32_t i = begin; i < end; ++i) {
      const int32_t r = plan.row_index[i];
      if (!(r >= 0 && r < plan.block_rows && (i == begin || r > plan.row_index[i - 1]))) {
        throw Error("plan.row_index",
                    "increasing block rows in 0.." + std::to_string(plan.block_rows - 1) +
                        " per column",
                    std::to_string(r) + " in column " + std::to_string(c));
      }
    }
  }
  std::vector<int32_t> host;
  host.reserve(n_offsets + n_rows + 2 * static_cast<size_t>(plan.block_cols));
  host.insert(host.end(), plan.col_offset.begin(), plan.col_offset.end());
  host.insert(host.end(), plan.row_index.begin(), plan.row_index.end());
  const std::vector<int32_t> order = schedule::heavy_first_columns(plan);
  host.insert(host.end(), order.begin(), order.end());
  const std::vector<int32_t> local = schedule::locality_columns(plan);
  host.insert(host.end(), local.begin(), local.end());
  int32_t* buffer = upload(host, device, "cudaMemcpy(plan CSC block lists, host to device)");
  cache.backward_entries.push_back(
      {device, buffer, plan.row_index.data(), digest(plan.col_offset, plan.row_index)});
  return view(buffer);
}

}  // namespace cuda_detail
}  // namespace radial
