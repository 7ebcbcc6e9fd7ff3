// The CPU backend: block-sparse attention, one task per (batch, head, query block row), online
// softmax in float32 over the row's kept key blocks (FlashAttention's recurrence).
//
// Tiles are converted to float once per block into per-thread scratch. Scores are kept
// transposed (S^T = K Q^T, keys by queries) so that the softmax runs down columns, i.e.
// element-wise across queries, with no horizontal reductions, and no tile needs transposing
// except Q, once per task. The hot loop is compiled for AVX-512 and AVX2 besides the baseline
// and picked at run time, so the library needs no -march flag.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <bit>
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

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();
constexpr int kDimAlign = 32;  // head dims are zero-padded to this (the widest column tile)

int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

using cpu::exp2_nonpositive;
using cpu::gemm;

// Per-thread float tiles for one task. Padding (head dims past dim, key rows past the valid
// ones up to the row tile) is zero and stays zero.
struct Tiles {
  int block = 0;  // query and key block size
  int dp = 0;     // padded head dim
  std::vector<float> storage;
  float* qt = nullptr;     // [dp][block]: Q^T, pre-multiplied by scale * log2(e)
  float* k = nullptr;      // [block][dp]
  float* v = nullptr;      // [block][dp]
  float* o = nullptr;      // [block][dp]: unnormalised output
  float* st = nullptr;     // [block keys][block queries]: scores, then probabilities
  float* m = nullptr;      // [block] per query: running max (log2 units)
  float* l = nullptr;      // running sum of 2^(score - m)
  float* m_new = nullptr;  // this step's max
  float* base = nullptr;   // this step's exponent base (m_new, or 0 while it is -inf)
  float* alpha = nullptr;  // rescale of what earlier steps accumulated
  float* sum = nullptr;    // this step's sum

  Tiles(int block_size, int padded_dim) : block(block_size), dp(padded_dim) {
    const size_t tile = static_cast<size_t>(block) * dp, sq = static_cast<size_t>(block) * block;
    constexpr size_t kAlign = 16;  // floats: 64 bytes
    storage.assign(4 * tile + sq + 6 * static_cast<size_t>(block) + kAlign, 0.0f);
    float* p = storage.data();
    p += (kAlign - (reinterpret_cast<uintptr_t>(p) / sizeof(float)) % kAlign) % kAlign;
    for (float** slot : {&qt, &k, &v, &o}) *slot = p, p += tile;
    st = p, p += sq;
    for (float** slot : {&m, &l, &m_new, &base, &alpha, &sum}) *slot = p, p += block;
  }
};

// One key block into the running state of a query block: `keys` valid keys at the start of
// the block (the rest, if any, are masked and never read).
template <int MR, int NR>
[[gnu::always_inline]] inline void block_step_impl(const Tiles& t, int keys) {
  const int bq = t.block, dp = t.dp;
  // S^T = K Q^T; key rows past `keys` up to the row tile are zero and ignored below.
  gemm<MR, NR, false, false>(t.k, dp, t.qt, bq, t.st, bq, static_cast<int>(round_up(keys, MR)),
                             bq, dp);
  float* __restrict m = t.m;
  float* __restrict l = t.l;
  float* __restrict m_new = t.m_new;
  float* __restrict base = t.base;
  float* __restrict alpha = t.alpha;
  float* __restrict sum = t.sum;
  for (int i = 0; i < bq; ++i) m_new[i] = m[i];
  for (int j = 0; j < keys; ++j) {
    const float* __restrict s = t.st + j * bq;
    // A NaN score never becomes the max; it still poisons the sum and the output below.
    for (int i = 0; i < bq; ++i) m_new[i] = s[i] > m_new[i] ? s[i] : m_new[i];
  }
  for (int i = 0; i < bq; ++i) {
    base[i] = m_new[i] == kMinusInf ? 0.0f : m_new[i];
    alpha[i] = exp2_nonpositive(m[i] - base[i]);
    sum[i] = 0.0f;
  }
  for (int j = 0; j < keys; ++j) {
    float* __restrict s = t.st + j * bq;
    for (int i = 0; i < bq; ++i) {
      const float p = exp2_nonpositive(s[i] - base[i]);
      s[i] = p;
      sum[i] += p;
    }
  }
  for (int i = 0; i < bq; ++i) {
    l[i] = l[i] * alpha[i] + sum[i];
    m[i] = m_new[i];
  }
  for (int i = 0; i < bq; ++i) {
    float* __restrict o = t.o + i * dp;
    const float a = alpha[i];
    for (int d = 0; d < dp; ++d) o[d] *= a;
  }
  // O += P V, with P stored transposed (keys by queries).
  gemm<MR, NR, true, true>(t.st, bq, t.v, dp, t.o, dp, bq, dp, keys);
}

