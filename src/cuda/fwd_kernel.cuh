// The portable block-sparse forward kernel (sm80 and newer), FlashAttention-2 style: one CTA
// per (batch, head, query block); its warps split the block's query rows; the key blocks of
// the plan's CSR row stream through shared memory 64 keys at a time (cp.async), scores and
// the output accumulate on the tensor cores (mma.sync m16n8k16, float32), and the softmax runs
// online in registers. Keys at index >= key_limit (the padded tail, unused text) are masked
// token by token; query rows past seq are computed on zeros and never stored.
#pragma once

#include <cstdint>

#include "cuda/block_walk.cuh"
#include "cuda/check.hpp"
#include "cuda/fwd_params.hpp"
#include "cuda/ptx.cuh"

namespace radial::cuda_detail {

// One tile shape and pipeline. The query tile is one plan block (kBM = block size); each warp owns kMT
// m-tiles of 16 rows. kQInRegs keeps Q's fragments in registers for the whole key loop (only
// affordable with one m-tile per warp); otherwise they are re-read from shared memory.
template <int D, int BM, int MT, bool QInRegs, int Stages, int MinBlocks, int Prefetch = 0>
struct FwdConfig {
  static constexpr int kD = D;
  static constexpr int kBM = BM;
  static constexpr int kBN = 64;  // keys per tile: two per block of 128, one per block of 64
  static constexpr int kMT = MT;
  static constexpr bool kQInRegs = QInRegs;
  static constexpr int kWarps = BM / (16 * MT);
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kMinBlocks = MinBlocks;
  static constexpr int kChunks = D / 8;  // 16-byte chunks per row
  static constexpr int kTilesPerBlock = BM / kBN;
  // Stages 1: one K and one V tile, each load overlapping the other product (FA2). Stages 2:
  // K and V double buffered, tile t+2 loading while tile t computes.
  static constexpr int kStages = Stages;
  // Prefetch > 0: at the start of each key block, the K and V rows of the block Prefetch blocks
  // ahead are asked into L2, so that a miss to HBM (and its address translation) is paid
  // long before cp.async needs the data.
  static constexpr int kPrefetch = Prefetch;
  static constexpr int kTileBytes = kBN * D * 2;
  static constexpr int kSmemBytes = BM * D * 2 + 2 * Stages * kTileBytes;  // Q, K tiles, V tiles
  static_assert(D == 64 || D == 128, "head dim 64 or 128");
  static_assert(BM == 64 || BM == 128, "block 64 or 128");
  static_assert(BM % (16 * MT) == 0 && (!QInRegs || MT == 1), "tile shape");
  static_assert(Stages == 1 || Stages == 2, "one or two K/V buffers");
  static_assert(Prefetch == 0 || Stages == 1, "L2 prefetch only in the single-buffer pipeline");
};

// Shared-memory byte offset of 16-byte chunk `chunk` of row `row` in a tile of C chunks per
// row. XOR-ing the chunk with the row's low three bits puts the eight rows an ldmatrix reads
// at one logical chunk into eight different bank groups (no conflicts, no padding).
template <int C>
__device__ __forceinline__ uint32_t swz(int row, int chunk) {
  return static_cast<uint32_t>((row * C + (chunk ^ (row & 7))) * 16);
}

// ROWS rows of D elements from `src` (rows row0.. with `stride` elements between rows) into a
// swizzled shared tile, all threads of the CTA sharing the 16-byte chunks; rows >= limit are
// zero-filled without being read. A thread's rows are kStep apart, a multiple of 8, so its
// swizzled column is the same in each and its addresses advance by constants.
template <class Cfg, int ROWS, class T>
__device__ __forceinline__ void load_rows(uint32_t dst, const T* src, int64_t stride, int row0,
                                          int limit) {
  constexpr int C = Cfg::kChunks;
  constexpr int kStep = Cfg::kThreads / C;
  static_assert(ROWS % kStep == 0 && kStep % 8 == 0, "whole chunks per thread");
  const int r = static_cast<int>(threadIdx.x) / C, c = static_cast<int>(threadIdx.x) % C;
  const uint32_t to = dst + swz<C>(r, c);
  const T* from = src + static_cast<int64_t>(row0 + r) * stride + c * 8;
#pragma unroll
  for (int i = 0; i < ROWS / kStep; ++i) {
    const bool valid = row0 + r + i * kStep < limit;
    cp_async_16(to + i * kStep * C * 16, valid ? from + i * kStep * stride : src, valid);
  }
}

// The BM rows of one key block of K and of V into L2: 128-byte lines spread over the CTA's
// threads; rows >= limit are skipped.
template <class Cfg, class T>
__device__ __forceinline__ void prefetch_block(const T* k, int64_t k_stride, const T* v,
                                               int64_t v_stride, int row0, int limit) {
  constexpr int kLinesPerRow = Cfg::kD * 2 / 128;
  constexpr int kLines = Cfg::kBM * kLinesPerRow;
#pragma unroll
  for (int i = 0; i < (kLines + Cfg::kThreads - 1) / Cfg::kThreads; ++i) {
    const int line = static_cast<int>(threadIdx.x) + i * Cfg::kThreads;
    const int row = row0 + line / kLinesPerRow, part = (line % kLinesPerRow) * 64;
    if (line < kLines && row < limit) {
      prefetch_l2(k + static_cast<int64_t>(row) * k_stride + part);
      prefetch_l2(v + static_cast<int64_t>(row) * v_stride + part);
    }
  }
}

// Per-warp state and the steps of one key tile. Each thread holds, per m-tile, rows lane/4
// and lane/4 + 8 (m16n8 accumulator layout).
template <class T, class Cfg>
struct FwdWarp {
  static constexpr int D = Cfg::kD, BN = Cfg::kBN, MT = Cfg::kMT, C = Cfg::kChunks;
  static constexpr int NT = BN / 8;  // 8-key n-tiles of a score tile
  static constexpr int DT = D / 8;   // 8-column n-tiles of the output
  static constexpr int KS = D / 16;  // k-steps of Q K^T

