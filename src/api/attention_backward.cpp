// The public backward entry point: the checks every backend shares, then the one place that
// picks a backend (the same choice as the forward's).
#include <string>
#include <vector>

#include "api/attention_checks.hpp"
#include "plan/plan_access.hpp"
#include "radial/attention.hpp"
#include "radial/cuda.hpp"
#include "radial/error.hpp"

namespace radial {
namespace {

// The backward walks key block columns through the CSC, so it must be the CSR's transpose:
// sizes first, then every entry (a corrupt CSC would index past the tensors).
void validate_plan_csc(const Plan& plan, bool trust_planned) {
  const int32_t cols = plan.block_cols;
  require(plan.col_offset.size() == static_cast<size_t>(cols) + 1 && plan.col_offset[0] == 0 &&
              plan.col_offset.back() == static_cast<int64_t>(plan.col_index.size()) &&
              plan.row_index.size() == plan.col_index.size(),
          "plan.col_offset",
          std::to_string(cols + 1) + " offsets from 0 to " + std::to_string(plan.col_index.size()) +
              " (the CSC of the plan's kept blocks, as make_plan fills it)",
          std::to_string(plan.col_offset.size()) + " offsets, " +
              std::to_string(plan.row_index.size()) + " row indices");
  // Like validate_plan: on the GPU path the planner's own lists are trusted (the walk would cost
  // about as much as a small backward's launch); everything else is walked, O(kept blocks).
  if (trust_planned && detail::PlanAccess::planned(plan)) return;
  std::vector<int32_t> next(plan.col_offset.begin(), plan.col_offset.end() - 1);
  for (int32_t r = 0; r < plan.block_rows; ++r) {
    for (int32_t i = plan.row_offset[r]; i < plan.row_offset[r + 1]; ++i) {
      const int32_t c = plan.col_index[i];  // validate_plan checked 0 <= c < cols
      const int32_t at = next[c]++;
      // Checked with a plain `if`: building the message each time would cost more than the walk.
      if (at >= plan.col_offset[c + 1] || plan.row_index[at] != r) {
        throw Error("plan.row_index",
                    "the transpose of the CSR (row " + std::to_string(r) + " in column " +
                        std::to_string(c) + ")",
                    at < plan.col_offset[c + 1] ? "row " + std::to_string(plan.row_index[at])
                                                : std::string("a full column"));
      }
    }
  }
}

}  // namespace

void validate_backward_args(const Plan& plan, const TensorView& q, const TensorView& k,
                            const TensorView& v, const TensorView& out, const TensorView& d_out,
                            const float* lse, const TensorView& d_q, const TensorView& d_k,
                            const TensorView& d_v) {
  validate_attention_args(plan, q, k, v, out);
  validate_plan_csc(plan, q.device == Device::cuda);
  detail::validate_like_q(d_out, "d_out", q, false);
  require(lse != nullptr, "lse",
          "the forward's log-sum-exp (float32 [batch, heads, seq], from attention() with lse)",
          "nullptr");
  detail::validate_like_q(d_q, "d_q", q, true);
  detail::validate_like_q(d_k, "d_k", q, true);
  detail::validate_like_q(d_v, "d_v", q, true);
}

void attention_backward(const Plan& plan, const TensorView& q, const TensorView& k,
                        const TensorView& v, const TensorView& out, const TensorView& d_out,
                        const float* lse, const TensorView& d_q, const TensorView& d_k,
                        const TensorView& d_v, const AttentionOptions& options) {
  // As in attention(): each backend checks every argument itself.
  const Backend backend = detail::resolve_backend(options, q);
  require(options.precision == Precision::native, "options.precision",
          "native for the backward (fp8 is a forward precision)",
          precision_name(options.precision));
  if (backend == Backend::cpu) {
    attention_backward_cpu(plan, q, k, v, out, d_out, lse, d_q, d_k, d_v, options);
    return;
  }
#ifdef RADIAL_WITH_CUDA
  attention_backward_cuda(plan, q, k, v, out, d_out, lse, d_q, d_k, d_v, options);
#else
  // A more precise error first, if there is one.
  validate_backward_args(plan, q, k, v, out, d_out, lse, d_q, d_k, d_v);
  throw Error("q.device", "cpu (this build has no CUDA)", "cuda:" + std::to_string(q.device_index));
#endif
}

}  // namespace radial