// Everything one task needs that does not change between tasks.
struct Problem {
  const Plan* plan;
  TensorView q, k, v, out;
  float* lse;
  float q_factor;  // scale * log2(e): scores come out in log2 units
};

// One task: a query block row of one batch and head, through all its kept key blocks.
template <class T, int MR, int NR>
[[gnu::always_inline]] inline void run_task_impl(const Problem& pb, Tiles& t, int64_t b,
                                                 int64_t h, int32_t row) {
  const Plan& plan = *pb.plan;
  const int block = t.block, dp = t.dp;
  const int64_t dim = pb.q.dim, row0 = static_cast<int64_t>(row) * block;
  const int rows = static_cast<int>(std::min<int64_t>(block, pb.q.seq - row0));

  // Q^T, scaled; query rows past the sequence (last block) are zero and not written out.
  const T* q = static_cast<const T*>(pb.q.data);
  for (int i = 0; i < rows; ++i) {
    const T* src = q + pb.q.offset(b, row0 + i, h);
    for (int64_t d = 0; d < dim; ++d) t.qt[d * block + i] = cpu::load_float(src[d]) * pb.q_factor;
  }
  for (int64_t d = 0; d < dim; ++d) std::fill(t.qt + d * block + rows, t.qt + (d + 1) * block, 0.0f);
  std::fill_n(t.m, block, kMinusInf);
  std::fill_n(t.l, block, 0.0f);
  std::fill_n(t.o, static_cast<size_t>(block) * dp, 0.0f);

  const T* k = static_cast<const T*>(pb.k.data);
  const T* v = static_cast<const T*>(pb.v.data);
  for (int32_t i = plan.row_offset[row]; i < plan.row_offset[row + 1]; ++i) {
    const int64_t key0 = static_cast<int64_t>(plan.col_index[i]) * block;
    // Keys at or past key_limit (padding, or past the sequence) are masked token by token.
    const int keys = static_cast<int>(std::min<int64_t>(block, plan.key_limit - key0));
    for (int j = 0; j < keys; ++j) {
      const T* ks = k + pb.k.offset(b, key0 + j, h);
      const T* vs = v + pb.v.offset(b, key0 + j, h);
      float* kd = t.k + j * dp;
      float* vd = t.v + j * dp;
      for (int64_t d = 0; d < dim; ++d) kd[d] = cpu::load_float(ks[d]);
      for (int64_t d = 0; d < dim; ++d) vd[d] = cpu::load_float(vs[d]);
    }
    // Zero the key rows the score tile reads past the valid keys (at most a row tile's worth).
    const int padded = std::min(block, static_cast<int>(round_up(keys, 8)));
    std::fill(t.k + keys * dp, t.k + padded * dp, 0.0f);
    // K and V of a long sequence live in L3 or memory; fetch the next block's rows while this
    // one computes (measured: the row loads above otherwise take ~18% of the time).
    if (i + 1 < plan.row_offset[row + 1]) {
      const int64_t next0 = static_cast<int64_t>(plan.col_index[i + 1]) * block;
      const int next_keys = static_cast<int>(std::min<int64_t>(block, plan.key_limit - next0));
      const int64_t row_bytes = dim * static_cast<int64_t>(sizeof(T));
      for (int j = 0; j < next_keys; ++j) {
        const char* ks = reinterpret_cast<const char*>(k + pb.k.offset(b, next0 + j, h));
        const char* vs = reinterpret_cast<const char*>(v + pb.v.offset(b, next0 + j, h));
        for (int64_t byte = 0; byte < row_bytes; byte += 64) {
          __builtin_prefetch(ks + byte, 0, 2);
          __builtin_prefetch(vs + byte, 0, 2);
        }
      }
    }
    block_step_impl<MR, NR>(t, keys);
  }

  // Normalise and store; lse in natural log: (m + log2 l) * ln 2.
  T* out = static_cast<T*>(pb.out.data);
  for (int i = 0; i < rows; ++i) {
    T* dst = out + pb.out.offset(b, row0 + i, h);
    const float inv = 1.0f / t.l[i];
    const float* o = t.o + i * dp;
    for (int64_t d = 0; d < dim; ++d) dst[d] = cpu::store_float<T>(o[d] * inv);
  }
  if (pb.lse != nullptr) {
    float* lse = pb.lse + (b * pb.q.heads + h) * pb.q.seq + row0;
    for (int i = 0; i < rows; ++i) {
      lse[i] = (t.m[i] + std::log2(t.l[i])) * std::numbers::ln2_v<float>;
    }
  }
}

