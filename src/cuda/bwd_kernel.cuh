// The portable block-sparse backward (sm80 and newer), FlashAttention-2 style, in up to four
// launches on one stream:
//  1. preprocess: per query row delta = sum_d dO * O (float32) and the forward's lse in base 2
//     (+inf on the padded rows past seq, so that their probabilities come out 0); zeroes the
//     float32 dQ accumulator when dQ goes by atomics;
//  2. dK/dV: one CTA per (batch, head, key block) walking the plan's CSC list of the query
//     blocks that keep that key block, 64 query rows at a time (double-buffered cp.async). Its
//     warps split the block's keys, 16 each, and compute everything transposed (keys as the M
//     dimension): S^T = K Q^T, P^T = exp2(S^T log2e scale - lse2), dV += P^T dO,
//     dP^T = V dO^T, dS^T = P^T (dP^T - delta), dK += dS^T Q, all on mma.sync m16n8k16 with
//     float32 accumulators; dK and dV stay in registers over the whole list. Unless
//     deterministic, dS^T also goes to shared memory and dQ += dS K is added by float32 atomics
//     into the accumulator;
//  3. either the conversion of the accumulator (times the scale) to dQ's dtype and layout, or,
//     deterministic, the dQ kernel: one CTA per (batch, head, query block) walking the CSR row
//     (the forward's walk), recomputing P and dS, dQ in registers: bit-identical run to run.
// Keys at index >= key_limit get P = 0, so their dK and dV are exactly 0; key blocks no query
// keeps have empty CSC lists and write zeros.
#pragma once

#include <cstdint>
#include <stdexcept>

#include "cuda/bwd_params.hpp"
#include "cuda/check.hpp"
#include "cuda/fwd_kernel.cuh"  // swz (the swizzled tile layout) and load_rows (cp.async tiles)
#include "cuda/ptx.cuh"

namespace radial::cuda_detail {

constexpr float kLog2e = 1.4426950408889634f;

// The dK/dV kernel's shape: one key block of kBM keys per CTA, 16 keys per warp; query tiles of
// 64 rows (one or two per query block), Q and dO double buffered. WithDQ: also dQ by atomics.
template <int D, int Block, bool WithDQ>
struct BwdKVConfig {
  static constexpr int kD = D;
  static constexpr int kBM = Block;  // keys per CTA (load_rows and prefetch_block read kBM)
  static constexpr int kQT = 64;     // query rows per tile
  static constexpr int kWarps = Block / 16;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kChunks = D / 8;
  static constexpr int kTilesPerBlock = Block / kQT;
  static constexpr bool kWithDQ = WithDQ;
  // dQ (kQT x D) is split over the warps: kQMT m-tiles of 16 rows, kDqGroups column groups.
  static constexpr int kQMT = kQT / 16;
  static constexpr int kDqGroups = kWarps / kQMT;
  static constexpr int kKVBytes = Block * D * 2;  // the K tile, likewise V
  static constexpr int kTileBytes = kQT * D * 2;  // a Q tile, likewise dO
  static constexpr int kRowBytes = kQT * 4;       // one float per query row (lse2, delta)
  static constexpr int kOffV = kKVBytes;
  static constexpr int kOffQ = 2 * kKVBytes;                 // two stages
  static constexpr int kOffDO = kOffQ + 2 * kTileBytes;      // two stages
  static constexpr int kOffLse = kOffDO + 2 * kTileBytes;    // two stages
  static constexpr int kOffDelta = kOffLse + 2 * kRowBytes;  // two stages
  static constexpr int kOffDS = kOffDelta + 2 * kRowBytes;   // dS^T, [Block keys][kQT queries]
  static constexpr int kSmemBytes = kOffDS + (WithDQ ? Block * kQT * 2 : 0);
  static_assert(D == 64 || D == 128, "head dim 64 or 128");
  static_assert(Block == 64 || Block == 128, "block 64 or 128");
  static_assert(kWarps % kQMT == 0 && (D / 8) % (2 * kDqGroups) == 0, "dQ warp split");
};

// The deterministic dQ kernel's shape: the forward's (one query block per CTA, 16 rows per warp,
// 64-key tiles, K and V double buffered).
template <int D, int Block>
struct BwdQConfig {
  static constexpr int kD = D;
  static constexpr int kBM = Block;
  static constexpr int kBN = 64;
  static constexpr int kWarps = Block / 16;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kChunks = D / 8;
  static constexpr int kTilesPerBlock = Block / kBN;
  static constexpr int kBlockBytes = Block * D * 2;  // Q, likewise dO
  static constexpr int kTileBytes = kBN * D * 2;     // a K tile, likewise V
  static constexpr int kOffDO = kBlockBytes;
  static constexpr int kOffK = 2 * kBlockBytes;            // two stages
  static constexpr int kOffV = kOffK + 2 * kTileBytes;     // two stages
  static constexpr int kSmemBytes = kOffV + 2 * kTileBytes;
};

// Two 16-bit values of one register as floats.
template <class T>
__device__ __forceinline__ float2 unpack2(uint32_t x);
template <>
__device__ __forceinline__ float2 unpack2<__nv_bfloat16>(uint32_t x) {
  return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&x));
}
template <>
__device__ __forceinline__ float2 unpack2<__half>(uint32_t x) {
  return __half22float2(*reinterpret_cast<const __half2*>(&x));
}

