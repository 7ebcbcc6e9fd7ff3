// The plainly right backward that every fast one is tested against: one query token at a time,
// its softmax recomputed from q and k (no lse, no forward output is trusted), every key token
// checked against the plan's block mask, float64 throughout. With P the row's probabilities,
// dP_t = dO . v_t, and D = sum_t P_t dP_t:
//   dS_t = P_t (dP_t - D),  dq += scale dS_t k_t,  dk_t += scale dS_t q,  dv_t += P_t dO.
#include <cmath>
#include <limits>
#include <vector>

#include "api/attention_checks.hpp"
#include "cpu/reference_common.hpp"
#include "radial/attention.hpp"
#include "radial/error.hpp"

namespace radial {

using reference::element;

namespace {

// One token's head vector as doubles.
void read_row(const TensorView& t, int64_t b, int64_t s, int64_t h, double* row) {
  for (int64_t d = 0; d < t.dim; ++d) row[d] = element(t, b, s, h, d);
}

}  // namespace

ReferenceGradients attention_backward_reference(const Plan& plan, const TensorView& q,
                                                const TensorView& k, const TensorView& v,
                                                const TensorView& d_out, double scale) {
  detail::validate_inputs(plan, q, k, v);
  detail::validate_like_q(d_out, "d_out", q, false);
  detail::require_host(q, "attention_backward_reference reads host memory");
  require(std::isfinite(scale) && scale >= 0, "scale",
          "a finite number > 0 (or 0 for 1 / sqrt(head_dim))", scale);
  scale = detail::resolve_scale(scale, q.dim);

  // The block mask, read straight from the CSR (not the CSC the tiled
  // backward uses for dK and dV).
  const int64_t block = plan.block_size(), cols = plan.block_cols;
  const std::vector<char> kept = reference::kept_blocks(plan);

  ReferenceGradients g;
  g.batch = q.batch, g.seq = q.seq, g.heads = q.heads, g.dim = q.dim;
  const size_t size = static_cast<size_t>(q.batch * q.seq * q.heads * q.dim);
  g.dq.assign(size, 0.0), g.dk.assign(size, 0.0), g.dv.assign(size, 0.0);
  const int64_t dim = q.dim;
  std::vector<double> qs(dim), dos(dim), kt(dim), vt(dim);
  std::vector<double> prob(static_cast<size_t>(q.seq)), dprob(static_cast<size_t>(q.seq));
  std::vector<char> attended(static_cast<size_t>(q.seq));
  const double minus_inf = -std::numeric_limits<double>::infinity();

  for (int64_t b = 0; b < q.batch; ++b) {
    for (int64_t h = 0; h < q.heads; ++h) {
      for (int64_t s = 0; s < q.seq; ++s) {
        read_row(q, b, s, h, qs.data());
        read_row(d_out, b, s, h, dos.data());
        const char* row_mask = &kept[(s / block) * cols];
        double top = minus_inf;
        for (int64_t t = 0; t < q.seq; ++t) {
          attended[t] = t < plan.key_limit && row_mask[t / block];
          if (!attended[t]) continue;
          read_row(k, b, t, h, kt.data());
          read_row(v, b, t, h, vt.data());
          double dot = 0.0, dp = 0.0;
          for (int64_t d = 0; d < dim; ++d) dot += qs[d] * kt[d], dp += dos[d] * vt[d];
          prob[t] = scale * dot;
          dprob[t] = dp;
          if (prob[t] > top) top = prob[t];
        }
        double sum = 0.0;
        for (int64_t t = 0; t < q.seq; ++t) {
          if (attended[t]) sum += (prob[t] = std::exp(prob[t] - top));
        }
        double delta = 0.0;  // D = sum_t P_t dP_t (= dO . out)
        for (int64_t t = 0; t < q.seq; ++t) {
          if (!attended[t]) continue;
          prob[t] /= sum;
          delta += prob[t] * dprob[t];
        }
        double* dq = &g.dq[g.index(b, s, h, 0)];
        for (int64_t t = 0; t < q.seq; ++t) {
          if (!attended[t]) continue;  // masked keys get nothing, whatever their values
          const double ds = prob[t] * (dprob[t] - delta);
          read_row(k, b, t, h, kt.data());
          double* dk = &g.dk[g.index(b, t, h, 0)];
          double* dv = &g.dv[g.index(b, t, h, 0)];
          for (int64_t d = 0; d < dim; ++d) {
            dq[d] += scale * ds * kt[d];
            dk[d] += scale * ds * qs[d];
            dv[d] += prob[t] * dos[d];
          }
        }
      }
    }
  }
  return g;
}

}  // namespace radial