// The task compiled for three instruction sets (tile loads and the block step alike), with
// register tiles sized for each; cpu::active_isa() picks one per call.
template <class T>
using TaskFn = void (*)(const Problem&, Tiles&, int64_t, int64_t, int32_t);
#if defined(__x86_64__) && defined(__GNUC__)
template <class T>
[[gnu::target("arch=x86-64-v4")]] void run_task_avx512(const Problem& pb, Tiles& t, int64_t b,
                                                       int64_t h, int32_t row) {
  run_task_impl<T, 8, 32>(pb, t, b, h, row);
}
template <class T>
[[gnu::target("arch=x86-64-v3")]] void run_task_avx2(const Problem& pb, Tiles& t, int64_t b,
                                                     int64_t h, int32_t row) {
  run_task_impl<T, 4, 16>(pb, t, b, h, row);
}
#endif
template <class T>
void run_task_baseline(const Problem& pb, Tiles& t, int64_t b, int64_t h, int32_t row) {
  run_task_impl<T, 4, 16>(pb, t, b, h, row);
}
std::atomic<cpu::Isa> forced_isa{cpu::Isa::best};

template <class T>
TaskFn<T> pick_task() {
  switch (cpu::active_isa()) {
#if defined(__x86_64__) && defined(__GNUC__)
    case cpu::Isa::avx512: return run_task_avx512<T>;
    case cpu::Isa::avx2: return run_task_avx2<T>;
#endif
    default: return run_task_baseline<T>;
  }
}

template <class T>
void run_all(const Plan& plan, const Problem& pb, int threads) {
  const TaskFn<T> run_task = pick_task<T>();
  const int block = plan.block_size();
  const int dp = static_cast<int>(round_up(pb.q.dim, kDimAlign));
  // Longest rows first, so that no thread is left with a long row at the end.
  std::vector<int32_t> order(plan.block_rows);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return plan.row_offset[a + 1] - plan.row_offset[a] > plan.row_offset[b + 1] - plan.row_offset[b];
  });
  const int64_t rows = plan.block_rows, heads = pb.q.heads;
  const int64_t tasks = pb.q.batch * heads * rows;
#pragma omp parallel num_threads(threads)
  {
    Tiles tiles(block, dp);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int32_t row = order[task % rows];
      const int64_t bh = task / rows;
      run_task(pb, tiles, bh / heads, bh % heads, row);
    }
  }
}

}  // namespace

namespace cpu {

bool isa_supported(Isa isa) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (isa == Isa::avx512) return __builtin_cpu_supports("x86-64-v4");
  if (isa == Isa::avx2) return __builtin_cpu_supports("x86-64-v3");
#else
  if (isa == Isa::avx512 || isa == Isa::avx2) return false;
#endif
  return true;
}

void force_isa(Isa isa) {
  require(isa_supported(isa), "isa", "an instruction set this processor supports",
          static_cast<int>(isa));
  forced_isa = isa;
}

Isa active_isa() {
  const Isa forced = forced_isa;
  if (forced != Isa::best) return forced;
  for (Isa isa : {Isa::avx512, Isa::avx2}) {
    if (isa_supported(isa)) return isa;
  }
  return Isa::baseline;
}

}  // namespace cpu

void attention_cpu(const Plan& plan, const TensorView& q, const TensorView& k,
                   const TensorView& v, const TensorView& out, float* lse,
                   const AttentionOptions& options) {
  validate_attention_args(plan, q, k, v, out);
  detail::validate_options(options);
  detail::require_host(q, "attention_cpu");
  const Problem pb{&plan, q, k, v, out, lse,
                   static_cast<float>(detail::resolve_scale(options.scale, q.dim) * std::numbers::log2e)};
  const int threads = options.threads > 0 ? options.threads : omp_get_max_threads();
  switch (q.dtype) {
    case DType::f32: run_all<float>(plan, pb, threads); break;
    case DType::bf16: run_all<bf16_t>(plan, pb, threads); break;
    case DType::f16: run_all<f16_t>(plan, pb, threads); break;
  }
}

}  // namespace radial