// The two products every backward step is made of, for one warp's 16 rows against an N-row
// tile, with the forward's fragment layouts (fwd_kernel.cuh, FwdWarp): tiles of D columns are
// swizzled with C = D / 8 chunks per row, and every ldmatrix address is one of four registers
// plus a constant.
template <class T, int D, int N>
struct WarpProducts {
  static constexpr int C = D / 8;
  static constexpr int KS = D / 16;  // k-steps over the head dim
  static constexpr int NT = N / 8;   // 8-column n-tiles of an [16 x N] product
  static constexpr int DT = D / 8;   // 8-column n-tiles of an [16 x D] product
  //  a_off: the warp's 16 rows as the A operand (rows 0-7 / 8-15 at k 0-7, then at k 8-15).
  //  b_off: an N-row tile as the B operand of A B^T (rows 0-7 at k 0-7, at k 8-15, rows 8-15 ..).
  //  t_off: an N-row tile as the B operand of X B, transposed (rows 0-7 / 8-15 at columns 0-7,
  //         then at columns 8-15).
  uint32_t a_off[4], b_off[4], t_off[4];

  __device__ __forceinline__ void init(int wrow, int lane) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      a_off[i] = swz<C>(wrow + (lane & 15), i * 2 + (lane >> 4));
      b_off[i] = swz<C>((lane & 7) + ((lane >> 4) << 3), i * 2 + ((lane >> 3) & 1));
      t_off[i] = swz<C>((lane & 7) + (((lane >> 3) & 1) << 3), i * 2 + (lane >> 4));
    }
  }

  // acc = A B^T: the warp's 16 rows of the tile at sA times the N rows of the tile at sB.
  __device__ __forceinline__ void abt(float (&acc)[NT][4], uint32_t sA, uint32_t sB) const {
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.f;
#pragma unroll
    for (int ks = 0; ks < KS; ++ks) {
      uint32_t a[4];
      ldmatrix_x4(a, sA + a_off[ks & 3] + (ks >> 2) * 128);
#pragma unroll
      for (int np = 0; np < NT / 2; ++np) {
        uint32_t b[4];
        ldmatrix_x4(b, sB + b_off[ks & 3] + (ks >> 2) * 128 + np * 16 * C * 16);
        mma_16816<T>(acc[2 * np], a, b[0], b[1]);
        mma_16816<T>(acc[2 * np + 1], a, b[2], b[3]);
      }
    }
  }

  // acc += X B: X (16 x N, this warp's accumulator layout, rounded to T) times the N x D tile
  // at sB. The accumulator layout of X is already the A-fragment layout.
  __device__ __forceinline__ void accumulate(float (&acc)[DT][4], const float (&x)[NT][4],
                                             uint32_t sB) const {
#pragma unroll
    for (int ks = 0; ks < N / 16; ++ks) {
      uint32_t a[4];
      a[0] = pack2<T>(x[2 * ks][0], x[2 * ks][1]);
      a[1] = pack2<T>(x[2 * ks][2], x[2 * ks][3]);
      a[2] = pack2<T>(x[2 * ks + 1][0], x[2 * ks + 1][1]);
      a[3] = pack2<T>(x[2 * ks + 1][2], x[2 * ks + 1][3]);
#pragma unroll
      for (int dp = 0; dp < DT / 2; ++dp) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, sB + t_off[dp & 3] + (dp >> 2) * 128 + ks * 16 * C * 16);
        mma_16816<T>(acc[2 * dp], a, b[0], b[1]);
        mma_16816<T>(acc[2 * dp + 1], a, b[2], b[3]);
      }
    }
  }
};

// ---------------------------------------------------------------------------------------------
// 1. Preprocess: one 16-byte chunk of O and dO per thread, D / 8 threads per row.

constexpr int kBwdAuxThreads = 256;

