// INTERIM (issue 11, GPU branch): validate_backward_args is written by the CPU helper in src/api
// (the contract in include/radial/attention.hpp). This stand-in lets the CUDA backward build
// and be tested on its own; delete this file when the two branches merge (the linker then
// names any duplicate).
#include <algorithm>
#include <array>
#include <string>

#include "api/attention_checks.hpp"
#include "radial/attention.hpp"
#include "radial/error.hpp"

namespace radial {
namespace {

std::string device_text(const TensorView& t) {
  return t.device == Device::cpu ? std::string("cpu") : "cuda:" + std::to_string(t.device_index);
}

// A gradient (or d_out) view: non-null, the shape, dtype and device of q.
void require_grad_like_q(const TensorView& t, const std::string& name, const TensorView& q) {
  require(t.data != nullptr, name + ".data", "a non-null pointer", "nullptr");
  const auto expect = [&](int64_t got, int64_t want, const char* dim) {
    require(got == want, name + "." + dim, std::to_string(want) + " (q." + dim + ")", got);
  };
  expect(t.batch, q.batch, "batch");
  expect(t.seq, q.seq, "seq");
  expect(t.heads, q.heads, "heads");
  expect(t.dim, q.dim, "dim");
  require(t.dtype == q.dtype, name + ".dtype", std::string(dtype_name(q.dtype)) + " (q.dtype)",
          dtype_name(t.dtype));
  require(t.device == q.device && (t.device == Device::cpu || t.device_index == q.device_index),
          name + ".device", device_text(q) + " (q.device)", device_text(t));
  require(t.batch == 1 || t.stride_batch >= 1, name + ".stride_batch", ">= 1 (elements)",
          t.stride_batch);
  require(t.seq == 1 || t.stride_seq >= 1, name + ".stride_seq", ">= 1 (elements)", t.stride_seq);
  require(t.heads == 1 || t.stride_head >= 1, name + ".stride_head", ">= 1 (elements)",
          t.stride_head);
}

// Each gradient element written once: strides sorted, each at least the span of the smaller.
void require_no_overlap(const TensorView& t, const std::string& name) {
  struct Axis { int64_t stride, extent; };
  std::array<Axis, 3> axes = {Axis{t.stride_batch, t.batch}, Axis{t.stride_seq, t.seq},
                              Axis{t.stride_head, t.heads}};
  std::sort(axes.begin(), axes.end(),
            [](const Axis& a, const Axis& b) { return a.stride < b.stride; });
  int64_t span = t.dim;
  bool ok = true;
  for (const Axis& axis : axes) {
    if (axis.extent == 1) continue;
    ok = ok && axis.stride >= span;
    span = axis.stride * (axis.extent - 1) + span;
  }
  require(ok, name + ".strides", "non-overlapping elements",
          "stride_batch " + std::to_string(t.stride_batch) + ", stride_seq " +
              std::to_string(t.stride_seq) + ", stride_head " + std::to_string(t.stride_head));
}

}  // namespace

void validate_backward_args(const Plan& plan, const TensorView& q, const TensorView& k,
                            const TensorView& v, const TensorView& out, const TensorView& d_out,
                            const float* lse, const TensorView& d_q, const TensorView& d_k,
                            const TensorView& d_v) {
  validate_attention_args(plan, q, k, v, out);
  require_grad_like_q(d_out, "d_out", q);
  require(lse != nullptr, "lse", "the forward's log-sum-exp (float32 [batch, heads, seq])",
          "nullptr");
  require_grad_like_q(d_q, "d_q", q);
  require_grad_like_q(d_k, "d_k", q);
  require_grad_like_q(d_v, "d_v", q);
  require_no_overlap(d_q, "d_q");
  require_no_overlap(d_k, "d_k");
  require_no_overlap(d_v, "d_v");
}

}  // namespace radial
