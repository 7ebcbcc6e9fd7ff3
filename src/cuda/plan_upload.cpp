// Lazy, once-per-device upload of a plan's block lists (see plan_device.hpp).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <mutex>

#include "cuda/check.hpp"
#include "cuda/plan_device.hpp"
#include "cuda/tile_schedule.hpp"
#include "radial/error.hpp"

namespace radial {
namespace {

// One lock for every plan: taken once per call for a few lookups, and held across the one
// upload a plan needs per device.
std::mutex& upload_mutex() {
  static std::mutex mutex;
  return mutex;
}

// Restores the caller's current device.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    RADIAL_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) RADIAL_CUDA_CHECK(cudaSetDevice(device));
  }
  ~DeviceGuard() {
    int now = previous_;
    if (cudaGetDevice(&now) == cudaSuccess && now != previous_) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace

namespace {

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
  for (const Entry& entry : backward_entries) free_on(entry.device, entry.buffer);
  for (const Entry& entry : entries) free_on(entry.device, entry.buffer);
}

namespace cuda_detail {

namespace {

// Indices 0..n-1 ordered by their count (offsets[i + 1] - offsets[i]) on a coarse log scale
// (steps of 2^(1/4)), largest first, ties in natural order; empty ones last.
std::vector<int32_t> heavy_first(const std::vector<int32_t>& offsets, int32_t n) {
  std::vector<int32_t> bucket(n);
  for (int32_t r = 0; r < n; ++r) {
    const int32_t count = offsets[r + 1] - offsets[r];
    bucket[r] = count > 0 ? static_cast<int32_t>(std::floor(4.0 * std::log2(count))) : -1;
  }
  std::vector<int32_t> order(n);
  for (int32_t r = 0; r < n; ++r) order[r] = r;
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return bucket[a] > bucket[b]; });
  return order;
}

}  // namespace

std::vector<int32_t> heavy_first_order(const Plan& plan) {
  return heavy_first(plan.row_offset, plan.block_rows);
}

std::vector<int32_t> heavy_first_columns(const Plan& plan) {
  return heavy_first(plan.col_offset, plan.block_cols);
}

LocalityOrder locality_order(const Plan& plan) {
  const int32_t rows = plan.block_rows;
  const int64_t block = plan.block_size();
  const int64_t frame_tokens = plan.geometry.tokens_per_frame;
  const int64_t video = plan.geometry.video_tokens();
  LocalityOrder result;
  result.start.assign(static_cast<size_t>(rows), 0);
  if (plan.spec.pattern == Pattern::dense || plan.geometry.frames < 2) {
    result.order = heavy_first_order(plan);
    return result;
  }
  // Spatial chunk width in blocks: 1024 tokens (8 blocks of 128). Chosen with an LRU model of
  // L2 (bench/gpu/NOTES.md): narrower chunks re-read each frame's dense neighbourhood more
  // often, wider ones let far-band blocks fall out of L2 before the next frame's rows use them.
  // RADIAL_LOCALITY_CHUNK_TOKENS overrides it, for tuning runs (read at each upload).
  int64_t chunk_tokens = 1024;
  if (const char* env = std::getenv("RADIAL_LOCALITY_CHUNK_TOKENS")) {
    chunk_tokens = std::max<int64_t>(std::atoll(env), 1);
  }
  const int64_t chunk = std::max<int64_t>(1, chunk_tokens / block);
  struct Key {
    int64_t group, frame, within;
    int32_t row;
  };
  std::vector<Key> keys;
  keys.reserve(static_cast<size_t>(rows));
  for (int32_t r = 0; r < rows; ++r) {
    const int64_t token = static_cast<int64_t>(r) * block;
    if (token >= video) {
      keys.push_back({-1, 0, 0, r});  // text rows: dense, heaviest, first
      continue;
    }
    const int64_t frame = token / frame_tokens, spatial = (token % frame_tokens) / block;
    keys.push_back({spatial / chunk, frame, spatial % chunk, r});
    // Rotate to the first kept block at or after frame f - 1's first token.
    const int64_t from = std::max<int64_t>(frame - 1, 0) * frame_tokens / block;
    const auto first = plan.col_index.begin() + plan.row_offset[r];
    const auto last = plan.col_index.begin() + plan.row_offset[r + 1];
    const auto at = std::lower_bound(first, last, static_cast<int32_t>(from));
    result.start[r] = at == last ? 0 : static_cast<int32_t>(at - first);
  }
  std::stable_sort(keys.begin(), keys.end(), [](const Key& a, const Key& b) {
    if (a.group != b.group) return a.group < b.group;
    if (a.frame != b.frame) return a.frame < b.frame;
    return a.within < b.within;
  });
  result.order.reserve(static_cast<size_t>(rows));
  for (const Key& k : keys) result.order.push_back(k.row);
  return result;
}

namespace {

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
  if (!plan.device_cache) plan.device_cache = std::make_shared<PlanDeviceCache>();
  for (const PlanDeviceCache::Schedule& s : plan.device_cache->schedules) {
    if (s.device == device && s.batch_heads == batch_heads && s.tail == tail) return s.buffer;
  }
  std::vector<int32_t> row_blocks(static_cast<size_t>(plan.block_rows));
  for (int32_t r = 0; r < plan.block_rows; ++r) {
    row_blocks[static_cast<size_t>(r)] = plan.row_offset[r + 1] - plan.row_offset[r];
  }
  const std::vector<int32_t> order =
      handout_order(row_blocks, locality_order(plan).order, batch_heads, tail);
  int32_t* buffer = upload(order, device, "cudaMemcpy(tile hand-out order, host to device)");
  plan.device_cache->schedules.push_back({device, batch_heads, tail, buffer});
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
  if (!plan.device_cache) plan.device_cache = std::make_shared<PlanDeviceCache>();
  for (const PlanDeviceCache::Entry& entry : plan.device_cache->entries) {
    if (entry.device == device) return view(entry.buffer);
  }
  std::vector<int32_t> host;
  host.reserve(n_offsets + n_cols + 3 * n_rows);
  host.insert(host.end(), plan.row_offset.begin(), plan.row_offset.end());
  host.insert(host.end(), plan.col_index.begin(), plan.col_index.end());
  const std::vector<int32_t> order = heavy_first_order(plan);
  host.insert(host.end(), order.begin(), order.end());
  const LocalityOrder local = locality_order(plan);
  host.insert(host.end(), local.order.begin(), local.order.end());
  host.insert(host.end(), local.start.begin(), local.start.end());
  int32_t* buffer = upload(host, device, "cudaMemcpy(plan block lists, host to device)");
  plan.device_cache->entries.push_back({device, buffer});
  return view(buffer);
}

DeviceBackwardPlan device_backward_plan(const Plan& plan, int device) {
  const size_t n_offsets = plan.col_offset.size(), n_rows = plan.row_index.size();
  const auto view = [&](const int32_t* buffer) {
    return DeviceBackwardPlan{buffer, buffer + n_offsets, buffer + n_offsets + n_rows};
  };
  std::lock_guard<std::mutex> lock(upload_mutex());
  if (!plan.device_cache) plan.device_cache = std::make_shared<PlanDeviceCache>();
  for (const PlanDeviceCache::Entry& entry : plan.device_cache->backward_entries) {
    if (entry.device == device) return view(entry.buffer);
  }
  // The kernels index with these numbers: walked once, before the one upload (the CSR is
  // walked by validate_plan).
  for (int32_t c = 0; c < plan.block_cols; ++c) {
    const int32_t begin = plan.col_offset[c], end = plan.col_offset[c + 1];
    require(begin <= end && begin >= 0 && static_cast<size_t>(end) <= n_rows, "plan.col_offset",
            "non-decreasing offsets within row_index",
            "column " + std::to_string(c) + ": " + std::to_string(begin) + ".." +
                std::to_string(end));
    for (int32_t i = begin; i < end; ++i) {
      const int32_t r = plan.row_index[i];
      require(r >= 0 && r < plan.block_rows && (i == begin || r > plan.row_index[i - 1]),
              "plan.row_index",
              "increasing block rows in 0.." + std::to_string(plan.block_rows - 1) + " per column",
              std::to_string(r) + " in column " + std::to_string(c));
    }
  }
  std::vector<int32_t> host;
  host.reserve(n_offsets + n_rows + static_cast<size_t>(plan.block_cols));
  host.insert(host.end(), plan.col_offset.begin(), plan.col_offset.end());
  host.insert(host.end(), plan.row_index.begin(), plan.row_index.end());
  const std::vector<int32_t> order = heavy_first_columns(plan);
  host.insert(host.end(), order.begin(), order.end());
  int32_t* buffer = upload(host, device, "cudaMemcpy(plan CSC block lists, host to device)");
  plan.device_cache->backward_entries.push_back({device, buffer});
  return view(buffer);
}

}  // namespace cuda_detail
}  // namespace radial
