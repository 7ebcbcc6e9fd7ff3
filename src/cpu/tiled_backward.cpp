// The CPU backward: gradients of block-sparse attention, from the forward's lse (no second
// online softmax). Two passes inside one parallel region, with no atomics (so the result does
// not depend on the thread count or schedule):
//   1. one task per (batch, head, query block row) over the row's kept key blocks (the CSR):
//      D = rowsum(dO * O), then dQ = scale * sum dS K;
//   2. one task per (batch, head, key block column) over the query block rows that keep it
//      (the CSC): dV = sum P^T dO, dK = scale * sum dS^T Q. A column no row keeps gets zeros.
// For each (query block, key block) pair both passes recompute, in float32 with the forward's
// layout (keys by queries, so that per-query terms run along rows and vectorise):
//   S^T = K Q^T (log2 units), P^T = 2^(S^T - lse2), dP^T = V dO^T, dS^T = P^T (dP^T - D).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <numeric>
#include <vector>

#include "api/attention_checks.hpp"
#include "cpu/convert.hpp"
#include "cpu/isa.hpp"
#include "cpu/tile_math.hpp"
#include "radial/attention.hpp"
#include "radial/error.hpp"

namespace radial {
namespace {

using cpu::exp2_nonpositive;
using cpu::gemm;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr int kDimAlign = 32;  // head dims are zero-padded to this (the widest column tile)

int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

// Per-thread float tiles. Padding (head dims past dim, query rows past the sequence, key rows
// past the valid ones up to the row tile) is zero.
struct Tiles {
  int block = 0;  // query and key block size
  int dp = 0;     // padded head dim
  std::vector<float> storage;
  float* qt = nullptr;     // [dp][block]: Q^T, pre-multiplied by scale * log2(e)
  float* q = nullptr;      // [block][dp]: Q as it is (pass 2)
  float* dot = nullptr;    // [dp][block]: dO^T
  float* d_o = nullptr;    // [block][dp]: dO (pass 2)
  float* k = nullptr;      // [block][dp]
  float* v = nullptr;      // [block][dp]
  float* st = nullptr;     // [block keys][block queries]: scores, then P^T
  float* dst = nullptr;    // [block keys][block queries]: dP^T, then dS^T
  float* acc = nullptr;    // [block][dp]: dQ (pass 1) or dK (pass 2)
  float* acc_v = nullptr;  // [block][dp]: dV (pass 2)
  float* lse2 = nullptr;   // [block] per query: lse in log2 units (+inf past the sequence)
  float* delta = nullptr;  // [block] per query: D = rowsum(dO * O) (0 past the sequence)