  float o[MT][DT][4];
  float row_max[MT][2], row_sum[MT][2];
  uint32_t qf[Cfg::kQInRegs ? KS : 1][4];
  // ldmatrix row addresses (byte offsets in a tile) for k-step / column pair i = 0..3. The
  // swizzle XORs only the low three chunk bits, so step 4j + i is offset i plus 128 * j bytes,
  // and further m-tiles or key groups add whole rows: every fragment address is one of these
  // four registers plus a constant.
  //  Q (A operand): matrices = rows 0-7 / 8-15 of the m-tile at k 0-7, then at k 8-15.
  //  K (B operand): keys 0-7 at k 0-7, keys 0-7 at k 8-15, keys 8-15 at k 0-7, at k 8-15.
  //  V (B operand, transposed): keys 0-7 / 8-15 at columns 0-7, then at columns 8-15.
  uint32_t q_off[4], k_off[4], v_off[4];

  __device__ __forceinline__ void init(int wrow, int lane) {
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
      for (int dt = 0; dt < DT; ++dt) o[mt][dt][0] = o[mt][dt][1] = o[mt][dt][2] = o[mt][dt][3] = 0.f;
      row_max[mt][0] = row_max[mt][1] = -INFINITY;
      row_sum[mt][0] = row_sum[mt][1] = 0.f;
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      q_off[i] = swz<C>(wrow + (lane & 15), i * 2 + (lane >> 4));
      k_off[i] = swz<C>((lane & 7) + ((lane >> 4) << 3), i * 2 + ((lane >> 3) & 1));
      v_off[i] = swz<C>((lane & 7) + (((lane >> 3) & 1) << 3), i * 2 + (lane >> 4));
    }
  }

  __device__ __forceinline__ void load_q_fragments(uint32_t sQ) {
#pragma unroll
    for (int ks = 0; ks < KS; ++ks) ldmatrix_x4(qf[ks], sQ + q_off[ks & 3] + (ks >> 2) * 128);
  }

