// The public attention entry point: every check on its arguments, then the one place that
// picks a backend.
#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <utility>
#include <string>

#include "api/attention_checks.hpp"
#include "core/checked_math.hpp"
#include "plan/plan_access.hpp"
#include "radial/attention.hpp"
#include "radial/error.hpp"
#include "radial/cuda.hpp"

namespace radial {
namespace {

constexpr int64_t kMaxHeadDim = 256;

std::string device_text(const TensorView& t) {
  return t.device == Device::cpu ? std::string("cpu")
                                 : "cuda:" + std::to_string(t.device_index);
}

std::string field(const char* tensor, const char* name) { return std::string(tensor) + "." + name; }

// One view on its own: a pointer, positive sizes, a supported head dim, positive strides.
void validate_view(const TensorView& t, const char* name) {
  require(t.data != nullptr, field(name, "data"), "a non-null pointer", "nullptr");
  require(t.batch >= 1, field(name, "batch"), "an integer >= 1", t.batch);
  require(t.seq >= 1, field(name, "seq"), "an integer >= 1", t.seq);
  require(t.heads >= 1, field(name, "heads"), "an integer >= 1", t.heads);
  require(t.dim >= 1 && t.dim <= kMaxHeadDim, field(name, "dim"),
          "a head dim in 1.." + std::to_string(kMaxHeadDim), t.dim);
  // The head dim is contiguous by contract; the other strides must step forward. A stride
  // is irrelevant (and left unchecked) where its extent is 1.
  require(t.batch == 1 || t.stride_batch >= 1, field(name, "stride_batch"),
          ">= 1 (elements)", t.stride_batch);
  require(t.seq == 1 || t.stride_seq >= 1, field(name, "stride_seq"), ">= 1 (elements)",
          t.stride_seq);
  require(t.heads == 1 || t.stride_head >= 1, field(name, "stride_head"), ">= 1 (elements)",
          t.stride_head);
  // Every backend computes element and byte offsets, and sizes its buffers, in 64 bits: the
  // element count and the largest offset must fit there, in bytes, with no product wrapping.
  const int64_t element_bytes = dtype_size(t.dtype);
  const auto elements = checked::product({t.batch, t.seq, t.heads, t.dim, element_bytes});
  require(elements.has_value(), field(name, "batch * seq * heads * dim"),
          "a tensor of at most 2^63 - 1 bytes",
          std::to_string(t.batch) + " * " + std::to_string(t.seq) + " * " + std::to_string(t.heads) +
              " * " + std::to_string(t.dim) + " elements of " + std::to_string(element_bytes) +
              " bytes");
  std::optional<int64_t> last = t.dim - 1;  // the largest element offset the view reaches
  for (const auto& [stride, extent] : {std::pair{t.stride_batch, t.batch},
                                      std::pair{t.stride_seq, t.seq},
                                      std::pair{t.stride_head, t.heads}}) {
    if (extent == 1 || !last) continue;
    const auto step = checked::mul(stride, extent - 1);
    last = step ? checked::add(*last, *step) : std::nullopt;
  }
  const auto span = last ? checked::add(*last, 1) : std::nullopt;
  require(span && checked::mul(*span, element_bytes).has_value(), field(name, "strides"),
          "a largest element offset whose byte offset fits in 64 bits",
          "stride_batch " + std::to_string(t.stride_batch) + ", stride_seq " +
              std::to_string(t.stride_seq) + ", stride_head " + std::to_string(t.stride_head) +
              " over batch " + std::to_string(t.batch) + ", seq " + std::to_string(t.seq) +
              ", heads " + std::to_string(t.heads));
}

// `t` has the shape, dtype and device of q.
void require_like_q(const TensorView& t, const char* name, const TensorView& q) {
  const auto expect = [&](int64_t got, int64_t want, const char* dim) {
    require(got == want, field(name, dim), std::to_string(want) + " (q." + dim + ")", got);
  };
  expect(t.batch, q.batch, "batch");
  expect(t.heads, q.heads, "heads");
  expect(t.dim, q.dim, "dim");
  require(t.dtype == q.dtype, field(name, "dtype"), std::string(dtype_name(q.dtype)) + " (q.dtype)",
          dtype_name(t.dtype));
  require(t.device == q.device && (t.device == Device::cpu || t.device_index == q.device_index),
          field(name, "device"), device_text(q) + " (q.device)", device_text(t));
}

// Threads write out row by row; two elements at one address would race and lose results.
void require_no_overlap(const TensorView& t, const char* name) {
  struct Axis { int64_t stride, extent; };
  std::array<Axis, 3> axes = {Axis{t.stride_batch, t.batch}, Axis{t.stride_seq, t.seq},
                              Axis{t.stride_head, t.heads}};
  std::sort(axes.begin(), axes.end(),
            [](const Axis& a, const Axis& b) { return a.stride < b.stride; });
  int64_t span = t.dim;  // elements covered by the axes with smaller strides
  bool ok = true;
  for (const Axis& axis : axes) {
    if (axis.extent == 1) continue;
    ok = ok && axis.stride >= span;
    span = axis.stride * (axis.extent - 1) + span;
  }
  require(ok, field(name, "strides"), "non-overlapping elements (each stride >= the span of the "
          "smaller ones, head dim " + std::to_string(t.dim) + " contiguous)",
          "stride_batch " + std::to_string(t.stride_batch) + ", stride_seq " +
              std::to_string(t.stride_seq) + ", stride_head " + std::to_string(t.stride_head));
}

}  // namespace

namespace detail {

void validate_plan(const Plan& plan, PlanWalk walk) {
  require(plan.block_rows >= 1 && plan.seq_len >= 1, "plan",
          "a plan from make_plan or make_dense_plan",
          "an empty plan (block_rows = " + std::to_string(plan.block_rows) + ")");
  const int b = plan.block_size();
  require(b == 64 || b == 128, "plan.spec.block_size", "64 or 128", b);
  const int64_t rows = (plan.seq_len + b - 1) / b;
  require(plan.block_rows == rows && plan.block_cols == rows, "plan.block_rows",
          std::to_string(rows) + " (ceil(seq_len / block_size)) rows and columns",
          std::to_string(plan.block_rows) + " rows, " + std::to_string(plan.block_cols) +
              " columns");
  require(plan.key_limit >= 1 && plan.key_limit <= plan.seq_len, "plan.key_limit",
          "1.." + std::to_string(plan.seq_len) + " (plan.seq_len)", plan.key_limit);
  require(plan.row_offset.size() == static_cast<size_t>(rows) + 1 && plan.row_offset[0] == 0 &&
              plan.row_offset.back() == static_cast<int64_t>(plan.col_index.size()),
          "plan.row_offset", std::to_string(rows + 1) + " offsets from 0 to col_index.size()",
          std::to_string(plan.row_offset.size()) + " offsets");
  // Kernels index with these numbers, so a corrupt plan must not reach them. The planner's own
  // block lists are valid by construction; everything else is walked, O(kept blocks).
  if (walk == PlanWalk::unless_planned && PlanAccess::planned(plan)) return;
  const int64_t last_col = (plan.key_limit - 1) / b;  // blocks past it hold no valid key
  // This walk runs on every call, so its fast pass only compares neighbours (a loop without
  // branches, which the compiler vectorises); the message is looked for once something failed.
  const int64_t n_cols = static_cast<int64_t>(plan.col_index.size());
  const int32_t* col = plan.col_index.data();
  bool ok = true;
  for (int64_t r = 0; r < rows && ok; ++r) {
    const int32_t begin = plan.row_offset[r], end = plan.row_offset[r + 1];
    if (!(begin < end && begin >= 0 && end <= n_cols)) {
      throw Error("plan.row_offset", "at least one kept block in every block row",
                  "row " + std::to_string(r) + " with " + std::to_string(end - begin));
    }
    // Increasing, so within 0..last_col when the first and the last are.
    bool row_ok = col[begin] >= 0 && col[end - 1] <= last_col;
    for (int32_t i = begin + 1; i < end; ++i) row_ok &= col[i] > col[i - 1];
    ok = row_ok;
  }
  if (ok) return;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t previous = -1;
    for (int32_t i = plan.row_offset[r]; i < plan.row_offset[r + 1]; ++i) {
      if (!(col[i] > previous && col[i] <= last_col)) {
        throw Error("plan.col_index",
                    "increasing block columns in 0.." + std::to_string(last_col) + " per row",
                    std::to_string(col[i]) + " in row " + std::to_string(r));
      }
      previous = col[i];
    }
  }
}

void validate_inputs(const Plan& plan, const TensorView& q, const TensorView& k,
                     const TensorView& v, PlanWalk walk) {
  validate_plan(plan, walk);
  validate_view(q, "q");
  validate_view(k, "k");
  validate_view(v, "v");
  require(q.seq == plan.seq_len, "q.seq", std::to_string(plan.seq_len) + " (plan.seq_len)", q.seq);
  require(k.seq == plan.seq_len, "k.seq", std::to_string(plan.seq_len) + " (plan.seq_len)", k.seq);
  require(v.seq == plan.seq_len, "v.seq", std::to_string(plan.seq_len) + " (plan.seq_len)", v.seq);
  require_like_q(k, "k", q);
  require_like_q(v, "v", q);
}

void validate_options(const AttentionOptions& options) {
  require(std::isfinite(options.scale) && options.scale >= 0, "options.scale",
          "a finite number > 0 (or 0 for 1 / sqrt(head_dim))", options.scale);
  require(options.threads >= 0, "options.threads",
          ">= 0 (0: all hardware threads; more are capped to them)", options.threads);
  const int backend = static_cast<int>(options.backend);
  require(backend >= 0 && backend <= static_cast<int>(Backend::cuda), "options.backend",
          "automatic, cpu or cuda", backend);
  const int precision = static_cast<int>(options.precision);
  require(precision >= 0 && precision <= static_cast<int>(Precision::fp8), "options.precision",
          "native or fp8", precision);
}

void require_host(const TensorView& q, const char* who) {
  require(q.device == Device::cpu, "q.device", std::string("cpu (") + who + ")", device_text(q));
}

Backend resolve_backend(const AttentionOptions& options, const TensorView& q) {
  validate_options(options);
  Backend backend = options.backend;
  if (backend == Backend::automatic) {
    backend = q.device == Device::cuda ? Backend::cuda : Backend::cpu;
  }
  if (backend == Backend::cpu) {
    require_host(q, "options.backend = cpu");
  } else {
    require(q.device == Device::cuda, "q.device", "cuda (options.backend = cuda)",
            device_text(q));
  }
  return backend;
}

double resolve_scale(double scale, int64_t head_dim) {
  return scale == 0.0 ? 1.0 / std::sqrt(static_cast<double>(head_dim)) : scale;
}

void validate_like_q(const TensorView& t, const char* name, const TensorView& q, bool written) {
  validate_view(t, name);
  require(t.seq == q.seq, field(name, "seq"), std::to_string(q.seq) + " (q.seq)", t.seq);
  require_like_q(t, name, q);
  if (written) require_no_overlap(t, name);
}

}  // namespace detail

