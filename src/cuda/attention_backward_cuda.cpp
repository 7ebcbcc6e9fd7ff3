// The CUDA backward's entry point: the checks (common, then the device's), the cached plan
// upload (CSR and CSC), a float32 workspace from the stream's memory pool, then launch_bwd.
//
// Workspace: lse in base 2 and delta per padded query row, plus the float32 dQ accumulator
// [batch x heads, padded seq, head dim] unless deterministic. It is taken with cudaMallocAsync
// on the call's stream and handed back with cudaFreeAsync right after the last kernel, so the
// memory is reused by the stream-ordered pool across calls (no cudaMalloc, no host
// synchronisation per call) and never held between calls: the accumulator is the size of a
// float32 copy of dQ (1.4 GB for 40 heads of 69,120 tokens at head dim 128), which a cache
// owned by the library would keep from the caller for good.
#include <cstdint>

#include "api/attention_checks.hpp"
#include "cuda/backend.hpp"
#include "cuda/bwd_params.hpp"
#include "cuda/check.hpp"
#include "cuda/device_guard.hpp"
#include "cuda/cuda_checks.hpp"
#include "cuda/plan_device.hpp"
#include "radial/cuda.hpp"
#include "radial/error.hpp"

namespace radial {
namespace {

// A stream-ordered allocation, handed back on the same stream when it goes out of scope (also
// when a launch throws).
class StreamBuffer {
 public:
  StreamBuffer(size_t bytes, cudaStream_t stream) : stream_(stream) {
    RADIAL_CUDA_CHECK(cudaMallocAsync(&ptr_, bytes, stream));
  }
  ~StreamBuffer() {
    if (ptr_ != nullptr && cudaFreeAsync(ptr_, stream_) != cudaSuccess) cudaGetLastError();
  }
  StreamBuffer(const StreamBuffer&) = delete;
  StreamBuffer& operator=(const StreamBuffer&) = delete;
  float* get() const { return static_cast<float*>(ptr_); }

 private:
  void* ptr_ = nullptr;
  cudaStream_t stream_;
};

}  // namespace

namespace cuda_detail {
namespace {

// The checks, the uploads, the workspace, then the dispatcher. `chosen` null: choose_kernel
// picks for this device and call (options.deterministic included).
void run_backward(const Plan& plan, const TensorView& q, const TensorView& k, const TensorView& v,
                  const TensorView& out, const TensorView& d_out, const float* lse,
                  const TensorView& d_q, const TensorView& d_k, const TensorView& d_v,
                  const AttentionOptions& options, const KernelChoice* chosen) {
  validate_backward_args(plan, q, k, v, out, d_out, lse, d_q, d_k, d_v);
  detail::validate_options(options);
  // (choose_kernel keeps options.deterministic in a backward choice.)
  const bool deterministic = chosen != nullptr ? chosen->deterministic : options.deterministic;
  const int head_dim = static_cast<int>(q.dim);
  // (bwd_smem_bytes takes any head dim; the checks then name a bad one.)
  validate_cuda_backward_inputs(plan, q, k, v, out, d_out, lse, d_q, d_k, d_v,
                                bwd_smem_bytes(head_dim, plan.block_size(), deterministic));
  const int arch = compute_capability(q.device_index);
  const KernelChoice choice =
      chosen != nullptr ? *chosen
                        : choose_kernel(portable_only() ? 0 : arch, q.dtype, head_dim,
                                        plan.block_size(), Direction::backward, deterministic);

  DeviceGuard guard(q.device_index);
  const DevicePlan rows = device_plan(plan, q.device_index);
  const DeviceBackwardPlan cols = device_backward_plan(plan, q.device_index);

  BwdParams p;
  p.q = q.data, p.k = k.data, p.v = v.data, p.out = out.data, p.d_out = d_out.data;
  p.lse = lse;
  p.d_q = d_q.data, p.d_k = d_k.data, p.d_v = d_v.data;
  fill_strides(q, p.q_sb, p.q_ss, p.q_sh);
  fill_strides(k, p.k_sb, p.k_ss, p.k_sh);
  fill_strides(v, p.v_sb, p.v_ss, p.v_sh);
  fill_strides(out, p.o_sb, p.o_ss, p.o_sh);
  fill_strides(d_out, p.do_sb, p.do_ss, p.do_sh);
  fill_strides(d_q, p.dq_sb, p.dq_ss, p.dq_sh);
  fill_strides(d_k, p.dk_sb, p.dk_ss, p.dk_sh);
  fill_strides(d_v, p.dv_sb, p.dv_ss, p.dv_sh);
  p.heads = static_cast<int32_t>(q.heads);
  p.seq = static_cast<int32_t>(q.seq);
  p.seq_pad = plan.block_rows * plan.block_size();
  p.key_limit = static_cast<int32_t>(plan.key_limit);
  p.block_rows = plan.block_rows;
  p.batch_heads = q.batch * q.heads;
  p.row_offset = rows.row_offset;
  p.col_index = rows.col_index;
  p.row_order = rows.row_order;
  p.col_offset = cols.col_offset;
  p.row_index = cols.row_index;
  // The key blocks' order (choice.row_order; natural: a null order).
  if (choice.row_order == RowOrder::heavy_first) {
    p.col_order = cols.col_order;
  } else if (choice.row_order == RowOrder::locality) {
    p.col_order = cols.local_col_order;
  }
  const double scale = detail::resolve_scale(options.scale, q.dim);
  p.scale = static_cast<float>(scale);
  p.scale_log2 = static_cast<float>(scale * 1.4426950408889634);  // log2(e)

  const auto stream = static_cast<cudaStream_t>(options.stream);
  const int64_t floats = bwd_workspace_floats(p.batch_heads, p.seq_pad, head_dim, deterministic);
  StreamBuffer workspace(static_cast<size_t>(floats) * sizeof(float), stream);
  bwd_set_workspace(p, workspace.get(), head_dim, deterministic);
  launch_bwd(p, choice, q.dtype, head_dim, plan.block_size(), arch, stream);
}

}  // namespace

void attention_backward_cuda_with(const Plan& plan, const TensorView& q, const TensorView& k,
                                  const TensorView& v, const TensorView& out,
                                  const TensorView& d_out, const float* lse,
                                  const TensorView& d_q, const TensorView& d_k,
                                  const TensorView& d_v, const AttentionOptions& options,
                                  const KernelChoice& choice) {
  run_backward(plan, q, k, v, out, d_out, lse, d_q, d_k, d_v, options, &choice);
}

}  // namespace cuda_detail

void attention_backward_cuda(const Plan& plan, const TensorView& q, const TensorView& k,
                             const TensorView& v, const TensorView& out, const TensorView& d_out,
                             const float* lse, const TensorView& d_q, const TensorView& d_k,
                             const TensorView& d_v, const AttentionOptions& options) {
  cuda_detail::run_backward(plan, q, k, v, out, d_out, lse, d_q, d_k, d_v, options, nullptr);
}

}  // namespace radial