  // s = Q K^T for the key tile at sK.
  __device__ __forceinline__ void scores(float (&s)[MT][NT][4], uint32_t sQ, uint32_t sK) const {
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) s[mt][nt][0] = s[mt][nt][1] = s[mt][nt][2] = s[mt][nt][3] = 0.f;
#pragma unroll
    for (int ks = 0; ks < KS; ++ks) {
      uint32_t a[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        if constexpr (Cfg::kQInRegs) {
          a[mt][0] = qf[ks][0], a[mt][1] = qf[ks][1], a[mt][2] = qf[ks][2], a[mt][3] = qf[ks][3];
        } else {
          ldmatrix_x4(a[mt], sQ + q_off[ks & 3] + (ks >> 2) * 128 + mt * 16 * C * 16);
        }
      }
#pragma unroll
      for (int np = 0; np < NT / 2; ++np) {
        uint32_t kb[4];
        ldmatrix_x4(kb, sK + k_off[ks & 3] + (ks >> 2) * 128 + np * 16 * C * 16);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          mma_16816<T>(s[mt][2 * np], a[mt], kb[0], kb[1]);
          mma_16816<T>(s[mt][2 * np + 1], a[mt], kb[2], kb[3]);
        }
      }
    }
  }

  // Keys at index >= key_limit get -inf (only the tile holding key_limit needs this).
  __device__ __forceinline__ static void mask(float (&s)[MT][NT][4], int key0, int key_limit,
                                              int lane) {
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int key = fragment_key(key0, nt, j, lane);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
          if (key >= key_limit) s[mt][nt][j] = -INFINITY;
      }
    }
  }

  // Online softmax: new running max per row (over the quad that shares it), rescale what was
  // accumulated, exponentiate in base 2 with the scale folded in (s becomes P). Once a row's
  // maximum has settled (most tiles) the rescale factors are all 1 and the warp skips the
  // multiply.
  __device__ __forceinline__ void softmax(float (&s)[MT][NT][4], float scale_log2) {
    float base[MT][2], alpha[MT][2];
    bool settled = true;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        // Pairwise (tree) reductions: short dependency chains, since with two warps per
        // scheduler the fixed-latency stalls of a serial chain are not hidden.
        float m[NT];
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) m[nt] = fmaxf(s[mt][nt][2 * half], s[mt][nt][2 * half + 1]);
#pragma unroll
        for (int step = NT / 2; step >= 1; step /= 2)
#pragma unroll
          for (int i = 0; i < step; ++i) m[i] = fmaxf(m[i], m[i + step]);
        const float mx = quad_max(fmaxf(row_max[mt][half], m[0]));
        base[mt][half] = softmax_base(mx, scale_log2);
        alpha[mt][half] = softmax_alpha(row_max[mt][half], base[mt][half], scale_log2);
        settled = settled && mx == row_max[mt][half];
        row_max[mt][half] = mx;
      }
    }
    if (!__all_sync(0xffffffffu, settled)) {
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int dt = 0; dt < DT; ++dt) {
          o[mt][dt][0] *= alpha[mt][0];
          o[mt][dt][1] *= alpha[mt][0];
          o[mt][dt][2] *= alpha[mt][1];
          o[mt][dt][3] *= alpha[mt][1];
        }
    }
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        float e[NT];
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          const float e0 = softmax_exp(s[mt][nt][2 * half], scale_log2, base[mt][half]);
          const float e1 = softmax_exp(s[mt][nt][2 * half + 1], scale_log2, base[mt][half]);
          s[mt][nt][2 * half] = e0;
          s[mt][nt][2 * half + 1] = e1;
          e[nt] = e0 + e1;
        }
#pragma unroll
        for (int step = NT / 2; step >= 1; step /= 2)
#pragma unroll
          for (int i = 0; i < step; ++i) e[i] += e[i + step];
        row_sum[mt][half] = softmax_sum(row_sum[mt][half], alpha[mt][half], e[0]);
      }
    }
  }

  // O += P V for the value tile at sV. P's accumulator layout is already the A-fragment layout.
  __device__ __forceinline__ void accumulate(const float (&s)[MT][NT][4], uint32_t sV) {
#pragma unroll
    for (int ks = 0; ks < BN / 16; ++ks) {
      uint32_t pa[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        pa[mt][0] = pack2<T>(s[mt][2 * ks][0], s[mt][2 * ks][1]);
        pa[mt][1] = pack2<T>(s[mt][2 * ks][2], s[mt][2 * ks][3]);
        pa[mt][2] = pack2<T>(s[mt][2 * ks + 1][0], s[mt][2 * ks + 1][1]);
        pa[mt][3] = pack2<T>(s[mt][2 * ks + 1][2], s[mt][2 * ks + 1][3]);
      }
#pragma unroll
      for (int dp = 0; dp < DT / 2; ++dp) {
        uint32_t vb[4];
        ldmatrix_x4_trans(vb, sV + v_off[dp & 3] + (dp >> 2) * 128 + ks * 16 * C * 16);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          mma_16816<T>(o[mt][2 * dp], pa[mt], vb[0], vb[1]);
          mma_16816<T>(o[mt][2 * dp + 1], pa[mt], vb[2], vb[3]);
        }
      }
    }
  }

  // One key tile: S = Q K^T, mask, softmax, O += P V.
  __device__ __forceinline__ void tile(uint32_t sQ, uint32_t sK, uint32_t sV, int key0,
                                       int key_limit, float scale_log2, int lane) {
    float s[MT][NT][4];
    scores(s, sQ, sK);
    if (crosses_key_limit(key0, BN, key_limit)) mask(s, key0, key_limit, lane);
    softmax(s, scale_log2);
    accumulate(s, sV);
  }
};