  Tiles(int block_size, int padded_dim) : block(block_size), dp(padded_dim) {
    const size_t tile = static_cast<size_t>(block) * dp, sq = static_cast<size_t>(block) * block;
    constexpr size_t kAlign = 16;  // floats: 64 bytes
    storage.assign(8 * tile + 2 * sq + 2 * static_cast<size_t>(block) + kAlign, 0.0f);
    float* p = storage.data();
    p += (kAlign - (reinterpret_cast<uintptr_t>(p) / sizeof(float)) % kAlign) % kAlign;
    for (float** slot : {&qt, &q, &dot, &d_o, &k, &v, &acc, &acc_v}) *slot = p, p += tile;
    for (float** slot : {&st, &dst}) *slot = p, p += sq;
    for (float** slot : {&lse2, &delta}) *slot = p, p += block;
  }
};

// Everything a task needs that does not change between tasks.
struct Problem {
  const Plan* plan;
  TensorView q, k, v, out, d_out, d_q, d_k, d_v;
  const float* lse;
  float* delta;    // [batch, heads, seq]: D, written by pass 1, read by pass 2
  float q_factor;  // scale * log2(e): scores come out in log2 units
  float scale;
};

// Valid queries of block row `row` and valid keys of block column `col`.
int query_count(const Problem& pb, int block, int32_t row) {
  return static_cast<int>(std::min<int64_t>(block, pb.q.seq - static_cast<int64_t>(row) * block));
}
int key_count(const Problem& pb, int block, int32_t col) {
  const int64_t keys = std::min<int64_t>(block, pb.plan->key_limit - static_cast<int64_t>(col) * block);
  return static_cast<int>(std::max<int64_t>(keys, 0));
}

// A block of token rows of `src` as floats: rows x dim into `dst` ([block][dp], or transposed
// [dp][block] when kTranspose), times `factor`; rows past `rows` up to `zero_to` are zeroed.
template <class T, bool kTranspose>
[[gnu::always_inline]] inline void load_rows(const TensorView& src, int64_t b, int64_t h,
                                             int64_t first, int rows, int zero_to, float factor,
                                             float* dst, int block, int dp) {
  const T* base = static_cast<const T*>(src.data);
  const int64_t dim = src.dim;
  for (int i = 0; i < rows; ++i) {
    const T* s = base + src.offset(b, first + i, h);
    if constexpr (kTranspose) {
      for (int64_t d = 0; d < dim; ++d) dst[d * block + i] = cpu::load_float(s[d]) * factor;
    } else {
      float* row = dst + static_cast<int64_t>(i) * dp;
      for (int64_t d = 0; d < dim; ++d) row[d] = cpu::load_float(s[d]) * factor;
    }
  }
  if constexpr (kTranspose) {
    for (int64_t d = 0; d < dim; ++d) std::fill(dst + d * block + rows, dst + d * block + zero_to, 0.0f);
  } else {
    std::fill(dst + static_cast<int64_t>(rows) * dp, dst + static_cast<int64_t>(zero_to) * dp, 0.0f);
  }
}

// Per-query values of a query block: lse2 and D for its valid rows, neutral ones past them
// (P = 2^-inf = 0, so rows past the sequence contribute nothing).
void load_query_stats(const Problem& pb, Tiles& t, int64_t b, int64_t h, int32_t row, int rows) {
  const int64_t at = (b * pb.q.heads + h) * pb.q.seq + static_cast<int64_t>(row) * t.block;
  for (int i = 0; i < rows; ++i) t.lse2[i] = pb.lse[at + i] * std::numbers::log2e_v<float>;
  for (int i = rows; i < t.block; ++i) t.lse2[i] = kInf;
  std::copy_n(pb.delta + at, rows, t.delta);
  std::fill(t.delta + rows, t.delta + t.block, 0.0f);
}

// One (query block, key block) pair: st = P^T, dst = dS^T for the first `keys` key rows; the
// key rows after them up to the row tile are zero. K and V are loaded with zeroed padding.
template <int MR, int NR>
[[gnu::always_inline]] inline int pair_step(Tiles& t, int keys) {
  const int bq = t.block, dp = t.dp;
  const int rows = static_cast<int>(round_up(keys, MR));
  gemm<MR, NR, false, false>(t.k, dp, t.qt, bq, t.st, bq, rows, bq, dp);   // S^T
  gemm<MR, NR, false, false>(t.v, dp, t.dot, bq, t.dst, bq, rows, bq, dp); // dP^T
  const float* __restrict lse2 = t.lse2;
  const float* __restrict delta = t.delta;
  // s - lse2 <= 0 up to rounding; the few ulps above 0 that rounding may give are in the
  // range where exp2_nonpositive stays accurate (its range reduction holds for x < 128).
  for (int j = 0; j < keys; ++j) {
    float* __restrict s = t.st + j * bq;
    float* __restrict ds = t.dst + j * bq;
    for (int i = 0; i < bq; ++i) {
      const float p = exp2_nonpositive(s[i] - lse2[i]);
      s[i] = p;
      ds[i] = p * (ds[i] - delta[i]);
    }
  }
  std::fill(t.st + keys * bq, t.st + rows * bq, 0.0f);
  std::fill(t.dst + keys * bq, t.dst + rows * bq, 0.0f);
  return rows;
}

// K and V of key block `col` (`keys` valid rows), zero-padded to the row tile.
template <class T>
[[gnu::always_inline]] inline void load_keys(const Problem& pb, Tiles& t, int64_t b, int64_t h,
                                             int32_t col, int keys) {
  const int64_t key0 = static_cast<int64_t>(col) * t.block;
  const int padded = std::min(t.block, static_cast<int>(round_up(keys, 8)));
  load_rows<T, false>(pb.k, b, h, key0, keys, padded, 1.0f, t.k, t.block, t.dp);
  load_rows<T, false>(pb.v, b, h, key0, keys, padded, 1.0f, t.v, t.block, t.dp);
}

// Pass 1: D and dQ of query block row `row`.
template <class T, int MR, int NR>
[[gnu::always_inline]] inline void dq_task_impl(const Problem& pb, Tiles& t, int64_t b, int64_t h,
                                                int32_t row) {
  const Plan& plan = *pb.plan;
  const int block = t.block, dp = t.dp;
  const int64_t dim = pb.q.dim, row0 = static_cast<int64_t>(row) * block;
  const int rows = query_count(pb, block, row);

  // D = rowsum(dO * O) per query, kept for pass 2.
  const T* out = static_cast<const T*>(pb.out.data);
  const T* d_out = static_cast<const T*>(pb.d_out.data);
  float* delta = pb.delta + (b * pb.q.heads + h) * pb.q.seq + row0;
  for (int i = 0; i < rows; ++i) {
    const T* o = out + pb.out.offset(b, row0 + i, h);
    const T* g = d_out + pb.d_out.offset(b, row0 + i, h);
    float sum = 0.0f;
    for (int64_t d = 0; d < dim; ++d) sum += cpu::load_float(o[d]) * cpu::load_float(g[d]);
    delta[i] = sum;
  }
  load_query_stats(pb, t, b, h, row, rows);
  load_rows<T, true>(pb.q, b, h, row0, rows, block, pb.q_factor, t.qt, block, dp);
  load_rows<T, true>(pb.d_out, b, h, row0, rows, block, 1.0f, t.dot, block, dp);
  std::fill_n(t.acc, static_cast<size_t>(block) * dp, 0.0f);

  for (int32_t i = plan.row_offset[row]; i < plan.row_offset[row + 1]; ++i) {
    const int32_t col = plan.col_index[i];
    const int keys = key_count(pb, block, col);
    load_keys<T>(pb, t, b, h, col, keys);
    pair_step<MR, NR>(t, keys);
    // dQ += dS K, with dS stored transposed (keys by queries).
    gemm<MR, NR, true, true>(t.dst, block, t.k, dp, t.acc, dp, block, dp, keys);
  }

  T* d_q = static_cast<T*>(pb.d_q.data);
  for (int i = 0; i < rows; ++i) {
    T* dst = d_q + pb.d_q.offset(b, row0 + i, h);
    const float* a = t.acc + static_cast<int64_t>(i) * dp;
    for (int64_t d = 0; d < dim; ++d) dst[d] = cpu::store_float<T>(a[d] * pb.scale);
  }
}

// Pass 2: dK and dV of key block column `col`.
template <class T, int MR, int NR>
[[gnu::always_inline]] inline void dkv_task_impl(const Problem& pb, Tiles& t, int64_t b,
                                                 int64_t h, int32_t col) {
  const Plan& plan = *pb.plan;
  const int block = t.block, dp = t.dp;
  const int64_t dim = pb.q.dim, key0 = static_cast<int64_t>(col) * block;
  const int keys = key_count(pb, block, col);
  // Every token of the block is written: keys past key_limit (padding) get exact zeros.
  const int tokens = static_cast<int>(std::min<int64_t>(block, pb.q.seq - key0));
  std::fill_n(t.acc, static_cast<size_t>(block) * dp, 0.0f);
  std::fill_n(t.acc_v, static_cast<size_t>(block) * dp, 0.0f);

  if (keys > 0 && plan.col_offset[col] < plan.col_offset[col + 1]) {
    load_keys<T>(pb, t, b, h, col, keys);
    for (int32_t i = plan.col_offset[col]; i < plan.col_offset[col + 1]; ++i) {
      const int32_t row = plan.row_index[i];
      const int64_t row0 = static_cast<int64_t>(row) * block;
      const int rows = query_count(pb, block, row);
      load_query_stats(pb, t, b, h, row, rows);
      load_rows<T, true>(pb.q, b, h, row0, rows, block, pb.q_factor, t.qt, block, dp);
      load_rows<T, false>(pb.q, b, h, row0, rows, block, 1.0f, t.q, block, dp);
      load_rows<T, true>(pb.d_out, b, h, row0, rows, block, 1.0f, t.dot, block, dp);
      load_rows<T, false>(pb.d_out, b, h, row0, rows, block, 1.0f, t.d_o, block, dp);
      const int key_rows = pair_step<MR, NR>(t, keys);
      gemm<MR, NR, false, true>(t.st, block, t.d_o, dp, t.acc_v, dp, key_rows, dp, block);  // dV += P^T dO
      gemm<MR, NR, false, true>(t.dst, block, t.q, dp, t.acc, dp, key_rows, dp, block);    // dK += dS^T Q
    }
  }

  T* d_k = static_cast<T*>(pb.d_k.data);
  T* d_v = static_cast<T*>(pb.d_v.data);
  for (int j = 0; j < tokens; ++j) {
    T* dk = d_k + pb.d_k.offset(b, key0 + j, h);
    T* dv = d_v + pb.d_v.offset(b, key0 + j, h);
    const float* ak = t.acc + static_cast<int64_t>(j) * dp;
    const float* av = t.acc_v + static_cast<int64_t>(j) * dp;
    const bool valid = j < keys;
    for (int64_t d = 0; d < dim; ++d) dk[d] = cpu::store_float<T>(valid ? ak[d] * pb.scale : 0.0f);
    for (int64_t d = 0; d < dim; ++d) dv[d] = cpu::store_float<T>(valid ? av[d] : 0.0f);
  }
}

// Both tasks compiled for three instruction sets, as in the forward (tiled_attention.cpp).
using TaskFn = void (*)(const Problem&, Tiles&, int64_t, int64_t, int32_t);
struct Tasks {
  TaskFn dq, dkv;
};
#if defined(__x86_64__) && defined(__GNUC__)
template <class T>
[[gnu::target("arch=x86-64-v4")]] void dq_avx512(const Problem& pb, Tiles& t, int64_t b, int64_t h, int32_t r) {
  dq_task_impl<T, 8, 32>(pb, t, b, h, r);
}
template <class T>
[[gnu::target("arch=x86-64-v4")]] void dkv_avx512(const Problem& pb, Tiles& t, int64_t b, int64_t h, int32_t c) {
  dkv_task_impl<T, 8, 32>(pb, t, b, h, c);
}
template <class T>
[[gnu::target("arch=x86-64-v3")]] void dq_avx2(const Problem& pb, Tiles& t, int64_t b, int64_t h, int32_t r) {
  dq_task_impl<T, 4, 16>(pb, t, b, h, r);
}
template <class T>
[[gnu::target("arch=x86-64-v3")]] void dkv_avx2(const Problem& pb, Tiles& t, int64_t b, int64_t h, int32_t c) {
  dkv_task_impl<T, 4, 16>(pb, t, b, h, c);
}
#endif
template <class T>
void dq_baseline(const Problem& pb, Tiles& t, int64_t b, int64_t h, int32_t r) {
  dq_task_impl<T, 4, 16>(pb, t, b, h, r);
}
template <class T>
void dkv_baseline(const Problem& pb, Tiles& t, int64_t b, int64_t h, int32_t c) {
  dkv_task_impl<T, 4, 16>(pb, t, b, h, c);
}

template <class T>
Tasks pick_tasks() {
  switch (cpu::active_isa()) {
#if defined(__x86_64__) && defined(__GNUC__)
    case cpu::Isa::avx512: return {dq_avx512<T>, dkv_avx512<T>};
    case cpu::Isa::avx2: return {dq_avx2<T>, dkv_avx2<T>};
#endif
    default: return {dq_baseline<T>, dkv_baseline<T>};
  }
}

// Indices 0..n-1, longest first by `offsets` (CSR or CSC), so no thread ends on a long one.
std::vector<int32_t> longest_first(const std::vector<int32_t>& offsets) {
  std::vector<int32_t> order(offsets.size() - 1);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return offsets[a + 1] - offsets[a] > offsets[b + 1] - offsets[b];
  });
  return order;
}

