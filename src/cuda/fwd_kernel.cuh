// The portable block-sparse forward kernel (sm80 and newer), FlashAttention-2 style: one CTA
// per (batch, head, query block); its warps split the block's query rows; the key blocks of
// the plan's CSR row stream through shared memory 64 keys at a time (cp.async), scores and
// the output accumulate on the tensor cores (mma.sync m16n8k16, float32), and the softmax runs
// online in registers. Keys at index >= key_limit (the padded tail, unused text) are masked
// token by token; query rows past seq are computed on zeros and never stored.
#pragma once

#include <cstdint>

#include "cuda/check.hpp"
#include "cuda/fwd_params.hpp"
#include "cuda/ptx.cuh"

namespace radial::cuda_detail {

// One tile shape. The query tile is one plan block (kBM = block size); each warp owns kMT
// m-tiles of 16 rows. kQInRegs keeps Q's fragments in registers for the whole key loop (only
// affordable with one m-tile per warp); otherwise they are re-read from shared memory.
template <int D, int BM, int MT, bool QInRegs, int MinBlocks>
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
  static constexpr int kSmemBytes = (BM + 2 * kBN) * D * 2;  // Q, one K tile, one V tile
  static_assert(D == 64 || D == 128, "head dim 64 or 128");
  static_assert(BM == 64 || BM == 128, "block 64 or 128");
  static_assert(BM % (16 * MT) == 0 && (!QInRegs || MT == 1), "tile shape");
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

template <class T, class Cfg>
__global__ void __launch_bounds__(Cfg::kThreads, Cfg::kMinBlocks)
    fwd_kernel(const FwdParams p) {
  constexpr int D = Cfg::kD, BM = Cfg::kBM, BN = Cfg::kBN, MT = Cfg::kMT, C = Cfg::kChunks;
  constexpr int TPB = Cfg::kTilesPerBlock;
  constexpr int NT = BN / 8;  // 8-key n-tiles of a score tile
  constexpr int DT = D / 8;   // 8-column n-tiles of the output
  constexpr int KS = D / 16;  // k-steps of Q K^T

  extern __shared__ __align__(128) unsigned char smem[];
  const uint32_t sQ = smem_addr(smem);
  const uint32_t sK = sQ + BM * D * 2;
  const uint32_t sV = sK + BN * D * 2;
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int warp = static_cast<int>(threadIdx.x) >> 5;
  const int wrow = warp * 16 * MT;  // this warp's first row in the query tile

  // Work item: heads vary slowest so that CTAs running together read one head's keys (L2
  // reuse); within a head, block rows go in the plan's heavy-first order.
  const int64_t item = blockIdx.x;
  const int rank = static_cast<int>(item % p.block_rows);
  const int64_t bh = item / p.block_rows;
  const int64_t b = bh / p.heads, h = bh % p.heads;
  const int qblock = __ldg(p.row_order + rank);
  const int q0 = qblock * BM;
  const int begin = __ldg(p.row_offset + qblock);
  const int n_tiles = (__ldg(p.row_offset + qblock + 1) - begin) * TPB;

  const T* qg = static_cast<const T*>(p.q) + b * p.q_sb + h * p.q_sh;
  const T* kg = static_cast<const T*>(p.k) + b * p.k_sb + h * p.k_sh;
  const T* vg = static_cast<const T*>(p.v) + b * p.v_sb + h * p.v_sh;
  T* og = static_cast<T*>(p.out) + b * p.o_sb + h * p.o_sh;

  const auto key_start = [&](int t) {
    return __ldg(p.col_index + begin + t / TPB) * BM + (t % TPB) * BN;
  };

  load_rows<Cfg, BM>(sQ, qg, p.q_ss, q0, p.seq);
  int key0 = n_tiles > 0 ? key_start(0) : 0;
  if (n_tiles > 0) load_rows<Cfg, BN>(sK, kg, p.k_ss, key0, p.key_limit);
  cp_async_commit();

  float o[MT][DT][4];
  float row_max[MT][2], row_sum[MT][2];  // per thread: rows lane/4 and lane/4 + 8 of an m-tile
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int dt = 0; dt < DT; ++dt) o[mt][dt][0] = o[mt][dt][1] = o[mt][dt][2] = o[mt][dt][3] = 0.f;
    row_max[mt][0] = row_max[mt][1] = -INFINITY;
    row_sum[mt][0] = row_sum[mt][1] = 0.f;
  }
  uint32_t qf[Cfg::kQInRegs ? MT : 1][Cfg::kQInRegs ? KS : 1][4];

  // ldmatrix row addresses (byte offsets in a tile) for k-step / column pair i = 0..3. The
  // swizzle XORs only the low three chunk bits, so step 4j + i is offset i plus 128 * j bytes,
  // and further m-tiles or key groups add whole rows: every fragment address is one of these
  // four registers plus a constant.
  //  Q (A operand): matrices = rows 0-7 / 8-15 of the m-tile at k 0-7, then at k 8-15.
  //  K (B operand): keys 0-7 at k 0-7, keys 0-7 at k 8-15, keys 8-15 at k 0-7, at k 8-15.
  //  V (B operand, transposed): keys 0-7 / 8-15 at columns 0-7, then at columns 8-15.
  uint32_t q_off[4], k_off[4], v_off[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    q_off[i] = swz<C>(wrow + (lane & 15), i * 2 + (lane >> 4));
    k_off[i] = swz<C>((lane & 7) + ((lane >> 4) << 3), i * 2 + ((lane >> 3) & 1));
    v_off[i] = swz<C>((lane & 7) + (((lane >> 3) & 1) << 3), i * 2 + (lane >> 4));
  }

  // Per tile: wait for K, start V; S = Q K^T; wait for V, start the next K; softmax; O += P V.
  // Each copy overlaps one of the two products.
  for (int t = 0; t < n_tiles; ++t) {
    const int next = t + 1 < n_tiles ? key_start(t + 1) : 0;
    cp_async_wait<0>();
    __syncthreads();  // K(t) has landed, and every warp is done with V(t-1)
    load_rows<Cfg, BN>(sV, vg, p.v_ss, key0, p.key_limit);
    cp_async_commit();

    if constexpr (Cfg::kQInRegs) {
      if (t == 0) {
#pragma unroll
        for (int ks = 0; ks < KS; ++ks) ldmatrix_x4(qf[0][ks], sQ + q_off[ks & 3] + (ks >> 2) * 128);
      }
    }

    float s[MT][NT][4];
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
          a[mt][0] = qf[0][ks][0], a[mt][1] = qf[0][ks][1], a[mt][2] = qf[0][ks][2],
          a[mt][3] = qf[0][ks][3];
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

    if (key0 + BN > p.key_limit) {  // the tile holding key_limit: mask token by token
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int key = key0 + nt * 8 + (lane & 3) * 2 + (j & 1);
#pragma unroll
          for (int mt = 0; mt < MT; ++mt)
            if (key >= p.key_limit) s[mt][nt][j] = -INFINITY;
        }
      }
    }

    cp_async_wait<0>();
    __syncthreads();  // V(t) has landed, and every warp is done with K(t)
    if (t + 1 < n_tiles) load_rows<Cfg, BN>(sK, kg, p.k_ss, next, p.key_limit);
    cp_async_commit();

    // Online softmax: new running max per row (over the quad that shares it), rescale what
    // was accumulated, exponentiate in base 2 with the scale folded in. Once a row's maximum
    // has settled (most tiles) the rescale factors are all 1 and the warp skips the multiply.
    float base[MT][2], alpha[MT][2];
    bool settled = true;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        float mx = row_max[mt][half];
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
          mx = fmaxf(mx, fmaxf(s[mt][nt][2 * half], s[mt][nt][2 * half + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        // A row with no visible key yet keeps max -inf; 0 then avoids (-inf) - (-inf).
        base[mt][half] = mx == -INFINITY ? 0.f : mx * p.scale_log2;
        alpha[mt][half] = fast_exp2(row_max[mt][half] * p.scale_log2 - base[mt][half]);
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
        float sum = 0.f;
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
          for (int j = 0; j < 2; ++j) {
            const float e = fast_exp2(fmaf(s[mt][nt][2 * half + j], p.scale_log2, -base[mt][half]));
            s[mt][nt][2 * half + j] = e;
            sum += e;
          }
        }
        row_sum[mt][half] = row_sum[mt][half] * alpha[mt][half] + sum;
      }
    }

    // O += P V: P's accumulator layout is already the A-fragment layout of the next product.
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
    key0 = next;
  }

  // Epilogue: full row sums, normalise, log-sum-exp; the output goes through this warp's own
  // rows of the Q tile so that global stores are whole 16-byte chunks.
  cp_async_wait<0>();
  __syncthreads();
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float sum = row_sum[mt][half];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      const float inv = sum > 0.f ? 1.f / sum : 0.f;
      const int r = wrow + mt * 16 + (lane >> 2) + half * 8;
#pragma unroll
      for (int dt = 0; dt < DT; ++dt) {
        *reinterpret_cast<uint32_t*>(smem + swz<C>(r, dt) + (lane & 3) * 4) =
            pack2<T>(o[mt][dt][2 * half] * inv, o[mt][dt][2 * half + 1] * inv);
      }
      const int row = q0 + r;
      if (p.lse != nullptr && (lane & 3) == 0 && row < p.seq) {
        p.lse[bh * p.seq + row] =
            sum > 0.f ? row_max[mt][half] * p.scale + logf(sum) : -INFINITY;
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

// The tile configuration for each (head dim, block size, variant): the one place that picks.
template <class T, int D>
void launch_for(const FwdParams& p, int block_size, FwdVariant variant, cudaStream_t stream) {
  if (block_size == 64) {
    launch_config<T, FwdConfig<D, 64, 1, false, D == 128 ? 3 : 4>>(p, stream);
  } else if (variant == FwdVariant::eight_warps) {
    launch_config<T, FwdConfig<D, 128, 1, true, 1>>(p, stream);
  } else {
    launch_config<T, FwdConfig<D, 128, 2, false, D == 128 ? 2 : 3>>(p, stream);
  }
}

}  // namespace radial::cuda_detail