template <class T, int D>
__global__ void __launch_bounds__(kBwdAuxThreads) bwd_preprocess_kernel(const BwdParams p) {
  constexpr int C = D / 8;
  constexpr int kRows = kBwdAuxThreads / C;
  const int c = static_cast<int>(threadIdx.x) % C;
  const int64_t g = static_cast<int64_t>(blockIdx.x) * kRows + threadIdx.x / C;  // workspace row
  const int64_t total = p.batch_heads * p.seq_pad;
  const int64_t bh = g / p.seq_pad;
  const int s = static_cast<int>(g - bh * p.seq_pad);
  const bool real = g < total && s < p.seq;
  float acc = 0.f;
  if (real) {
    const int64_t b = bh / p.heads, h = bh % p.heads;
    const uint4 o = *reinterpret_cast<const uint4*>(static_cast<const T*>(p.out) + b * p.o_sb +
                                                    s * p.o_ss + h * p.o_sh + c * 8);
    const uint4 d = *reinterpret_cast<const uint4*>(static_cast<const T*>(p.d_out) +
                                                    b * p.do_sb + s * p.do_ss + h * p.do_sh +
                                                    c * 8);
    const uint32_t ow[4] = {o.x, o.y, o.z, o.w}, dw[4] = {d.x, d.y, d.z, d.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 a = unpack2<T>(ow[i]), e = unpack2<T>(dw[i]);
      acc = fmaf(a.x, e.x, fmaf(a.y, e.y, acc));
    }
  }
  // The C lanes of a row are neighbours in one warp (C divides 32).
#pragma unroll
  for (int m = C / 2; m >= 1; m /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, m);
  if (g >= total) return;
  if (c == 0) {
    // The Hopper kernel's order within each 64-row tile (seq_pad is a multiple of 64).
    const int64_t slot = p.hopper_rows ? g - (s & 63) + hopper_row_slot(s & 63) : g;
    p.delta[slot] = acc;
    float l2 = INFINITY;  // rows past seq (and rows that saw no key): P = 0
    if (real) {
      const float l = p.lse[bh * p.seq + s];
      if (l != -INFINITY) l2 = l * kLog2e;
    }
    p.lse2[slot] = l2;
  }
  if (p.dq_accum != nullptr) {
    float4* z = reinterpret_cast<float4*>(p.dq_accum + g * D + c * 8);
    z[0] = make_float4(0.f, 0.f, 0.f, 0.f);
    z[1] = make_float4(0.f, 0.f, 0.f, 0.f);
  }
}

// 3a. dQ = scale x the accumulator, in dQ's dtype and layout: 8 elements per thread.
// kOrder: the accumulator's (DQAccumOrder).
template <class T, int D, DQAccumOrder kOrder>
__global__ void __launch_bounds__(kBwdAuxThreads) bwd_convert_dq_kernel(const BwdParams p) {
  constexpr int C = D / 8;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kBwdAuxThreads + threadIdx.x;
  if (i >= p.batch_heads * p.seq * C) return;
  const int c = static_cast<int>(i % C);
  const int64_t row = i / C;
  const int64_t bh = row / p.seq;
  const int s = static_cast<int>(row - bh * p.seq);
  float4 a, e;
  if constexpr (kOrder == DQAccumOrder::rows) {
    const float4* src =
        reinterpret_cast<const float4*>(p.dq_accum + (bh * p.seq_pad + s) * D + c * 8);
    a = src[0];
    e = src[1];
  } else {
    // Columns 8 c + 2 j + {0, 1}: one float pair in each of four consecutive slots.
    const float* head = p.dq_accum + bh * p.seq_pad * D;
    float2 x[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      x[j] = *reinterpret_cast<const float2*>(head + hopper_dq_offset(s, c * 8 + 2 * j, D));
    }
    a = make_float4(x[0].x, x[0].y, x[1].x, x[1].y);
    e = make_float4(x[2].x, x[2].y, x[3].x, x[3].y);
  }
  const float k = p.scale;
  uint4 o;
  o.x = pack2<T>(a.x * k, a.y * k);
  o.y = pack2<T>(a.z * k, a.w * k);
  o.z = pack2<T>(e.x * k, e.y * k);
  o.w = pack2<T>(e.z * k, e.w * k);
  const int64_t b = bh / p.heads, h = bh % p.heads;
  *reinterpret_cast<uint4*>(static_cast<T*>(p.d_q) + b * p.dq_sb + s * p.dq_ss + h * p.dq_sh +
                            c * 8) = o;
}

// N floats (a multiple of 4, 16-byte aligned) from global to shared memory, one 16-byte chunk
// by each thread whose `thread` is in 0..N/4-1.
template <int N>
__device__ __forceinline__ void load_floats(uint32_t dst, const float* src, int thread) {
  if (thread >= 0 && thread < N / 4) cp_async_16(dst + thread * 16, src + thread * 4, true);
}

