// The plainly right attention that every fast backend is tested against: one query token at a
// time, every key token checked against the plan's block mask, float64 throughout.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "api/attention_checks.hpp"
#include "cpu/reference_common.hpp"
#include "radial/attention.hpp"
#include "radial/error.hpp"

namespace radial {

using reference::element;

ReferenceResult attention_reference(const Plan& plan, const TensorView& q, const TensorView& k,
                                    const TensorView& v, double scale) {
  detail::validate_inputs(plan, q, k, v);
  detail::require_host(q, "attention_reference reads host memory");
  require(std::isfinite(scale) && scale >= 0, "scale",
          "a finite number > 0 (or 0 for 1 / sqrt(head_dim))", scale);
  scale = detail::resolve_scale(scale, q.dim);

  // The block mask, read straight from the CSR.
  const int64_t block = plan.block_size(), cols = plan.block_cols;
  const std::vector<char> kept = reference::kept_blocks(plan);

  ReferenceResult result;
  result.batch = q.batch, result.seq = q.seq, result.heads = q.heads, result.dim = q.dim;
  result.out.assign(static_cast<size_t>(q.batch * q.seq * q.heads * q.dim), 0.0);
  result.lse.assign(static_cast<size_t>(q.batch * q.heads * q.seq), 0.0);
  std::vector<double> score(static_cast<size_t>(q.seq));
  std::vector<char> attended(static_cast<size_t>(q.seq));
  std::vector<double> acc(static_cast<size_t>(q.dim));
  const double minus_inf = -std::numeric_limits<double>::infinity();

  for (int64_t b = 0; b < q.batch; ++b) {
    for (int64_t h = 0; h < q.heads; ++h) {
      for (int64_t s = 0; s < q.seq; ++s) {
        const char* row_mask = &kept[(s / block) * cols];
        double top = minus_inf;
        for (int64_t t = 0; t < q.seq; ++t) {
          attended[t] = t < plan.key_limit && row_mask[t / block];
          if (!attended[t]) continue;
          double dot = 0.0;
          for (int64_t d = 0; d < q.dim; ++d) dot += element(q, b, s, h, d) * element(k, b, t, h, d);
          score[t] = scale * dot;
          if (score[t] > top) top = score[t];
        }
        // A NaN score never wins the comparison above but still poisons the sum below.
        double sum = 0.0;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t t = 0; t < q.seq; ++t) {
          if (!attended[t]) continue;  // masked keys have no effect, whatever their values
          const double p = std::exp(score[t] - top);
          sum += p;
          for (int64_t d = 0; d < q.dim; ++d) acc[d] += p * element(v, b, t, h, d);
        }
        for (int64_t d = 0; d < q.dim; ++d) {
          result.out[((b * q.seq + s) * q.heads + h) * q.dim + d] = acc[d] / sum;
        }
        result.lse[(b * q.heads + h) * q.seq + s] = top + std::log(sum);
      }
    }
  }
  return result;
}

}  // namespace radial