template <class T>
void run_all(const Plan& plan, const Problem& pb, int threads) {
  const Tasks tasks = pick_tasks<T>();
  const int block = plan.block_size();
  const int dp = static_cast<int>(round_up(pb.q.dim, kDimAlign));
  const std::vector<int32_t> rows_order = longest_first(plan.row_offset);
  const std::vector<int32_t> cols_order = longest_first(plan.col_offset);
  const int64_t heads = pb.q.heads, bh = pb.q.batch * heads;
  const int64_t rows = plan.block_rows, cols = plan.block_cols;
#pragma omp parallel num_threads(threads)
  {
    Tiles tiles(block, dp);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < bh * rows; ++task) {
      const int64_t i = task / rows;
      tasks.dq(pb, tiles, i / heads, i % heads, rows_order[task % rows]);
    }
    // The implicit barrier above: pass 2 reads the D that pass 1 wrote.
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < bh * cols; ++task) {
      const int64_t i = task / cols;
      tasks.dkv(pb, tiles, i / heads, i % heads, cols_order[task % cols]);
    }
  }
}

}  // namespace

void attention_backward_cpu(const Plan& plan, const TensorView& q, const TensorView& k,
                            const TensorView& v, const TensorView& out, const TensorView& d_out,
                            const float* lse, const TensorView& d_q, const TensorView& d_k,
                            const TensorView& d_v, const AttentionOptions& options) {
  validate_backward_args(plan, q, k, v, out, d_out, lse, d_q, d_k, d_v);
  detail::validate_options(options);
  detail::require_host(q, "attention_backward_cpu");
  std::vector<float> delta(static_cast<size_t>(q.batch * q.heads * q.seq));
  const double scale = detail::resolve_scale(options.scale, q.dim);
  const Problem pb{&plan, q, k, v, out, d_out, d_q, d_k, d_v, lse, delta.data(),
                   static_cast<float>(scale * std::numbers::log2e), static_cast<float>(scale)};
  const int threads = options.threads > 0 ? options.threads : omp_get_max_threads();
  switch (q.dtype) {
    case DType::f32: run_all<float>(plan, pb, threads); break;
    case DType::bf16: run_all<bf16_t>(plan, pb, threads); break;
    case DType::f16: run_all<f16_t>(plan, pb, threads); break;
  }
}

}  // namespace radial