// Stores a warp's 16 rows x D accumulator (rows wrow.., times `mul`, rounded to T) through its
// own rows of the swizzled shared tile at `tile` to global rows row0 + r < limit, 16 bytes per
// store.
template <class T, int D>
__device__ __forceinline__ void store_rows(unsigned char* tile, const float (&acc)[D / 8][4],
                                           float mul, int wrow, int lane, T* dst, int64_t stride,
                                           int row0, int limit) {
  constexpr int C = D / 8;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int r = wrow + (lane >> 2) + half * 8;
#pragma unroll
    for (int dt = 0; dt < C; ++dt) {
      *reinterpret_cast<uint32_t*>(tile + swz<C>(r, dt) + (lane & 3) * 4) =
          pack2<T>(acc[dt][2 * half] * mul, acc[dt][2 * half + 1] * mul);
    }
  }
  __syncwarp();
#pragma unroll
  for (int i = 0; i < 16 * C / 32; ++i) {
    const int idx = lane + i * 32;
    const int r = wrow + idx / C, c = idx % C;
    if (row0 + r < limit) {
      *reinterpret_cast<uint4*>(dst + static_cast<int64_t>(row0 + r) * stride + c * 8) =
          *reinterpret_cast<const uint4*>(tile + swz<C>(r, c));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 2. dK/dV (and dQ by atomics).

template <class T, class Cfg>
struct BwdKVWarp {
  static constexpr int D = Cfg::kD, QT = Cfg::kQT, C = Cfg::kChunks;
  static constexpr int NQ = QT / 8;  // n-tiles over a tile's queries
  static constexpr int DT = D / 8;
  static constexpr int CS = QT / 8;  // chunks per row of dS^T in shared memory
  static constexpr int NDQ = DT / Cfg::kDqGroups;  // dQ n-tiles of one warp
  static constexpr int NKT = NDQ / 2 < 4 ? NDQ / 2 : 4;
  using Ops = WarpProducts<T, D, QT>;

  Ops ops;
  float dk[DT][4], dv[DT][4];
  int wrow;
  // dQ phase: dS^T (transposed) as the A operand of dS K for this warp's m-tile (matrices: keys
  // 0-7 at queries 0-7, at queries 8-15, keys 8-15 ...), and K (transposed) as the B operand
  // for this warp's column group, pair dp at kt_off[dp & 3] + 128 (dp >> 2).
  uint32_t s_off, kt_off[NKT];
  int dq_row, dq_col;  // first row (in the query tile) and column of this warp's dQ part

  __device__ __forceinline__ void init(int warp, int lane) {
    wrow = warp * 16;
    ops.init(wrow, lane);
#pragma unroll
    for (int dt = 0; dt < DT; ++dt)
#pragma unroll
      for (int j = 0; j < 4; ++j) dk[dt][j] = dv[dt][j] = 0.f;
    const int mt = warp % Cfg::kQMT, grp = warp / Cfg::kQMT;
    s_off = swz<CS>((lane & 7) + ((lane >> 4) << 3), mt * 2 + ((lane >> 3) & 1));
#pragma unroll
    for (int i = 0; i < NKT; ++i) {
      kt_off[i] = swz<C>((lane & 7) + (((lane >> 3) & 1) << 3),
                         (grp * (NDQ / 2) + i) * 2 + (lane >> 4));
    }
    dq_row = mt * 16;
    dq_col = grp * NDQ * 8;
  }

  // One query tile (Q, dO, lse2 and delta of its rows at sQ, sdO, lse, delta): everything but
  // dQ. Keys of this warp at or past key_limit (only when `mask`) get P = 0.
  __device__ __forceinline__ void tile(uint32_t sK, uint32_t sV, uint32_t sQ, uint32_t sdO,
                                       const float* lse, const float* delta, unsigned char* ds,
                                       int key0, bool mask, int key_limit, float scale_log2,
                                       int lane) {
    float s[NQ][4];
    ops.abt(s, sK, sQ);  // S^T = K Q^T
    const int key = key0 + wrow + (lane >> 2);
    const bool dead0 = mask && key >= key_limit, dead1 = mask && key + 8 >= key_limit;
#pragma unroll
    for (int nt = 0; nt < NQ; ++nt) {
      const float2 l = *reinterpret_cast<const float2*>(lse + nt * 8 + (lane & 3) * 2);
      s[nt][0] = dead0 ? 0.f : fast_exp2(fmaf(s[nt][0], scale_log2, -l.x));
      s[nt][1] = dead0 ? 0.f : fast_exp2(fmaf(s[nt][1], scale_log2, -l.y));
      s[nt][2] = dead1 ? 0.f : fast_exp2(fmaf(s[nt][2], scale_log2, -l.x));
      s[nt][3] = dead1 ? 0.f : fast_exp2(fmaf(s[nt][3], scale_log2, -l.y));
    }
    ops.accumulate(dv, s, sdO);  // dV += P^T dO
    float dp[NQ][4];
    ops.abt(dp, sV, sdO);  // dP^T = V dO^T
#pragma unroll
    for (int nt = 0; nt < NQ; ++nt) {
      const float2 e = *reinterpret_cast<const float2*>(delta + nt * 8 + (lane & 3) * 2);
      dp[nt][0] = s[nt][0] * (dp[nt][0] - e.x);  // dS^T = P^T (dP^T - delta)
      dp[nt][1] = s[nt][1] * (dp[nt][1] - e.y);
      dp[nt][2] = s[nt][2] * (dp[nt][2] - e.x);
      dp[nt][3] = s[nt][3] * (dp[nt][3] - e.y);
    }
    ops.accumulate(dk, dp, sQ);  // dK += dS^T Q (the scale comes at the end)
    if constexpr (Cfg::kWithDQ) {
      // dS^T to shared memory as [keys][queries], for the dQ product of every warp.
      const int r = wrow + (lane >> 2);
#pragma unroll
      for (int nt = 0; nt < NQ; ++nt) {
        *reinterpret_cast<uint32_t*>(ds + swz<CS>(r, nt) + (lane & 3) * 4) =
            pack2<T>(dp[nt][0], dp[nt][1]);
        *reinterpret_cast<uint32_t*>(ds + swz<CS>(r + 8, nt) + (lane & 3) * 4) =
            pack2<T>(dp[nt][2], dp[nt][3]);
      }
    }
  }

  // dQ (unscaled) += dS K for this warp's part of the query tile, by float32 atomics into the
  // accumulator rows of the tile (`accum` points at the tile's first row). At most 8 n-tiles
  // (32 accumulators) at a time, so that dK and dV stay in registers without spilling: with
  // four warps and head dim 128 a warp's 16 columns go in two passes.
  __device__ __forceinline__ void add_dq(uint32_t sdS, uint32_t sK, float* accum,
                                         int lane) const {
    constexpr int NP = NDQ < 8 ? NDQ : 8;  // n-tiles per pass
    float* r0 = accum + static_cast<int64_t>(dq_row + (lane >> 2)) * D + dq_col + (lane & 3) * 2;
    float* r1 = r0 + 8 * D;
#pragma unroll
    for (int pass = 0; pass < NDQ / NP; ++pass) {
      float acc[NP][4];
#pragma unroll
      for (int nt = 0; nt < NP; ++nt) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.f;
#pragma unroll
      for (int ks = 0; ks < Cfg::kBM / 16; ++ks) {
        uint32_t a[4];
        ldmatrix_x4_trans(a, sdS + s_off + ks * 16 * CS * 16);
#pragma unroll
        for (int dp = 0; dp < NP / 2; ++dp) {
          const int pair = pass * (NP / 2) + dp;  // column pair within this warp's columns
          uint32_t b[4];
          ldmatrix_x4_trans(b, sK + kt_off[pair & 3] + (pair >> 2) * 128 + ks * 16 * C * 16);
          mma_16816<T>(acc[2 * dp], a, b[0], b[1]);
          mma_16816<T>(acc[2 * dp + 1], a, b[2], b[3]);
        }
      }
#pragma unroll
      for (int nt = 0; nt < NP; ++nt) {
        const int col = (pass * NP + nt) * 8;
        atomicAdd(r0 + col, acc[nt][0]);
        atomicAdd(r0 + col + 1, acc[nt][1]);
        atomicAdd(r1 + col, acc[nt][2]);
        atomicAdd(r1 + col + 1, acc[nt][3]);
      }
    }
  }
};

template <class T, class Cfg>
__global__ void __launch_bounds__(Cfg::kThreads, 1) bwd_kv_kernel(const BwdParams p) {
  constexpr int BM = Cfg::kBM, QT = Cfg::kQT, TPB = Cfg::kTilesPerBlock;
  extern __shared__ __align__(128) unsigned char smem[];
  const uint32_t base = smem_addr(smem);
  const uint32_t sK = base, sV = base + Cfg::kOffV;
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int warp = static_cast<int>(threadIdx.x) >> 5;

  // Work item: heads vary slowest (CTAs running together share one head's Q and dO in L2);
  // within a head, key blocks in col_order (choice.row_order: locality, heavy-first, natural).
  const int64_t item = blockIdx.x;
  const int rank = static_cast<int>(item % p.block_rows);
  const int64_t bh = item / p.block_rows;
  const int64_t b = bh / p.heads, h = bh % p.heads;
  const int kblock = p.col_order != nullptr ? __ldg(p.col_order + rank) : rank;
  const int k0 = kblock * BM;
  const int begin = __ldg(p.col_offset + kblock);
  const int n_tiles = (__ldg(p.col_offset + kblock + 1) - begin) * TPB;

  const T* qg = static_cast<const T*>(p.q) + b * p.q_sb + h * p.q_sh;
  const T* kg = static_cast<const T*>(p.k) + b * p.k_sb + h * p.k_sh;
  const T* vg = static_cast<const T*>(p.v) + b * p.v_sb + h * p.v_sh;
  const T* dog = static_cast<const T*>(p.d_out) + b * p.do_sb + h * p.do_sh;
  const float* lse2 = p.lse2 + bh * p.seq_pad;
  const float* delta = p.delta + bh * p.seq_pad;
  float* accum = Cfg::kWithDQ ? p.dq_accum + bh * p.seq_pad * Cfg::kD : nullptr;

  const auto query_start = [&](int t) {
    return __ldg(p.row_index + begin + t / TPB) * BM + (t % TPB) * QT;
  };
  // Query tile at row q0 into stage `stage`: rows past seq zero-filled; the workspace rows are
  // padded to whole blocks, so lse2 and delta need no bound.
  const auto load_tile = [&](int stage, int q0) {
    load_rows<Cfg, QT>(base + Cfg::kOffQ + stage * Cfg::kTileBytes, qg, p.q_ss, q0, p.seq);
    load_rows<Cfg, QT>(base + Cfg::kOffDO + stage * Cfg::kTileBytes, dog, p.do_ss, q0, p.seq);
    const int t = static_cast<int>(threadIdx.x);
    load_floats<QT>(base + Cfg::kOffLse + stage * Cfg::kRowBytes, lse2 + q0, t);
    load_floats<QT>(base + Cfg::kOffDelta + stage * Cfg::kRowBytes, delta + q0, t - QT / 4);
  };

  BwdKVWarp<T, Cfg> w;
  w.init(warp, lane);

  // Two query tiles in flight while one computes; one commit group per tile (empty past the
  // end), so "all but the newest group" is always tile t (K and V come with tile 0).
  int q0 = 0, q1 = 0;
  if (n_tiles > 0) {
    load_rows<Cfg, BM>(sK, kg, p.k_ss, k0, p.key_limit);
    load_rows<Cfg, BM>(sV, vg, p.v_ss, k0, p.key_limit);
    q0 = query_start(0);
    load_tile(0, q0);
  }
  cp_async_commit();
  if (n_tiles > 1) {
    q1 = query_start(1);
    load_tile(1, q1);
  }
  cp_async_commit();
  const bool mask = k0 + BM > p.key_limit;
  for (int t = 0; t < n_tiles; ++t) {
    const int q2 = t + 2 < n_tiles ? query_start(t + 2) : 0;
    const int stage = t & 1;
    cp_async_wait<1>();
    __syncthreads();  // tile t has landed; every warp is done with the dS^T of tile t-1
    w.tile(sK, sV, base + Cfg::kOffQ + stage * Cfg::kTileBytes,
           base + Cfg::kOffDO + stage * Cfg::kTileBytes,
           reinterpret_cast<const float*>(smem + Cfg::kOffLse + stage * Cfg::kRowBytes),
           reinterpret_cast<const float*>(smem + Cfg::kOffDelta + stage * Cfg::kRowBytes),
           smem + Cfg::kOffDS, k0, mask, p.key_limit, p.scale_log2, lane);
    __syncthreads();  // every warp is done with stage t % 2, and dS^T is whole
    if (t + 2 < n_tiles) load_tile(stage, q2);
    cp_async_commit();
    if constexpr (Cfg::kWithDQ) {
      w.add_dq(base + Cfg::kOffDS, sK, accum + static_cast<int64_t>(q0) * Cfg::kD, lane);
    }
    q0 = q1;
    q1 = q2;
  }

  // Epilogue: dK (times the scale) and dV through this warp's own rows of the K and V tiles;
  // keys past seq are not stored, keys in [key_limit, seq) get their zeros.
  cp_async_wait<0>();
  __syncthreads();
  store_rows<T, Cfg::kD>(smem, w.dk, p.scale, w.wrow, lane,
                         static_cast<T*>(p.d_k) + b * p.dk_sb + h * p.dk_sh, p.dk_ss, k0, p.seq);
  store_rows<T, Cfg::kD>(smem + Cfg::kOffV, w.dv, 1.f, w.wrow, lane,
                         static_cast<T*>(p.d_v) + b * p.dv_sb + h * p.dv_sh, p.dv_ss, k0, p.seq);
}

// ---------------------------------------------------------------------------------------------
// 3b. Deterministic dQ: the forward's walk over the CSR row, recomputing P and dS.

template <class T, class Cfg>
__global__ void __launch_bounds__(Cfg::kThreads, 1) bwd_dq_kernel(const BwdParams p) {
  constexpr int D = Cfg::kD, BM = Cfg::kBM, BN = Cfg::kBN, TPB = Cfg::kTilesPerBlock;
  constexpr int TILE = Cfg::kTileBytes, NT = BN / 8, DT = D / 8;
  extern __shared__ __align__(128) unsigned char smem[];
  const uint32_t sQ = smem_addr(smem), sdO = sQ + Cfg::kOffDO;
  const uint32_t sK = sQ + Cfg::kOffK, sV = sQ + Cfg::kOffV;
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int warp = static_cast<int>(threadIdx.x) >> 5;
  const int wrow = warp * 16;

  const int64_t item = blockIdx.x;
  const int rank = static_cast<int>(item % p.block_rows);
  const int64_t bh = item / p.block_rows;
  const int64_t b = bh / p.heads, h = bh % p.heads;
  const int qblock = p.row_order != nullptr ? __ldg(p.row_order + rank) : rank;
  const int q0 = qblock * BM;
  const int begin = __ldg(p.row_offset + qblock);
  const int n_tiles = (__ldg(p.row_offset + qblock + 1) - begin) * TPB;

  const T* qg = static_cast<const T*>(p.q) + b * p.q_sb + h * p.q_sh;
  const T* kg = static_cast<const T*>(p.k) + b * p.k_sb + h * p.k_sh;
  const T* vg = static_cast<const T*>(p.v) + b * p.v_sb + h * p.v_sh;
  const T* dog = static_cast<const T*>(p.d_out) + b * p.do_sb + h * p.do_sh;
  // This thread's two rows (lane / 4 and lane / 4 + 8 of the warp's 16): base-2 lse and delta.
  const int64_t row = bh * p.seq_pad + q0 + wrow + (lane >> 2);
  const float l2[2] = {p.lse2[row], p.lse2[row + 8]};
  const float dl[2] = {p.delta[row], p.delta[row + 8]};

  const auto key_start = [&](int t) {
    return __ldg(p.col_index + begin + t / TPB) * BM + (t % TPB) * BN;
  };

  WarpProducts<T, D, BN> ops;
  ops.init(wrow, lane);
  float dq[DT][4];
#pragma unroll
  for (int dt = 0; dt < DT; ++dt) dq[dt][0] = dq[dt][1] = dq[dt][2] = dq[dt][3] = 0.f;

  load_rows<Cfg, BM>(sQ, qg, p.q_ss, q0, p.seq);
  load_rows<Cfg, BM>(sdO, dog, p.do_ss, q0, p.seq);
  int key0 = n_tiles > 0 ? key_start(0) : 0;
  int key1 = n_tiles > 1 ? key_start(1) : 0;
  if (n_tiles > 0) {
    load_rows<Cfg, BN>(sK, kg, p.k_ss, key0, p.key_limit);
    load_rows<Cfg, BN>(sV, vg, p.v_ss, key0, p.key_limit);
  }
  cp_async_commit();
  if (n_tiles > 1) {
    load_rows<Cfg, BN>(sK + TILE, kg, p.k_ss, key1, p.key_limit);
    load_rows<Cfg, BN>(sV + TILE, vg, p.v_ss, key1, p.key_limit);
  }
  cp_async_commit();
  for (int t = 0; t < n_tiles; ++t) {
    const int key2 = t + 2 < n_tiles ? key_start(t + 2) : 0;
    const uint32_t buf = (t & 1) * TILE;
    cp_async_wait<1>();
    __syncthreads();  // tile t has landed
    float s[NT][4], dp[NT][4];
    ops.abt(s, sQ, sK + buf);   // S = Q K^T
    ops.abt(dp, sdO, sV + buf);  // dP = dO V^T
    const bool mask = key0 + BN > p.key_limit;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int key = key0 + nt * 8 + (lane & 3) * 2 + (j & 1);
        const float pr = mask && key >= p.key_limit
                             ? 0.f
                             : fast_exp2(fmaf(s[nt][j], p.scale_log2, -l2[j >> 1]));
        s[nt][j] = pr * (dp[nt][j] - dl[j >> 1]);  // dS = P (dP - delta)
      }
    }
    ops.accumulate(dq, s, sK + buf);  // dQ += dS K
    __syncthreads();  // every warp is done with buffer t % 2
    if (t + 2 < n_tiles) {
      load_rows<Cfg, BN>(sK + buf, kg, p.k_ss, key2, p.key_limit);
      load_rows<Cfg, BN>(sV + buf, vg, p.v_ss, key2, p.key_limit);
    }
    cp_async_commit();
    key0 = key1;
    key1 = key2;
  }
  cp_async_wait<0>();
  __syncthreads();
  store_rows<T, D>(smem, dq, p.scale, wrow, lane,
                   static_cast<T*>(p.d_q) + b * p.dq_sb + h * p.dq_sh, p.dq_ss, q0, p.seq);
}