namespace detail {

void validate_attention_args(const Plan& plan, const TensorView& q, const TensorView& k,
                             const TensorView& v, const TensorView& out, PlanWalk walk) {
  validate_inputs(plan, q, k, v, walk);
  validate_view(out, "out");
  require(out.seq == q.seq, "out.seq", std::to_string(q.seq) + " (q.seq)", out.seq);
  require_like_q(out, "out", q);
  require_no_overlap(out, "out");
}

}  // namespace detail

void validate_attention_args(const Plan& plan, const TensorView& q, const TensorView& k,
                             const TensorView& v, const TensorView& out) {
  detail::validate_attention_args(plan, q, k, v, out, detail::PlanWalk::always);
}

void attention(const Plan& plan, const TensorView& q, const TensorView& k, const TensorView& v,
               const TensorView& out, float* lse, const AttentionOptions& options) {
  // Each backend checks every argument itself (validate_attention_args), so only the choice
  // of backend is checked here; checking twice would walk the plan twice.
  if (detail::resolve_backend(options, q) == Backend::cpu) {
    require(options.precision == Precision::native, "options.precision",
            "native on the CPU backend (fp8 runs on CUDA devices of compute capability 9.0)",
            precision_name(options.precision));
    attention_cpu(plan, q, k, v, out, lse, options);
    return;
  }
#ifdef RADIAL_WITH_CUDA
  attention_cuda(plan, q, k, v, out, lse, options);
#else
  validate_attention_args(plan, q, k, v, out);  // a more precise error first, if there is one
  throw Error("q.device", "cpu (this build has no CUDA)", device_text(q));
#endif
}

#ifndef RADIAL_WITH_CUDA
bool cuda_available() { return false; }  // the CUDA build defines it in src/cuda
#endif

}  // namespace radial