template <class T, class Cfg>
__global__ void __launch_bounds__(Cfg::kThreads, Cfg::kMinBlocks)
    fwd_kernel(const FwdParams p) {
  constexpr int D = Cfg::kD, BM = Cfg::kBM, BN = Cfg::kBN, MT = Cfg::kMT, C = Cfg::kChunks;
  constexpr int TPB = Cfg::kTilesPerBlock;
  constexpr int TILE = Cfg::kTileBytes;

  extern __shared__ __align__(128) unsigned char smem[];
  const uint32_t sQ = smem_addr(smem);
  const uint32_t sK = sQ + BM * D * 2;               // kStages K tiles
  const uint32_t sV = sK + Cfg::kStages * TILE;      // kStages V tiles
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int warp = static_cast<int>(threadIdx.x) >> 5;
  const int wrow = warp * 16 * MT;  // this warp's first row in the query tile

  // Work item: heads vary slowest so that CTAs running together read one head's keys (L2
  // reuse); within a head, block rows go in the order row_order gives (heavy-first or the
  // locality order; natural order when null), and each row's block list is walked from entry
  // row_start (wrapping around; the online softmax does not depend on the order).
  const int64_t item = blockIdx.x;
  const int rank = static_cast<int>(item % p.block_rows);
  const int64_t bh = item / p.block_rows;
  const int64_t b = bh / p.heads, h = bh % p.heads;
  const int qblock = block_row_of_rank(p, rank);
  const int q0 = qblock * BM;
  const BlockWalk walk = block_walk(p, qblock);
  const int n_blocks = walk.n_blocks;
  const int n_tiles = n_blocks * TPB;

  const T* qg = static_cast<const T*>(p.q) + b * p.q_sb + h * p.q_sh;
  const T* kg = static_cast<const T*>(p.k) + b * p.k_sb + h * p.k_sh;
  const T* vg = static_cast<const T*>(p.v) + b * p.v_sb + h * p.v_sh;
  T* og = static_cast<T*>(p.out) + b * p.o_sb + h * p.o_sh;

  const auto key_start = [&](int t) {
    return walk_block(p, walk, t / TPB) * BM + (t % TPB) * BN;
  };
  const auto prefetch = [&](int i) {  // block i of the walk into L2
    if (i < n_blocks) {
      prefetch_block<Cfg>(kg, p.k_ss, vg, p.v_ss, walk_block(p, walk, i) * BM, p.key_limit);
    }
  };

  FwdWarp<T, Cfg> w;
  w.init(wrow, lane);

  load_rows<Cfg, BM>(sQ, qg, p.q_ss, q0, p.seq);
  int key0 = n_tiles > 0 ? key_start(0) : 0;
  if constexpr (Cfg::kStages == 1) {
    // Per tile: wait for K, start V; S = Q K^T; wait for V, start the next K; softmax;
    // O += P V. Each copy overlaps one of the two products.
    if (n_tiles > 0) load_rows<Cfg, BN>(sK, kg, p.k_ss, key0, p.key_limit);
    cp_async_commit();
    if constexpr (Cfg::kPrefetch > 0) {
#pragma unroll
      for (int i = 1; i < Cfg::kPrefetch; ++i) prefetch(i);
    }
    for (int t = 0; t < n_tiles; ++t) {
      if constexpr (Cfg::kPrefetch > 0) {
        if (t % TPB == 0) prefetch(t / TPB + Cfg::kPrefetch);
      }
      const int next = t + 1 < n_tiles ? key_start(t + 1) : 0;
      cp_async_wait<0>();
      __syncthreads();  // K(t) has landed, and every warp is done with V(t-1)
      load_rows<Cfg, BN>(sV, vg, p.v_ss, key0, p.key_limit);
      cp_async_commit();
      if constexpr (Cfg::kQInRegs) {
        if (t == 0) w.load_q_fragments(sQ);
      }
      float s[MT][FwdWarp<T, Cfg>::NT][4];
      w.scores(s, sQ, sK);
      if (crosses_key_limit(key0, BN, p.key_limit)) w.mask(s, key0, p.key_limit, lane);
      cp_async_wait<0>();
      __syncthreads();  // V(t) has landed, and every warp is done with K(t)
      if (t + 1 < n_tiles) load_rows<Cfg, BN>(sK, kg, p.k_ss, next, p.key_limit);
      cp_async_commit();
      w.softmax(s, p.scale_log2);
      w.accumulate(s, sV);
      key0 = next;
    }
  } else {
    // Tiles t and t+1 are in flight while tile t computes; tile t+2 starts loading into
    // buffer t % 2 as soon as every warp is done with it. One commit group per tile (empty
    // past the end), so "all but the newest group" is always tile t.
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
      __syncthreads();  // tile t has landed (for every thread's copies)
      if constexpr (Cfg::kQInRegs) {
        if (t == 0) w.load_q_fragments(sQ);
      }
      w.tile(sQ, sK + buf, sV + buf, key0, p.key_limit, p.scale_log2, lane);
      __syncthreads();  // every warp is done with buffer t % 2
      if (t + 2 < n_tiles) {
        load_rows<Cfg, BN>(sK + buf, kg, p.k_ss, key2, p.key_limit);
        load_rows<Cfg, BN>(sV + buf, vg, p.v_ss, key2, p.key_limit);
      }
      cp_async_commit();
      key0 = key1;
      key1 = key2;
    }
  }

  // Epilogue: full row sums, normalise, log-sum-exp; the output goes through this warp's own
  // rows of the Q tile so that global stores are whole 16-byte chunks.
  cp_async_wait<0>();
  __syncthreads();
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const float sum = quad_sum(w.row_sum[mt][half]);
      const float inv = row_inverse(sum);
      const int r = wrow + mt * 16 + (lane >> 2) + half * 8;