// ---------------------------------------------------------------------------------------------
// Launches.

template <class Kernel>
void launch_with_smem(Kernel kernel, int threads, int smem, int64_t grid, cudaStream_t stream,
                      const BwdParams& p, const char* what) {
  RADIAL_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  kernel<<<static_cast<unsigned>(grid), threads, smem, stream>>>(p);
  check_cuda(cudaGetLastError(), what);
}

// The workspace pointers match the mode (the entry point sets them with bwd_set_workspace).
inline void require_workspace(const BwdParams& p, bool deterministic) {
  if (p.lse2 == nullptr || p.delta == nullptr || (p.dq_accum == nullptr) != deterministic) {
    throw std::logic_error("radial: launch_bwd: workspace pointers do not match the mode");
  }
}

template <class T, int D, int Block>
void launch_bwd_block(const BwdParams& params, bool deterministic, BwdMainKernel main,
                      cudaStream_t stream) {
  require_workspace(params, deterministic);
  BwdParams p = params;
  p.hopper_rows = !deterministic && main != nullptr;
  constexpr int C = D / 8;
  const int64_t rows = p.batch_heads * p.seq_pad;
  const int64_t prep_grid = (rows + kBwdAuxThreads / C - 1) / (kBwdAuxThreads / C);
  bwd_preprocess_kernel<T, D><<<static_cast<unsigned>(prep_grid), kBwdAuxThreads, 0, stream>>>(p);
  check_cuda(cudaGetLastError(), "bwd_preprocess_kernel<<<...>>> (delta and lse of the backward)");
  const int64_t tiles = p.batch_heads * p.block_rows;
  if (deterministic) {
    using KV = BwdKVConfig<D, Block, false>;
    launch_with_smem(bwd_kv_kernel<T, KV>, KV::kThreads, KV::kSmemBytes, tiles, stream, p,
                     "bwd_kv_kernel<<<...>>> (dK and dV of the backward)");
    using Q = BwdQConfig<D, Block>;
    launch_with_smem(bwd_dq_kernel<T, Q>, Q::kThreads, Q::kSmemBytes, tiles, stream, p,
                     "bwd_dq_kernel<<<...>>> (deterministic dQ of the backward)");
  } else {
    DQAccumOrder order = DQAccumOrder::rows;
    if (main != nullptr) {  // the Hopper kernel
      order = main(p, stream);
    } else {
      using KV = BwdKVConfig<D, Block, true>;
      launch_with_smem(bwd_kv_kernel<T, KV>, KV::kThreads, KV::kSmemBytes, tiles, stream, p,
                       "bwd_kv_kernel<<<...>>> (dK, dV and dQ by atomics of the backward)");
    }
    const int64_t chunks = p.batch_heads * p.seq * C;
    const unsigned grid = static_cast<unsigned>((chunks + kBwdAuxThreads - 1) / kBwdAuxThreads);
    if (order == DQAccumOrder::rows) {
      bwd_convert_dq_kernel<T, D, DQAccumOrder::rows><<<grid, kBwdAuxThreads, 0, stream>>>(p);
    } else {
      bwd_convert_dq_kernel<T, D, DQAccumOrder::hopper_fragments>
          <<<grid, kBwdAuxThreads, 0, stream>>>(p);
    }
    check_cuda(cudaGetLastError(), "bwd_convert_dq_kernel<<<...>>> (dQ of the backward)");
  }
}

template <class T, int D>
void launch_bwd_for(const BwdParams& p, int block_size, bool deterministic, BwdMainKernel main,
                    cudaStream_t stream) {
  if (block_size == 64) {
    launch_bwd_block<T, D, 64>(p, deterministic, main, stream);
  } else {
    launch_bwd_block<T, D, 128>(p, deterministic, main, stream);
  }
}

}  // namespace radial::cuda_detail
