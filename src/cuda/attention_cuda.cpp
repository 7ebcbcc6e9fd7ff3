// The CUDA backend's entry point: every check that needs the device (where the pointers live,
// alignment, what the kernels support), the cached plan upload, then one launch.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <limits>
#include <string>

#include "api/attention_checks.hpp"
#include "cuda/check.hpp"
#include "cuda/device_guard.hpp"
#include "cuda/backend.hpp"
#include "cuda/cuda_checks.hpp"
#include "cuda/fwd_params.hpp"
#include "cuda/plan_device.hpp"
#include "radial/cuda.hpp"
#include "radial/error.hpp"

namespace radial {

bool cuda_available() {
  int count = 0;
  const bool ok = cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
  cudaGetLastError();  // "no device" must not linger as the runtime's last error
  return ok;
}

namespace cuda_detail {

// Compute capability of `device` as major * 10 + minor (queried once per call).
int compute_capability(int device) {
  int major = 0, minor = 0;
  RADIAL_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  RADIAL_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  return major * 10 + minor;
}

// RADIAL_PORTABLE_KERNEL=1 in the environment: the chooser sees no Hopper device, so the
// portable kernel runs (to compare, or to rule the Hopper kernel out when hunting a problem).
bool portable_only() {
  static const bool only = [] {
    const char* env = std::getenv("RADIAL_PORTABLE_KERNEL");
    return env != nullptr && env[0] != '\0' && env[0] != '0';
  }();
  return only;
}

namespace {

KernelChoice pick(const Plan& plan, const TensorView& q, int arch,
                  Precision precision = Precision::native) {
  return choose_kernel(portable_only() ? 0 : arch, q.dtype, static_cast<int>(q.dim),
                       plan.block_size(), Direction::forward, false, precision);
}

// The checks, then params for the choice's row order and persistence, then the dispatcher.
// `choice` null: choose_kernel picks for this device and call.
void run_forward(const Plan& plan, const TensorView& q, const TensorView& k, const TensorView& v,
                 const TensorView& out, float* lse, const AttentionOptions& options,
                 const KernelChoice* chosen) {
  detail::validate_attention_args(plan, q, k, v, out, detail::PlanWalk::unless_planned);
  detail::validate_options(options);
  validate_cuda_inputs(plan, q, k, v, out, lse);

  DeviceGuard guard(q.device_index);
  const int arch = compute_capability(q.device_index);
  const int head_dim = static_cast<int>(q.dim);
  const KernelChoice choice =
      chosen != nullptr ? *chosen : pick(plan, q, arch, options.precision);
  require(!choice.persistent || choice.row_order == RowOrder::locality, "choice.row_order",
          "locality with persistent=on (the hand-out order follows it)",
          row_order_name(choice.row_order));
  const DevicePlan device = device_plan(plan, q.device_index);

  FwdParams p;
  p.q = q.data, p.k = k.data, p.v = v.data, p.out = out.data, p.lse = lse;
  fill_strides(q, p.q_sb, p.q_ss, p.q_sh);
  fill_strides(k, p.k_sb, p.k_ss, p.k_sh);
  fill_strides(v, p.v_sb, p.v_ss, p.v_sh);
  fill_strides(out, p.o_sb, p.o_ss, p.o_sh);
  p.heads = static_cast<int32_t>(q.heads);
  p.seq = static_cast<int32_t>(q.seq);
  p.key_limit = static_cast<int32_t>(plan.key_limit);
  p.block_rows = plan.block_rows;
  p.batch_heads = q.batch * q.heads;
  p.row_offset = device.row_offset;
  p.col_index = device.col_index;
  // Row order and list rotation are host-side: the kernel reads them (natural: both null).
  if (choice.row_order == RowOrder::heavy_first) {
    p.row_order = device.row_order;
  } else if (choice.row_order == RowOrder::locality) {
    p.row_order = device.local_order;
    p.row_start = device.local_start;
  }
  const auto stream = static_cast<cudaStream_t>(options.stream);
  // The three-warpgroup FP8 kernel (head dim 128, one CTA per tile) visits 192-row tiles: their
  // locality order (run_fwd_fp8 drops it for the FP8 kernels of other tiles; other block
  // sizes are refused by launch_fwd).
  if (choice.family == Family::hopper && choice.precision == Precision::fp8 && head_dim == 128 &&
      plan.block_size() == 128 && !choice.persistent && choice.row_order == RowOrder::locality) {
    p.tile_order = device_tile192_order(plan, q.device_index);
  }
  const int64_t tiles = p.batch_heads * plan.block_rows;
  if (choice.family == Family::hopper) {  // it indexes tiles (and CTAs) with 32-bit integers
    require(tiles <= std::numeric_limits<int32_t>::max(), "batch x heads x block rows",
            "at most 2^31 - 1 tiles for the Hopper kernel", tiles);
  }
  if (choice.family == Family::hopper && choice.persistent) {
    int sms = 0;
    RADIAL_CUDA_CHECK(
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, q.device_index));
    const int max_ctas = choice.max_ctas;
    p.tiles = static_cast<int32_t>(tiles);
    p.ctas = static_cast<int32_t>(std::min<int64_t>(max_ctas > 0 ? std::min(sms, max_ctas) : sms,
                                                    std::max<int64_t>(tiles, 1)));
    p.tile_order = device_handout_order(plan, q.device_index, p.batch_heads, p.ctas);
    p.tile_counter = device_tile_counter(q.device_index, stream);
    RADIAL_CUDA_CHECK(cudaMemsetAsync(p.tile_counter, 0, sizeof(int32_t), stream));
  }
  const double scale = detail::resolve_scale(options.scale, q.dim);
  p.scale = static_cast<float>(scale);
  p.scale_log2 = static_cast<float>(scale * 1.4426950408889634);  // log2(e)
  launch_fwd(p, choice, q.dtype, head_dim, plan.block_size(), arch, stream);
}

}  // namespace

void attention_cuda_with(const Plan& plan, const TensorView& q, const TensorView& k,
                         const TensorView& v, const TensorView& out, float* lse,
                         const AttentionOptions& options, const KernelChoice& choice) {
  run_forward(plan, q, k, v, out, lse, options, &choice);
}

KernelChoice choose_kernel_for(const Plan& plan, const TensorView& q) {
  require(q.device == Device::cuda, "q.device", "cuda", "cpu");
  int count = 0;
  RADIAL_CUDA_CHECK(cudaGetDeviceCount(&count));
  require(q.device_index >= 0 && q.device_index < count, "q.device_index",
          "0.." + std::to_string(count - 1) + " (the visible CUDA devices)", q.device_index);
  return pick(plan, q, compute_capability(q.device_index));
}

}  // namespace cuda_detail

// What choose_kernel picks for this device and call (the Hopper kernel on compute capability
// 9.0 whenever it covers the call, the portable kernel otherwise).
void attention_cuda(const Plan& plan, const TensorView& q, const TensorView& k,
                    const TensorView& v, const TensorView& out, float* lse,
                    const AttentionOptions& options) {
  cuda_detail::run_forward(plan, q, k, v, out, lse, options, nullptr);
}

}  // namespace radial