#pragma unroll
      for (int dt = 0; dt < FwdWarp<T, Cfg>::DT; ++dt) {
        *reinterpret_cast<uint32_t*>(smem + swz<C>(r, dt) + (lane & 3) * 4) =
            pack2<T>(w.o[mt][dt][2 * half] * inv, w.o[mt][dt][2 * half + 1] * inv);
      }
      const int row = q0 + r;
      if (p.lse != nullptr && (lane & 3) == 0 && row < p.seq) {
        p.lse[bh * p.seq + row] = row_lse(w.row_max[mt][half], sum, p.scale);
      }
    }
  }
  __syncwarp();
  constexpr int kWarpRows = 16 * MT;
#pragma unroll
  for (int i = 0; i < kWarpRows * C / 32; ++i) {
    const int idx = lane + i * 32;
    const int r = wrow + idx / C, c = idx % C;
    const int row = q0 + r;
    if (row < p.seq) {
      const uint4 chunk = *reinterpret_cast<const uint4*>(smem + swz<C>(r, c));
      *reinterpret_cast<uint4*>(og + static_cast<int64_t>(row) * p.o_ss + c * 8) = chunk;
    }
  }
}

template <class T, class Cfg>
void launch_config(const FwdParams& p, cudaStream_t stream) {
  const auto kernel = fwd_kernel<T, Cfg>;
  RADIAL_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         Cfg::kSmemBytes));
  const int64_t grid = p.batch_heads * p.block_rows;
  kernel<<<static_cast<unsigned>(grid), Cfg::kThreads, Cfg::kSmemBytes, stream>>>(p);
  check_cuda(cudaGetLastError(), "fwd_kernel<<<...>>> (launch of the forward attention kernel)");
}

// The configuration of each portable choice (head dim, block size, tile, L2 prefetch); the
// dispatcher (fwd_dispatch.cpp) has refused what is not built. Block 64 has one tile. The
// others exist for comparison (bench/gpu/NOTES.md) and are built with RADIAL_ABLATION_KERNELS.
template <class T, int D>
void launch_portable(const FwdParams& p, int block_size, PortableTile tile, bool l2_prefetch,
                     cudaStream_t stream) {
  if (block_size == 64) {
    launch_config<T, FwdConfig<D, 64, 1, false, 1, D == 128 ? 3 : 4>>(p, stream);
    return;
  }
#ifdef RADIAL_ABLATION_KERNELS
  if (tile == PortableTile::eight_warps) {
    launch_config<T, FwdConfig<D, 128, 1, true, 1, 1>>(p, stream);
    return;
  }
  if (tile == PortableTile::double_buffer) {
    launch_config<T, FwdConfig<D, 128, 2, false, 2, 2>>(p, stream);
    return;
  }
  if (l2_prefetch) {
    launch_config<T, FwdConfig<D, 128, 2, false, 1, D == 128 ? 2 : 3, 2>>(p, stream);
    return;
  }
#else
  (void)tile, (void)l2_prefetch;
#endif
  launch_config<T, FwdConfig<D, 128, 2, false, 1, D == 128 ? 2 : 3>>(p, stream);
}

}  // namespace radial::cuda_detail
