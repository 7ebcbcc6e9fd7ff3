// The Hopper backward's main kernel (sm_90a): TMA + wgmma, in the style of
// FlashAttention-3's backward, over the plan's CSC lists.
//
// One CTA per (batch x head, key block of 128), 384 threads: a producer warpgroup and two
// consumer warpgroups that each own 64 keys of the block. The producer's thread 0 issues the
// loads: K and V once by TMA, then the 64-row query tiles of the query blocks that keep the key
// block (Q, dO by TMA; lse2 and delta by bulk copies) into kStages shared-memory stages on
// full/empty mbarriers, a tile into a stage as soon as both consumers have released it. The
// consumers compute transposed, keys as the M dimension of every product:
//   S^T = K Q^T, dP^T = V dO^T                  (shared-memory operands)
//   P^T = exp2(S^T scale log2e - lse2), dS^T = P^T (dP^T - delta)
//   dV += P^T dO, dK += dS^T Q                  (P^T and dS^T from registers)
//   dQ += dS K                                  (head dim 128: 64 columns per warpgroup over
//                                                both warpgroups' dS; 64: each its keys)
// dK and dV stay in registers over the whole list; each warpgroup's part of dQ (its 64
// columns, or at head dim 64 its keys' share of all 64) is added to the float32 accumulator that
// the preprocess zeroed (by atomics or bulk reduce-adds: Schedule; in the library's kernel the
// producer's second warp issues the adds, Warps, of tiles kept in the warps' fragment order,
// DQStore), which the portable conversion kernel then scales and rounds. Keys >= key_limit
// get P = 0 (KeyMask; their K and V rows read as zeros from the tensor maps, which end at
// key_limit), padded query rows have lse2 = +inf (P = 0) and read as zeros; key blocks no
// query keeps write zeros. Comparison variants (Operands) take
// dK's A operand dS^T, or both P^T and dS^T, through shared memory instead (SS wgmma).
#pragma once

#include <cuda.h>

#include <cstdint>
#include <type_traits>

#include "cuda/bwd_params.hpp"
#include "cuda/check.hpp"
#include "cuda/hopper/fwd_hopper_common.cuh"
#include "cuda/hopper/sm90_ptx.cuh"
#include "cuda/hopper/tensor_map.hpp"

namespace radial::cuda_detail::hopper_bwd {

using namespace cute;
using hopper::bulk_load;
using hopper::fence_proxy_async;
using hopper::mbar_arrive;
using hopper::mbar_arrive_expect_tx;
using hopper::mbar_init;
using hopper::mbar_init_fence;
using hopper::mbar_wait_spin;
using hopper::pack2;
using hopper::tma_load_4d;

// Who issues the loads and dQ's adds (A/B-compared, HOPPER_NOTES "backward rounds 5, 6"):
//   kProducerWarpgroup: a producer warpgroup beside the two consumers (384 threads, setmaxnreg
//     24/240 as FlashAttention-3's backward): no consumer thread waits for the other consumer's
//     release of a stage to issue the next load; 1.03-1.08x kConsumerLoads on an H200. Each
//     consumer warp issues its own dQ adds (variant bwd_consumer_dq; the library's until
//     2026-12-02 08:00 UTC);
//   kConsumerLoads: the two consumer warpgroups alone (256 threads, up to 255 registers each),
//     their thread 0 issuing the loads (variant bwd_consumer_loads; the library's until
//     2026-12-02). The operand variants (Operands) run this way, as they were measured;
//   kProducerDQWriter: the library's. As kProducerWarpgroup, and lanes 0..7 of the producer's
//     second warp issue dQ's tensor reduce-adds, one lane for each consumer warp, as FA3's
//     dQ writer: a consumer warp stores its dQ and arrives on dq_full, its lane waits for the
//     adds' reads and arrives on dq_empty, so no consumer thread issues an add or waits for
//     its read: 1.07x kProducerWarpgroup on the dense plan, 0.99-1.01x on radial plans (H200).
// Every wait spins inside one asm statement (mbar_wait_spin): with mbar_wait's loop in C++,
// ptxas compiled the raised consumers for the launch's 168 registers and spilled. A producer
// of one warp (288 threads at 224) cannot launch: 9 warps put 3 on one SM sub-partition, whose
// 16,384 registers then allow 170 a thread.
constexpr int kConsumers = 256;
enum Warps : int { kProducerWarpgroup = 0, kConsumerLoads = 1, kProducerDQWriter = 2 };
constexpr int threads(int warps) {
  return warps == kConsumerLoads ? kConsumers : kConsumers + 128;
}

// The consumers' order of work per query tile (A/B-compared, HOPPER_NOTES):
//   kLateDV: dV's, dQ's and dK's products all after the dS step; dQ by float2 atomics;
//   kEarlyDV: dV's product issued before the dS step (runs under it); dQ by atomics;
//   kBulkDQ: as kEarlyDV, dQ stored to shared memory and added to the accumulator by bulk
//     copy-reduces (one 256-byte row each), the warps' own rows, instead of atomics;
//   kTmaDQ: likewise by two tensor reduce-adds a warp (its 16 rows, 32 columns each);
//   kTmaDQPipelined, kBulkDQPipelined: as kTmaDQ / kBulkDQ, and the next tile's S^T and dP^T
//     products issued as soon as dQ is out, behind this tile's dK (no gap between tiles).
enum Schedule : int {
  kLateDV = 0,
  kEarlyDV = 1,
  kBulkDQ = 2,
  kTmaDQ = 3,
  kTmaDQPipelined = 4,
  kBulkDQPipelined = 5
};
// The library's schedule: the fastest measured (HOPPER_NOTES, H200: 418 effective TFLOP/s
// against 417 kTmaDQ, 385 kBulkDQ, 374 kEarlyDV, 361 kLateDV). The others stay for A/B runs:
// set this to one of them.
constexpr int kDefaultSchedule = kTmaDQPipelined;
constexpr bool pipelined(int schedule) { return schedule >= kTmaDQPipelined; }
// How dQ goes out: kEarlyDV (atomics; also kLateDV), kBulkDQ or kTmaDQ.
constexpr int dq_mode(int schedule) {
  return schedule == kTmaDQPipelined    ? kTmaDQ
         : schedule == kBulkDQPipelined ? kBulkDQ
         : schedule == kLateDV          ? kEarlyDV
                                        : schedule;
}

// Where dV's and dK's products take their A operand (P^T, dS^T) from (A/B-compared,
// HOPPER_NOTES "backward round 3"). In the keys-as-M layout the S^T and dP^T accumulators of a
// thread are exactly the A-operand registers of dV = P^T dO and dK = dS^T Q (entry i of both is
// key wrow + 8 ((i / 2) % 2), query 8 (i / 4) + qcol + i % 2), so the rounded values can feed
// an RS product with no shuffle, as the forward's P does:
//   kSmemPdS: both through shared memory (variant bwd_ss);
//   kRegsP: P^T from registers (no P^T store, fence or warpgroup barrier), dS^T from shared
//     (variant bwd_rs_dv);
//   kRegsPdS: both from registers (dS^T is still stored for dQ's product): the library's,
//     1.12-1.13x kSmemPdS on an H200 (bench/results/NVIDIA_H200-backward.md);
//   kRegsPdSEarlyDK: as kRegsPdS, with dK's product issued before the wait for the other
//     warpgroup's dS^T (it needs only this thread's registers and Q) and the next tile's S^T
//     and dP^T issued before dQ's stores instead of after them (variant bwd_early_dk): the
//     kernel is latency-bound (Nsight: 0.3 eligible warps a scheduler), so more of each
//     warpgroup's own tensor work overlaps its waits.
enum Operands : int { kSmemPdS = 0, kRegsP = 1, kRegsPdS = 2, kRegsPdSEarlyDK = 3 };
// How a thread's dS^T entries go to shared memory (for dQ's product), where they are in
// registers anyway (kRegsPdS, kRegsPdSEarlyDK; A/B-compared, HOPPER_NOTES "backward round 7"):
//   kStoreDS32: one 32-bit store per entry pair, 16 a tile (variant bwd_sts_ds; the library's
//     until 2026-12-02 12:00 UTC);
//   kStoreDSMatrix: stmatrix, four 8 x 8 matrices an instruction, 4 a tile: the library's.
//     Nsight (H200, the dense plan) had the warps stalled on the shared-memory queue (MIO
//     throttle, short scoreboard) 1.8 cycles an instruction against cuDNN's 0.5.
enum DSStore : int { kStoreDS32 = 0, kStoreDSMatrix = 1 };
// How a thread reads its 16 lse2 (and 16 delta) values of a tile from shared memory, in the
// order hopper_row_slot gives them (bwd_params.hpp; A/B-compared, "backward round 7"):
//   kRows64: one 8-byte load per n-tile, 8 a tile each (variant bwd_lds64);
//   kRows128: one 16-byte load per two n-tiles, 4 a tile each: the library's.
enum RowLoads : int { kRows64 = 0, kRows128 = 1 };
// How a consumer warp's dQ tile (16 rows x 64 columns of float32) goes to the accumulator
// (A/B-compared, HOPPER_NOTES "backward round 8"):
//   kDQBoxes: a row-major accumulator; the tile stored as two 32-column boxes with the 128-byte
//     swizzle (16 STS.64 a tile) and added by two tensor reduce-adds (variant bwd_dq_boxes; the
//     library's until 2026-12-02 16:00 UTC);
//   kDQFragments: the accumulator in the warps' fragment order (hopper_dq_offset,
//     bwd_params.hpp): a thread's 32 values are 8 consecutive 16-byte slots, stored by 8
//     STS.128 at fixed offsets and added by one 4096-byte bulk reduce; the conversion kernel
//     reads that order (the main kernel's launch returns it).
enum DQStore : int { kDQBoxes = 0, kDQFragments = 1 };
// How keys at or past key_limit get P = 0 (their K and V rows read as zeros, but
// P = exp2(-lse2) is not):
//   kMaskSelect: a select on each of a thread's 32 entries in every tile, for every warpgroup
//     (variant bwd_mask_select; the library's until 2026-12-02 16:00 UTC);
//   kMaskBranch: the entries computed unmasked, then the rows past key_limit zeroed behind a
//     branch that only threads holding such rows take (at most one key block a column).
enum KeyMask : int { kMaskSelect = 0, kMaskBranch = 1 };

// A kernel's configuration: one value of each choice above.
template <int Operands, int Warps, int DSStore, int RowLoads, int DQStore_, int KeyMask_,
          int Schedule = kDefaultSchedule>
struct Config {
  static constexpr int kOperands = Operands, kWarps = Warps, kDSStore = DSStore,
                       kRowLoads = RowLoads, kDQStore = DQStore_, kKeyMask = KeyMask_,
                       kSchedule = Schedule;
};
// The library's kernel; the comparison variants differ from it in one choice or more
// (variant_launch).
using Library =
    Config<kRegsPdS, kProducerDQWriter, kStoreDSMatrix, kRows128, kDQFragments, kMaskBranch>;

template <class Element_, int kHeadDim, int kStages_ = 2>
struct BwdTraits {
  using Element = Element_;
  static constexpr int kD = kHeadDim;
  static constexpr int kQT = 64;  // query rows per step
  static constexpr int kKH = 64;  // keys per consumer warpgroup (half the block)
  static constexpr int kStages = kStages_;
  using HD = Int<kD>;
  using QT = Int<kQT>;
  using KH = Int<kKH>;
  using St = Int<kStages>;

  // K-major, 128-byte swizzle (fwd_hopper_common.cuh), 64-row by 64-column slabs, one TMA box
  // each. K and V: (keys of a half, head dim, half); Q and dO: (rows, head dim, stage).
  using SmemLayoutKV =
      decltype(tile_to_shape(GMMA::Layout_K_SW128_Atom<Element>{}, Shape<KH, HD, _2>{}));
  // K seen as (64 columns of the head dim, keys of a half, column pass, half): the B operand
  // of dS K, 64 columns of dQ per pass (32 accumulators per thread).
  static constexpr int kDQPasses = kD / 64;
  using SmemLayoutKtq = decltype(composition(
      SmemLayoutKV{}, Layout<Shape<_64, KH, Int<kDQPasses>, _2>,
                             Stride<_64, _1, Int<64 * 64>, Int<64 * kD>>>{}));
  using SmemLayoutQ =
      decltype(tile_to_shape(GMMA::Layout_K_SW128_Atom<Element>{}, Shape<QT, HD, St>{}));
  using SmemLayoutQt = decltype(composition(
      SmemLayoutQ{}, make_ordered_layout(Shape<HD, QT, St>{}, Step<_2, _1, _3>{})));
  // dS^T as (keys of a half, query rows, 2 buffers x 2 warpgroups), stored as the products
  // leave it (rows contiguous: pairs of entries per 32-bit store): the A operand of dS^T Q,
  // and seen transposed (rows, keys, slab) the MN-major A operand of dS K. P^T likewise, one
  // buffer per warpgroup (only its own dV product reads it). The library's kernel reads both
  // from registers instead (Operands kRegsPdS, 242 registers at head dim 128, no spill; P^T
  // in registers spilled in the earlier 384-thread kernel), so these serve the variants.
  using SmemLayoutdSt =
      decltype(tile_to_shape(GMMA::Layout_K_SW128_Atom<Element>{}, Shape<KH, QT, _4>{}));
  using SmemLayoutdS = decltype(composition(
      SmemLayoutdSt{}, make_ordered_layout(Shape<QT, KH, _4>{}, Step<_2, _1, _3>{})));
  using SmemLayoutPt =
      decltype(tile_to_shape(GMMA::Layout_K_SW128_Atom<Element>{}, Shape<KH, QT, _2>{}));

  // One warpgroup each (64 keys as M).
  using MmaSdP = decltype(make_tiled_mma(
      GMMA::ss_op_selector<Element, Element, float, Shape<KH, QT, HD>>()));
  // dV += P^T dO and dK += dS^T Q: the same shapes and majors.
  using MmaKV = decltype(make_tiled_mma(
      GMMA::ss_op_selector<Element, Element, float, Shape<KH, HD, QT>, GMMA::Major::K,
                           GMMA::Major::MN>()));
  // The same with P^T or dS^T from registers (Operands kRegsP, kRegsPdS).
  using MmaKVrs = decltype(make_tiled_mma(
      GMMA::rs_op_selector<Element, Element, float, Shape<KH, HD, QT>, GMMA::Major::K,
                           GMMA::Major::MN>()));
  // A register A operand of those: (values (2, 2, 2), M 1, K 4) of 16-bit entries, value i
  // (flat, column-major) at key wrow + 8 ((i / 2) % 2), query 8 (i / 4) + qcol + i % 2 like
  // accumulator entry i of S^T (two entries per 32-bit register, as the products read them).
  using FragAKV = Layout<Shape<Shape<_2, _2, _2>, _1, Int<kQT / 16>>>;
  using MmaDQ = decltype(make_tiled_mma(
      GMMA::ss_op_selector<Element, Element, float, Shape<QT, _64, KH>, GMMA::Major::MN,
                           GMMA::Major::MN>()));

  static constexpr int kBoxBytes = 64 * 64 * 2;  // one 64 x 64 slab
  static constexpr int kBoxes = kD / 64;
  static constexpr int kTileBytes = 64 * kD * 2;  // a Q or dO tile, or half of K or V
  static constexpr int kKVBytes = 2 * kTileBytes;
  static constexpr int kDSBytes = 4 * 64 * 64 * 2;
  static constexpr int kPBytes = 2 * 64 * 64 * 2;
  // dQ rows of a warpgroup for the bulk reduces: 64 floats and 32 bytes of padding (the
  // threads' float2 stores of 8 rows then spread over the banks).
  static constexpr int kDQRowBytes = 64 * 4 + 32;
  static constexpr int kDQBytes = 2 * 64 * kDQRowBytes;
  static_assert(8 * 4096 <= kDQBytes, "kTmaDQ: two 16-row x 32-column boxes per warp");
  static constexpr int kRowBytes = kQT * 4;  // lse2 or delta of a tile
  // Offsets in the 1024-aligned dynamic shared memory.
  static constexpr int kOffV = kKVBytes;
  static constexpr int kOffQ = 2 * kKVBytes;
  static constexpr int kOffDO = kOffQ + kStages * kTileBytes;
  static constexpr int kOffDS = kOffDO + kStages * kTileBytes;
  static constexpr int kOffP = kOffDS + kDSBytes;
  static constexpr int kOffDQ = kOffP + kPBytes;
  static constexpr int kOffLse = kOffDQ + kDQBytes;
  static constexpr int kOffDelta = kOffLse + kStages * kRowBytes;
  static constexpr int kOffBars = kOffDelta + kStages * kRowBytes;
  static constexpr int kSmemBytes = kOffBars + 256 + 1024;  // barriers, alignment slack
};

template <int kStages>
struct Barriers {
  uint64_t kv_full;
  uint64_t full[kStages], empty[kStages];
  uint64_t ds_ready;  // both consumer warpgroups have stored their dS^T
  // kProducerDQWriter: consumer warp w's dQ is in shared memory / its adds have read it.
  uint64_t dq_full[8], dq_empty[8];
};

// Issues C (+)= A B over the whole K extent as one wgmma group (fwd_hopper_common.cuh's
// wg_issue, taking slices of staged operands).
template <bool Zero, class Mma, class TA, class TB, class TC>
__device__ __forceinline__ void issue(Mma& mma, TA&& a, TB const& b, TC& c) {
  constexpr bool kRegA =
      !cute::is_base_of<cute::GMMA::DescriptorIterator,
                        typename std::decay_t<Mma>::FrgTypeA>::value;
  if constexpr (kRegA) warpgroup_fence_operand(a);
  // A product that overwrites C still names it as a read-write operand; zeroing it first makes
  // the old values dead for the compiler (it did not change ptxas's spills: HOPPER_NOTES).
  if constexpr (Zero) clear(c);
  warpgroup_fence_operand(c);
  warpgroup_arrive();
  if constexpr (Zero) mma.accumulate_ = GMMA::ScaleOut::Zero;
  CUTE_UNROLL
  for (int k = 0; k < size<2>(a); ++k) {
    cute::gemm(mma, a(_, _, k), b(_, _, k), c);
    mma.accumulate_ = GMMA::ScaleOut::One;
  }
  warpgroup_commit_batch();
  // Fenced again after the issue, as FlashAttention-3's gemm does.
  warpgroup_fence_operand(c);
  if constexpr (kRegA) warpgroup_fence_operand(a);
}

__device__ __forceinline__ float4 lds_f32x4(uint32_t addr) {
  float4 x;
  asm volatile("ld.shared.v4.f32 {%0, %1, %2, %3}, [%4];\n"
               : "=f"(x.x), "=f"(x.y), "=f"(x.z), "=f"(x.w)
               : "r"(addr)
               : "memory");
  return x;
}

__device__ __forceinline__ float2 lds_f32x2(uint32_t addr) {
  float2 x;
  asm volatile("ld.shared.v2.f32 {%0, %1}, [%2];\n" : "=f"(x.x), "=f"(x.y) : "r"(addr) : "memory");
  return x;
}

// A barrier over consumer warpgroup wg's 128 threads (ids 1 and 2; 0 is __syncthreads').
__device__ __forceinline__ void warpgroup_barrier(int wg) {
  if (wg == 0) {
    asm volatile("bar.sync 1, 128;\n" ::: "memory");
  } else {
    asm volatile("bar.sync 2, 128;\n" ::: "memory");
  }
}

__device__ __forceinline__ void sts_f32x2(uint32_t addr, float x, float y) {
  asm volatile("st.shared.v2.f32 [%0], {%1, %2};\n" ::"r"(addr), "f"(x), "f"(y) : "memory");
}

__device__ __forceinline__ void sts_f32x4(uint32_t addr, float x, float y, float z, float w) {
  asm volatile("st.shared.v4.f32 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "f"(x), "f"(y), "f"(z),
               "f"(w)
               : "memory");
}

// dst[i] += src[i] for `bytes` bytes (a multiple of 16, both 16-byte aligned), asynchronously,
// in this thread's bulk group; element-wise atomic in global memory.
__device__ __forceinline__ void bulk_reduce_add_f32(float* dst, uint32_t src, uint32_t bytes) {
  asm volatile(
      "cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [%0], [%1], %2;\n"
      ::"l"(reinterpret_cast<uint64_t>(dst)), "r"(src), "r"(bytes)
      : "memory");
  asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
}

// Adds a 32-column x 16-row box of float32 (128-byte swizzle, 1024-byte aligned) to the
// accumulator at (column, row, batch x head), asynchronously, in this thread's bulk group.
__device__ __forceinline__ void tma_reduce_add_3d(const CUtensorMap* map, uint32_t src, int c0,
                                                  int c1, int c2) {
  asm volatile(
      "cp.reduce.async.bulk.tensor.3d.global.shared::cta.add.tile.bulk_group"
      " [%0, {%2, %3, %4}], [%1];\n" ::"l"(reinterpret_cast<uint64_t>(map)),
      "r"(src), "r"(c0), "r"(c1), "r"(c2)
      : "memory");
}

__device__ __forceinline__ void bulk_commit() {
  asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
}

// Waits until this thread's bulk groups have read their shared-memory sources.
__device__ __forceinline__ void bulk_wait_read() {
  asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory");
}

// Waits until this thread's bulk groups have completed (their writes done).
__device__ __forceinline__ void bulk_wait_all() {
  asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory");
}

__device__ __forceinline__ void sts_b32(uint32_t addr, uint32_t x) {
  asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(addr), "r"(x) : "memory");
}

// Four 8 x 8 matrices of 16-bit elements into shared memory (stmatrix): register m holds this
// thread's pair of matrix m (row lane / 4, columns 2 (lane % 4) + {0, 1}, the wgmma
// accumulator's layout), lane l gives the address of row l % 8 of matrix l / 8. One
// instruction for what takes four 32-bit stores.
__device__ __forceinline__ void stsm_x4(uint32_t addr, uint32_t r0, uint32_t r1, uint32_t r2,
                                        uint32_t r3) {
  asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(addr),
               "r"(r0), "r"(r1), "r"(r2), "r"(r3)
               : "memory");
}

// This CTA's key block and its CSC list.
struct Column {
  int bh, b, h;  // 32-bit (fewer registers); offsets from them are formed in 64 bits
  int k0, begin, entries;
};

__device__ __forceinline__ Column load_column(const BwdParams& p) {
  // 32-bit divisions (the grid has fewer than 2^31 CTAs): a 64-bit one is a subroutine call.
  const int item = static_cast<int>(blockIdx.x);
  const int rank = item % p.block_rows;
  const int bh = item / p.block_rows;
  Column c;
  c.bh = bh;
  c.b = bh / p.heads;
  c.h = bh % p.heads;
  const int kblock = p.col_order != nullptr ? __ldg(p.col_order + rank) : rank;
  c.k0 = kblock * 128;
  c.begin = __ldg(p.col_offset + kblock);
  c.entries = __ldg(p.col_offset + kblock + 1) - c.begin;
  return c;
}

// First row of query tile t (two per query block), or -1 when the tile lies wholly past seq
// (the second half of a tail block): the loads and the products skip the same tiles.
__device__ __forceinline__ int tile_row(const BwdParams& p, const Column& c, int t) {
  const int q0 = __ldg(p.row_index + c.begin + (t >> 1)) * 128 + (t & 1) * 64;
  return q0 < p.seq ? q0 : -1;
}

// A [64, kD] tile at row `row` of (head h, batch b): one TMA box per 64-column slab.
template <class T>
__device__ __forceinline__ void tma_tile(uint32_t dst, const CUtensorMap* map, uint32_t bar,
                                         int row, int h, int b) {
#pragma unroll
  for (int i = 0; i < T::kBoxes; ++i) {
    tma_load_4d(dst + i * T::kBoxBytes, map, bar, i * 64, row, h, b);
  }
}

// The loads, issued by thread 0: K and V of the block once, then query tile `t` (its Q and dO
// by TMA, lse2 and delta by bulk copies) into stage `j % kStages` once the consumers have
// released that stage's previous tile.
struct Maps {
  const CUtensorMap *q, *k, *v, *d_out;
};

template <class T>
__device__ __forceinline__ void load_kv(const Column& c, const Maps& m, uint32_t base,
                                        Barriers<T::kStages>* bars) {
  const uint32_t kv_full = smem_addr(&bars->kv_full);
  mbar_arrive_expect_tx(kv_full, 2 * T::kKVBytes);
  for (int half = 0; half < 2; ++half) {
    tma_tile<T>(base + half * T::kTileBytes, m.k, kv_full, c.k0 + half * 64, c.h, c.b);
    tma_tile<T>(base + T::kOffV + half * T::kTileBytes, m.v, kv_full, c.k0 + half * 64, c.h,
                c.b);
  }
}

template <class T>
__device__ __forceinline__ void load_tile(const BwdParams& p, const Column& c, const Maps& m,
                                          uint32_t base, Barriers<T::kStages>* bars, int t,
                                          int j) {
  constexpr int kS = T::kStages;
  const int q0 = tile_row(p, c, t);
  const int s = j % kS;
  if (j >= kS) mbar_wait_spin(smem_addr(&bars->empty[s]), ((j / kS) & 1) ^ 1);
  const uint32_t full = smem_addr(&bars->full[s]);
  const int64_t row0 = static_cast<int64_t>(c.bh) * p.seq_pad + q0;
  mbar_arrive_expect_tx(full, 2 * T::kTileBytes + 2 * T::kRowBytes);
  tma_tile<T>(base + T::kOffQ + s * T::kTileBytes, m.q, full, q0, c.h, c.b);
  tma_tile<T>(base + T::kOffDO + s * T::kTileBytes, m.d_out, full, q0, c.h, c.b);
  bulk_load(base + T::kOffLse + s * T::kRowBytes, p.lse2 + row0, T::kRowBytes, full);
  bulk_load(base + T::kOffDelta + s * T::kRowBytes, p.delta + row0, T::kRowBytes, full);
}

// The two consumer warpgroups (threads 0..255 after the producer's 128, if any). Accumulator
// entry i of a thread is row lane / 4 + 8 ((i / 2) % 2) of its warp's 16 and column
// 8 (i / 4) + 2 (lane % 4) + i % 2 (the wgmma layout fwd_hopper_common.cuh relies on too).
template <class T, class C>
__device__ __forceinline__ void consume(const BwdParams& p, const Column& c,
                                        unsigned char* base, Barriers<T::kStages>* bars,
                                        const Maps& maps, const CUtensorMap* tdq) {
  using Element = typename T::Element;
  constexpr int kS = T::kStages, D = T::kD;
  constexpr int kSchedule = C::kSchedule, kOperands = C::kOperands, kWarps = C::kWarps;
  constexpr int kDSStore = C::kDSStore, kRowLoads = C::kRowLoads, kKeyMask = C::kKeyMask;
  constexpr bool kRegP = kOperands != kSmemPdS;
  static_assert(kKeyMask == kMaskSelect || kRegP, "kMaskBranch rounds P^T into registers");
  constexpr bool kEarlyDK = kOperands == kRegsPdSEarlyDK;
  constexpr bool kRegDS = kOperands == kRegsPdS || kEarlyDK;
  // P^T from registers replaces the early-dV step (its store and barrier).
  static_assert(!kRegP || (kSchedule != kLateDV && pipelined(kSchedule)),
                "P^T from registers: pipelined schedules");
  const auto bar = [](uint64_t& x) { return smem_addr(&x); };
  constexpr bool kOwnLoads = kWarps == kConsumerLoads;  // thread 0 issues the loads
  constexpr bool kDQWriter = kWarps == kProducerDQWriter;
  static_assert(C::kDQStore == kDQBoxes || kDQWriter, "kDQFragments: the dQ writer adds");
  const int tid = static_cast<int>(threadIdx.x) - (kOwnLoads ? 0 : 128);
  const int wg = tid >> 7;
  const int t = tid & 127;  // thread in the warpgroup
  const int lane = t & 31;
  const int wrow = (t >> 5) * 16 + (lane >> 2);  // + 8 for the second half of the entries
  const int qcol = 2 * (lane & 3);              // + 8 n-tile + j

  Element* k_smem = reinterpret_cast<Element*>(base);
  Element* v_smem = reinterpret_cast<Element*>(base + T::kOffV);
  Element* q_smem = reinterpret_cast<Element*>(base + T::kOffQ);
  Element* do_smem = reinterpret_cast<Element*>(base + T::kOffDO);
  Element* ds_smem = reinterpret_cast<Element*>(base + T::kOffDS);
  Element* p_smem = reinterpret_cast<Element*>(base + T::kOffP);
  // Shared-memory addresses (32-bit, ld/st.shared) of what the threads read and write
  // themselves: fewer registers than generic pointers, and no generic-address loads.
  // This thread's 16 rows of a tile's lse2 and delta (hopper_row_slot): 64 bytes at 64 q.
  const uint32_t lse_smem = smem_addr(base + T::kOffLse) + (lane & 3) * 64;
  const uint32_t delta_smem = smem_addr(base + T::kOffDelta) + (lane & 3) * 64;
  const int row_pair_xor = (lane >> 1) & 1;  // q / 2
  // Rows 8 nt + qcol, + 1 of the tile at `rows`; with kRows128 a 16-byte load at even nt holds
  // the next n-tile's pair too (kept in `pair`).
  const auto row_pair = [&](uint32_t rows, int nt, float4& pair) {
    const uint32_t at = rows + (((nt >> 1) ^ row_pair_xor) << 4);
    if constexpr (kRowLoads == kRows128) {
      if ((nt & 1) == 0) pair = lds_f32x4(at);
      return (nt & 1) ? make_float2(pair.z, pair.w) : make_float2(pair.x, pair.y);
    } else {
      return lds_f32x2(at + (nt & 1) * 8);
    }
  };

  Tensor sK = make_tensor(make_smem_ptr(k_smem), typename T::SmemLayoutKV{});
  Tensor sV = make_tensor(make_smem_ptr(v_smem), typename T::SmemLayoutKV{});
  Tensor sKtq = make_tensor(make_smem_ptr(k_smem), typename T::SmemLayoutKtq{});
  Tensor sQ = make_tensor(make_smem_ptr(q_smem), typename T::SmemLayoutQ{});
  Tensor sQt = make_tensor(make_smem_ptr(q_smem), typename T::SmemLayoutQt{});
  Tensor sdO = make_tensor(make_smem_ptr(do_smem), typename T::SmemLayoutQ{});
  Tensor sdOt = make_tensor(make_smem_ptr(do_smem), typename T::SmemLayoutQt{});
  Tensor sdS = make_tensor(make_smem_ptr(ds_smem), typename T::SmemLayoutdS{});
  Tensor sdSt = make_tensor(make_smem_ptr(ds_smem), typename T::SmemLayoutdSt{});
  Tensor sPt = make_tensor(make_smem_ptr(p_smem), typename T::SmemLayoutPt{});

  typename T::MmaSdP mma_sdp;
  typename T::MmaKV mma_kv;
  typename T::MmaDQ mma_dq;
  auto thr_sdp = mma_sdp.get_thread_slice(t);
  auto thr_kv = mma_kv.get_thread_slice(t);
  auto thr_dq = mma_dq.get_thread_slice(t);
  Tensor tSrK = thr_sdp.partition_fragment_A(sK);    // (.., half)
  Tensor tSrV = thr_sdp.partition_fragment_A(sV);    // (.., half)
  Tensor tSrQ = thr_sdp.partition_fragment_B(sQ);    // (.., stage)
  Tensor tSrdO = thr_sdp.partition_fragment_B(sdO);  // (.., stage)
  Tensor tKVrPt = thr_kv.partition_fragment_A(sPt);    // (.., warpgroup)
  Tensor tKVrdSt = thr_kv.partition_fragment_A(sdSt);  // (.., slab)
  Tensor tKVrdOt = thr_kv.partition_fragment_B(sdOt);  // (.., stage)
  Tensor tKVrQt = thr_kv.partition_fragment_B(sQt);    // (.., stage)
  Tensor tQrdS = thr_dq.partition_fragment_A(sdS);     // (.., slab)
  Tensor tQrKt = thr_dq.partition_fragment_B(sKtq);    // (.., column pass, half)
  // P^T and dS^T as register A operands (unused by kSmemPdS, dS^T by kRegsP), and the B
  // operands of those products (the same descriptors as thr_kv's).
  typename T::MmaKVrs mma_kv_rs;
  auto thr_kv_rs = mma_kv_rs.get_thread_slice(t);
  Tensor tKVsdOt = thr_kv_rs.partition_fragment_B(sdOt);  // (.., stage)
  Tensor tKVsQt = thr_kv_rs.partition_fragment_B(sQt);    // (.., stage)
  Tensor tdVrP = make_tensor<Element>(typename T::FragAKV{});
  Tensor tdKrdS = make_tensor<Element>(typename T::FragAKV{});
  static_assert(size(tdVrP) == 32, "a 64 x 64 A operand over a warpgroup");
  Tensor tdVrP32 = recast<uint32_t>(tdVrP);   // entry pairs (2 i, 2 i + 1)
  Tensor tdKrdS32 = recast<uint32_t>(tdKrdS);
  Tensor tdVrdV = partition_fragment_C(mma_kv, Shape<typename T::KH, typename T::HD>{});
  Tensor tdKrdK = partition_fragment_C(mma_kv, Shape<typename T::KH, typename T::HD>{});
  static_assert(size(tdVrdV) == D / 2, "fragment sizes");
  clear(tdVrdV);
  clear(tdKrdK);

  // Where this thread's P^T and dS^T entry pairs go: key row wrow + 8 h, query columns
  // 8 nt + qcol + {0, 1} of a (keys, rows) slab with 128-byte rows and 16-byte chunk nt at
  // chunk nt ^ (row % 8) (the 128-byte swizzle), row % 8 = lane / 4.
  const uint32_t pair_base = wrow * 128 + qcol * 2;
  const int chunk_xor = lane >> 2;
  const uint32_t p_slab = smem_addr(base + T::kOffP) + wg * (64 * 64 * 2) + pair_base;
  const uint32_t ds_smem_addr = smem_addr(base + T::kOffDS) + pair_base;
  // stmatrix (kStoreDSMatrix): lane l writes row l % 8 of matrix l / 8, that is key row
  // 16 warp + 8 ((l / 8) % 2) + l % 8 and query chunk nt0 + l / 16 (swizzled by the row % 8).
  constexpr bool kMatrixDS = kDSStore == kStoreDSMatrix && kRegDS;
  const uint32_t ds_matrix_row =
      smem_addr(base + T::kOffDS) + ((t >> 5) * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * 128;
  const uint32_t ds_matrix_chunk = ((lane >> 4) ^ (lane & 7)) << 4;
  const uint32_t dq_smem = smem_addr(base + T::kOffDQ) + wg * (64 * T::kDQRowBytes);
  const uint32_t dq_warp = smem_addr(base + T::kOffDQ) + (tid >> 5) * 4096;  // kTmaDQ

  const int key0 = c.k0 + wg * 64;  // first key of this warpgroup
  const bool mask = key0 + 64 > p.key_limit;
  // First accumulator row of this (batch, head), 32-bit (a live 64-bit pointer cost a spill).
  const int accum_row0 = c.bh * p.seq_pad;
  constexpr bool kPipe = pipelined(kSchedule);
  constexpr int kDQ = dq_mode(kSchedule);
  const int tiles = 2 * c.entries;
  // The next tile at or after t that lies below seq (only a tail block's second half does not).
  const auto valid_from = [&](int t) {
    while (t < tiles && tile_row(p, c, t) < 0) ++t;
    return t;
  };
  // Thread 0's loads: the next tile to load (lt) and how many are loaded (lj).
  int lt = valid_from(0), lj = 0;
  if (kOwnLoads && tid == 0 && c.entries > 0) {
    load_kv<T>(c, maps, smem_addr(base), bars);
    for (; lt < tiles && lj < kS; lt = valid_from(lt + 1), ++lj) {
      load_tile<T>(p, c, maps, smem_addr(base), bars, lt, lj);
    }
  }
  // Once this thread has released a stage: the next tile into it (waits for the other
  // warpgroup's release).
  const auto load_next = [&] {
    if (kOwnLoads && tid == 0 && lt < tiles) {
      load_tile<T>(p, c, maps, smem_addr(base), bars, lt, lj);
      lt = valid_from(lt + 1);
      ++lj;
    }
  };
  if (c.entries > 0) mbar_wait_spin(bar(bars->kv_full), 0);
  // S^T and dP^T: fragments kept across tiles where the next tile's products are issued at
  // the end of this one (pipelined), else made afresh each tile.
  [[maybe_unused]] Tensor tSrS_next =
      partition_fragment_C(mma_sdp, Shape<typename T::KH, typename T::QT>{});
  [[maybe_unused]] Tensor tSrdP_next =
      partition_fragment_C(mma_sdp, Shape<typename T::KH, typename T::QT>{});
  int tt = valid_from(0);
  if constexpr (kPipe) {
    // Issued whether or not a tile follows (an empty column's products read shared memory
    // nothing writes, and are dropped): a product issued under a branch made ptxas serialise
    // the products and spill.
    if (tt < tiles) mbar_wait_spin(bar(bars->full[0]), 0);
    issue<true>(mma_sdp, tSrK(_, _, _, wg), tSrQ(_, _, _, 0), tSrS_next);
    issue<true>(mma_sdp, tSrV(_, _, _, wg), tSrdO(_, _, _, 0), tSrdP_next);
  }
  int j = 0;  // tiles consumed
  for (; tt < tiles; ++j) {
    const int q0 = tile_row(p, c, tt);
    const int s = j % kS;
    const int buf = (j & 1) * 2;  // dS buffer j % 2 (slabs buf + half)
    Tensor tSrS = partition_fragment_C(mma_sdp, Shape<typename T::KH, typename T::QT>{});
    Tensor tSrdP = partition_fragment_C(mma_sdp, Shape<typename T::KH, typename T::QT>{});
    Tensor tdQrdQ = partition_fragment_C(mma_dq, Shape<typename T::QT, _64>{});
    static_assert(size(tSrS) == 32 && size(tdQrdQ) == 32, "fragments");
    if constexpr (kPipe) {
      // Issued at the end of the previous tile (or before the loop), behind its dK.
      warpgroup_wait<1>();  // S^T (and the previous tile's dK)
      warpgroup_fence_operand(tSrS_next);
      warpgroup_fence_operand(tdKrdK);
      if (j > 0) {
        mbar_arrive(bar(bars->empty[(j - 1) % kS]));  // its Q and dO are read
        load_next();
      }
    } else {
      mbar_wait_spin(bar(bars->full[s]), (j / kS) & 1);
      issue<true>(mma_sdp, tSrK(_, _, _, wg), tSrQ(_, _, _, s), tSrS);    // S^T = K Q^T
      issue<true>(mma_sdp, tSrV(_, _, _, wg), tSrdO(_, _, _, s), tSrdP);  // dP^T = V dO^T
      warpgroup_wait<1>();
      warpgroup_fence_operand(tSrS);
    }
    // The pipelined schedule's fragments, else this tile's (the other pair is dead code).
    auto& S = kPipe ? tSrS_next : tSrS;
    auto& dP = kPipe ? tSrdP_next : tSrdP;
    const uint32_t lse = lse_smem + s * T::kRowBytes;
    const uint32_t delta = delta_smem + s * T::kRowBytes;
    // P in float32 in S's registers (dS reads it: P rounded to the element type would add to
    // dS's error), stored in the element type for dV's product.
    [[maybe_unused]] float4 lse_pair;
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
      const float2 l = row_pair(lse, nt, lse_pair);  // columns 8 nt + qcol, + 1
      const uint32_t chunk = ((nt ^ chunk_xor) << 4);
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int i = 4 * nt + 2 * h;
        float p0 = fast_exp2(fmaf(S(i), p.scale_log2, -l.x));
        float p1 = fast_exp2(fmaf(S(i + 1), p.scale_log2, -l.y));
        if constexpr (kKeyMask == kMaskSelect) {
          if (mask && key0 + wrow + 8 * h >= p.key_limit) p0 = p1 = 0.f;
        }
        S(i) = p0;
        S(i + 1) = p1;
        if constexpr (kRegP && kKeyMask == kMaskSelect) {
          tdVrP32(i / 2) = pack2<Element>(p0, p1);
        } else if constexpr (!kRegP) {
          sts_b32(p_slab + h * 1024 + chunk, pack2<Element>(p0, p1));
        }
      }
    }
    if constexpr (kKeyMask == kMaskBranch) {
      // Rows wrow and wrow + 8 of this thread: zeroed past key_limit (rare: the branch skips
      // the selects in every other thread), then P^T rounded for dV's product.
      if (mask && key0 + wrow + 8 >= p.key_limit) {
#pragma unroll
        for (int i = 0; i < 32; ++i) {
          if (((i >> 1) & 1) || key0 + wrow >= p.key_limit) S(i) = 0.f;
        }
      }
#pragma unroll
      for (int i = 0; i < 32; i += 2) tdVrP32(i / 2) = pack2<Element>(S(i), S(i + 1));
    }
    if constexpr (kRegP) {
      // P^T from this thread's registers: no store, fence or barrier before dV's product.
      issue<false>(mma_kv_rs, tdVrP, tKVsdOt(_, _, _, s), tdVrdV);  // dV += P^T dO
      warpgroup_wait<1>();  // dP^T (dV's product may still run)
    } else if constexpr (kSchedule != kLateDV) {
      // P^T is this warpgroup's alone: once its 128 threads have stored it, dV's product runs
      // under the dS step.
      fence_proxy_async();
      warpgroup_barrier(wg);
      issue<false>(mma_kv, tKVrPt(_, _, _, wg), tKVrdOt(_, _, _, s), tdVrdV);  // dV += P^T dO
      warpgroup_wait<1>();  // dP^T (dV's product may still run)
    } else {
      warpgroup_wait<0>();
    }
    warpgroup_fence_operand(dP);
    [[maybe_unused]] const uint32_t ds_slab = ds_smem_addr + (buf + wg) * (64 * 64 * 2);
    [[maybe_unused]] float4 delta_pair;
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
      const float2 e = row_pair(delta, nt, delta_pair);  // columns 8 nt + qcol, + 1
      [[maybe_unused]] const uint32_t chunk = ((nt ^ chunk_xor) << 4);
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int i = 4 * nt + 2 * h;
        const uint32_t ds = pack2<Element>(S(i) * (dP(i) - e.x), S(i + 1) * (dP(i + 1) - e.y));
        if constexpr (!kMatrixDS) {
          sts_b32(ds_slab + h * 1024 + chunk, ds);  // for dQ's product (and dK's from shared)
        }
        if constexpr (kRegDS) tdKrdS32(i / 2) = ds;
      }
    }
    if constexpr (kMatrixDS) {
      // Matrices (nt, h) for nt = nt0, nt0 + 1 and h = 0, 1 (pairs 2 nt0 .. 2 nt0 + 3): keys
      // 8 h + 0..7 of this warp's 16, queries 8 nt + 0..7, in the same swizzled slab.
      const uint32_t slab = ds_matrix_row + (buf + wg) * (64 * 64 * 2);
#pragma unroll
      for (int nt0 = 0; nt0 < 8; nt0 += 2) {
        stsm_x4(slab + (ds_matrix_chunk ^ (nt0 << 4)), tdKrdS32(2 * nt0), tdKrdS32(2 * nt0 + 1),
                tdKrdS32(2 * nt0 + 2), tdKrdS32(2 * nt0 + 3));
      }
    }
    // dK's product needs only this thread's dS^T registers and Q: issued before the wait for
    // the other warpgroup (kEarlyDK), it runs while this one waits.
    if constexpr (kEarlyDK) issue<false>(mma_kv_rs, tdKrdS, tKVsQt(_, _, _, s), tdKrdK);
    fence_proxy_async();
    mbar_arrive(bar(bars->ds_ready));
    // Both warpgroups have stored their dS^T (and, before that, finished the products that
    // read this buffer two tiles ago).
    mbar_wait_spin(bar(bars->ds_ready), j & 1);
    if constexpr (kDQWriter) {
      // This warp's dQ buffer: tile j waits for the writer's adds of tile j - 1 to have read
      // it (long done by now), tile 0 for the phase before the first, which has passed.
      mbar_wait_spin(bar(bars->dq_empty[tid >> 5]), (j & 1) ^ 1);
    }
    if constexpr (kSchedule == kLateDV) {
      issue<false>(mma_kv, tKVrPt(_, _, _, wg), tKVrdOt(_, _, _, s), tdVrdV);  // dV += P^T dO
    }
    int dq_col = 0;
    if constexpr (T::kDQPasses == 2) {  // head dim 128: this warpgroup's 64 columns, all keys
      issue<true>(mma_dq, tQrdS(_, _, _, buf), tQrKt(_, _, _, wg, 0), tdQrdQ);
      issue<false>(mma_dq, tQrdS(_, _, _, buf + 1), tQrKt(_, _, _, wg, 1), tdQrdQ);
      dq_col = wg * 64;
    } else {  // head dim 64: all 64 columns, this warpgroup's keys
      issue<true>(mma_dq, tQrdS(_, _, _, buf + wg), tQrKt(_, _, _, 0, wg), tdQrdQ);
    }
    if constexpr (kEarlyDK) {
      // dK (issued first) and dQ are in; the next tile's S^T and dP^T go in before dQ's
      // stores, which then run under them.
      warpgroup_wait<0>();
      warpgroup_fence_operand(tdQrdQ);
      warpgroup_fence_operand(tdKrdK);
    } else {
      if constexpr (kRegDS) {
        issue<false>(mma_kv_rs, tdKrdS, tKVsQt(_, _, _, s), tdKrdK);  // dK += dS^T Q
      } else {
        issue<false>(mma_kv, tKVrdSt(_, _, _, buf + wg), tKVrQt(_, _, _, s), tdKrdK);
      }
      // dQ is in (dK's product, issued last, may still run): it goes out meanwhile.
      warpgroup_wait<1>();
      warpgroup_fence_operand(tdQrdQ);
    }
    const int tt_next = valid_from(tt + 1);
    // The next tile's S^T and dP^T (pipelined schedules), behind this tile's dK, or with
    // kEarlyDK before dQ's stores. After the last tile they are issued anyway (see above) on
    // the stage of the tile before it, which no load writes any more, and dropped.
    [[maybe_unused]] const auto issue_next = [&] {
      const int s1 = (j + 1) % kS;
      if (tt_next < tiles) mbar_wait_spin(bar(bars->full[s1]), ((j + 1) / kS) & 1);
      issue<true>(mma_sdp, tSrK(_, _, _, wg), tSrQ(_, _, _, s1), tSrS_next);
      issue<true>(mma_sdp, tSrV(_, _, _, wg), tSrdO(_, _, _, s1), tSrdP_next);
    };
    if constexpr (kEarlyDK) issue_next();
    float* rows = p.dq_accum + static_cast<int64_t>(accum_row0 + q0) * D + dq_col;
    if constexpr (kDQ == kBulkDQ) {
      // This warp's 16 rows: stored, then one bulk reduce per row by lanes 0..15. The rows'
      // previous reduces (a tile ago) have read them before they are overwritten.
      if (lane < 16) bulk_wait_read();
      __syncwarp();
#pragma unroll
      for (int i = 0; i < 32; i += 2) {
        const int row = wrow + 8 * ((i >> 1) & 1), col = 8 * (i >> 2) + qcol;
        sts_f32x2(dq_smem + row * T::kDQRowBytes + col * 4, tdQrdQ(i), tdQrdQ(i + 1));
      }
      fence_proxy_async();
      __syncwarp();
      if (lane < 16) {
        const int row = (t >> 5) * 16 + lane;
        bulk_reduce_add_f32(rows + row * D, dq_smem + row * T::kDQRowBytes, 64 * 4);
      }
    } else if constexpr (kDQ == kTmaDQ) {
      // This warp's 16 rows as two 32-column boxes (128-byte rows, 16-byte chunk k at
      // k ^ (row % 8)), added by lane 0 (or the producer's dQ writer) once its previous adds
      // have read them.
      const uint32_t warp = static_cast<uint32_t>(tid >> 5);
      if constexpr (!kDQWriter) {
        if (lane == 0) bulk_wait_read();
        __syncwarp();
      }
      if constexpr (C::kDQStore == kDQFragments) {
        // Slot k * 32 + lane holds entries 4 k .. 4 k + 3 (hopper_dq_offset): a warp's store
        // covers 512 consecutive bytes, no bank conflict.
#pragma unroll
        for (int k = 0; k < 8; ++k) {
          sts_f32x4(dq_warp + (k * 32 + lane) * 16, tdQrdQ(4 * k), tdQrdQ(4 * k + 1),
                    tdQrdQ(4 * k + 2), tdQrdQ(4 * k + 3));
        }
      } else {
#pragma unroll
        for (int i = 0; i < 32; i += 2) {
          const int row = (lane >> 2) + 8 * ((i >> 1) & 1), nt = i >> 2;
          const int chunk = (2 * (nt & 3) + (qcol >> 2)) ^ (lane >> 2);
          sts_f32x2(dq_warp + (nt >> 2) * 2048 + row * 128 + chunk * 16 + (qcol & 3) * 4,
                    tdQrdQ(i), tdQrdQ(i + 1));
        }
      }
      fence_proxy_async();
      __syncwarp();
      if (kDQWriter && lane == 0) mbar_arrive(bar(bars->dq_full[warp]));
      if (!kDQWriter && lane == 0) {
        const int row = q0 + (t >> 5) * 16;  // of this (batch, head)
        tma_reduce_add_3d(tdq, dq_warp, dq_col, row, c.bh);
        tma_reduce_add_3d(tdq, dq_warp + 2048, dq_col + 32, row, c.bh);
        bulk_commit();
      }
    } else {
#pragma unroll
      for (int i = 0; i < 32; i += 2) {
        const int row = wrow + 8 * ((i >> 1) & 1), col = 8 * (i >> 2) + qcol;
        atomicAdd(reinterpret_cast<float2*>(rows + row * D + col),
                  make_float2(tdQrdQ(i), tdQrdQ(i + 1)));
      }
    }
    if constexpr (kPipe) {
      if constexpr (!kEarlyDK) issue_next();
    } else {
      warpgroup_wait<0>();
      warpgroup_fence_operand(tdVrdV);
      warpgroup_fence_operand(tdKrdK);
      mbar_arrive(bar(bars->empty[s]));  // Q and dO of stage s are read
      load_next();
    }
    tt = tt_next;
  }
  if constexpr (kPipe) {
    warpgroup_wait<0>();  // the last tile's dK and the dropped products
    warpgroup_fence_operand(tdKrdK);
  }
  // The dQ reduces complete before the CTA ends (its shared memory is their source).
  if (kDQ == kBulkDQ && lane < 16) bulk_wait_all();
  // (With the dQ writer the consumers have no bulk group: the wait returns at once, but
  // without it ptxas serialised the products, C7515.)
  if (kDQ == kTmaDQ && lane == 0) bulk_wait_all();

  // dK (times the scale) and dV of this warpgroup's keys below seq, as element pairs.
  Element* dk = static_cast<Element*>(p.d_k) + c.b * p.dk_sb + c.h * p.dk_sh;
  Element* dv = static_cast<Element*>(p.d_v) + c.b * p.dv_sb + c.h * p.dv_sh;
#pragma unroll
  for (int i = 0; i < D / 2; i += 2) {
    const int row = wrow + 8 * ((i >> 1) & 1), col = 8 * (i >> 2) + qcol;
    const int key = key0 + row;
    if (key < p.seq) {
      *reinterpret_cast<uint32_t*>(dk + key * p.dk_ss + col) =
          pack2<Element>(tdKrdK(i) * p.scale, tdKrdK(i + 1) * p.scale);
      *reinterpret_cast<uint32_t*>(dv + key * p.dv_ss + col) =
          pack2<Element>(tdVrdV(i), tdVrdV(i + 1));
    }
  }
}

// kProducerDQWriter's dQ writer for consumer warp w (0..7; warpgroup w / 4, rows 16 (w % 4) of
// each tile): the same adds as the consumers' kTmaDQ step, issued here in tile order.
template <class T, int kDQStore>
__device__ __forceinline__ void write_dq(const BwdParams& p, const Column& c,
                                         unsigned char* base, Barriers<T::kStages>* bars,
                                         const CUtensorMap* tdq, int w) {
  const int dq_col = T::kDQPasses == 2 ? (w >> 2) * 64 : 0;
  const uint32_t src = smem_addr(base + T::kOffDQ) + w * 4096;
  const uint32_t full = smem_addr(&bars->dq_full[w]), empty = smem_addr(&bars->dq_empty[w]);
  float* accum = p.dq_accum + static_cast<int64_t>(c.bh) * p.seq_pad * T::kD;
  int j = 0;
  for (int t = 0; t < 2 * c.entries; ++t) {
    const int q0 = tile_row(p, c, t);
    if (q0 < 0) continue;
    mbar_wait_spin(full, j & 1);
    if constexpr (kDQStore == kDQFragments) {
      // The 16 x 64 tile that starts at (row q0 + 16 (w % 4), column dq_col): 4096
      // consecutive bytes.
      bulk_reduce_add_f32(accum + hopper_dq_offset(q0 + (w & 3) * 16, dq_col, T::kD), src,
                          4096);  // (commits)
    } else {
      tma_reduce_add_3d(tdq, src, dq_col, q0 + (w & 3) * 16, c.bh);
      tma_reduce_add_3d(tdq, src + 2048, dq_col + 32, q0 + (w & 3) * 16, c.bh);
      bulk_commit();
    }
    bulk_wait_read();
    mbar_arrive(empty);
    ++j;
  }
  bulk_wait_all();  // complete before the CTA ends (its shared memory is their source)
}

template <class T, class C>
__global__ void __launch_bounds__(threads(C::kWarps), 1)
    bwd_hopper_kernel(const BwdParams p, const __grid_constant__ CUtensorMap tq,
                      const __grid_constant__ CUtensorMap tk,
                      const __grid_constant__ CUtensorMap tv,
                      const __grid_constant__ CUtensorMap tdo,
                      const __grid_constant__ CUtensorMap tdq) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr int kS = T::kStages, kWarps = C::kWarps;
  extern __shared__ unsigned char smem_raw[];
  unsigned char* base = reinterpret_cast<unsigned char*>(
      (reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~static_cast<uintptr_t>(1023));
  auto* bars = reinterpret_cast<Barriers<kS>*>(base + T::kOffBars);
  if (threadIdx.x == 0) {
    mbar_init(smem_addr(&bars->kv_full), 1);
    for (int s = 0; s < kS; ++s) {
      mbar_init(smem_addr(&bars->full[s]), 1);
      mbar_init(smem_addr(&bars->empty[s]), kConsumers);
    }
    mbar_init(smem_addr(&bars->ds_ready), kConsumers);
    if constexpr (kWarps == kProducerDQWriter) {  // the other kernels leave them unused
      for (int w = 0; w < 8; ++w) {
        mbar_init(smem_addr(&bars->dq_full[w]), 1);
        mbar_init(smem_addr(&bars->dq_empty[w]), 1);
      }
    }
    mbar_init_fence();
  }
  __syncthreads();
  if constexpr (kWarps != kConsumerLoads) {
    static_assert(kWarps != kProducerDQWriter || dq_mode(C::kSchedule) == kTmaDQ,
                  "the dQ writer issues tensor reduce-adds");
    if (threadIdx.x < 128) {
      // 128 x 24 + 256 x 240 = 64,512 of the 65,536 registers.
      hopper::regs_decrease<24>();
      const Column c = load_column(p);
      if (threadIdx.x == 0 && c.entries > 0) {
        const Maps maps{&tq, &tk, &tv, &tdo};
        load_kv<T>(c, maps, smem_addr(base), bars);
        int j = 0;
        for (int t = 0; t < 2 * c.entries; ++t) {
          if (tile_row(p, c, t) < 0) continue;
          load_tile<T>(p, c, maps, smem_addr(base), bars, t, j++);
        }
      }
      if constexpr (kWarps == kProducerDQWriter) {
        if (threadIdx.x >= 32 && threadIdx.x < 40) {
          write_dq<T, C::kDQStore>(p, c, base, bars, &tdq, static_cast<int>(threadIdx.x) - 32);
        }
      }
      return;
    }
    hopper::regs_increase<240>();
  }
  const Column c = load_column(p);
  consume<T, C>(p, c, base, bars, Maps{&tq, &tk, &tv, &tdo}, &tdq);
#endif
}

// C = Library: the library's kernel; any other: a comparison variant
// (bwd_hopper_variants_*.cu). Returns the order in which the kernel left dQ's accumulator.
template <class T, class C = Library>
DQAccumOrder launch(const BwdParams& p, cudaStream_t stream) {
  static_assert(sizeof(Barriers<T::kStages>) <= 256, "barriers fit their reserve");
  static_assert(T::kSmemBytes <= 227 * 1024, "shared memory of an sm_90 CTA");
  const bool f16 = std::is_same_v<typename T::Element, cutlass::half_t>;
  const int64_t batch = p.batch_heads / p.heads;
  const int key_rows = p.key_limit > 0 ? p.key_limit : 1;
  const auto map = [&](const void* data, int rows, int64_t ss, int64_t sh, int64_t sb) {
    return hopper::make_rows_map(data, T::kD, f16, rows, p.heads, batch, ss, sh, sb, 64);
  };
  const CUtensorMap tq = map(p.q, p.seq, p.q_ss, p.q_sh, p.q_sb);
  const CUtensorMap tk = map(p.k, key_rows, p.k_ss, p.k_sh, p.k_sb);
  const CUtensorMap tv = map(p.v, key_rows, p.v_ss, p.v_sh, p.v_sb);
  const CUtensorMap tdo = map(p.d_out, p.seq, p.do_ss, p.do_sh, p.do_sb);
  const CUtensorMap tdq =
      hopper::make_accum_map(p.dq_accum, T::kD, p.seq_pad, p.batch_heads, 16);
  const auto kernel = bwd_hopper_kernel<T, C>;
  constexpr int kSmem = T::kSmemBytes;
  RADIAL_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
  const int64_t ctas = p.batch_heads * p.block_rows;
  kernel<<<static_cast<unsigned>(ctas), threads(C::kWarps), kSmem, stream>>>(p, tq, tk, tv,
                                                                             tdo, tdq);
  check_cuda(cudaGetLastError(),
             "bwd_hopper_kernel<<<...>>> (dK, dV and dQ by atomics of the Hopper backward)");
  return C::kDQStore == kDQFragments ? DQAccumOrder::hopper_fragments : DQAccumOrder::rows;
}

// The instantiation of T for a comparison variant (KernelChoice::variant bwd_*), or nullptr
// for any other variant.
template <class T>
BwdMainKernel variant_launch(Variant variant) {
  // The library's choices before rounds 7 and 8 (32-bit dS^T stores, 8-byte row loads, dQ
  // boxes, selects for the key mask), which the older variants kept.
  constexpr int kDS32 = kStoreDS32, kR64 = kRows64, kBox = kDQBoxes, kSel = kMaskSelect;
  switch (variant) {
    case Variant::bwd_rs_dv:
      return launch<T, Config<kRegsP, kConsumerLoads, kDS32, kR64, kBox, kSel>>;
    case Variant::bwd_ss:
      return launch<T, Config<kSmemPdS, kConsumerLoads, kDS32, kR64, kBox, kSel>>;
    case Variant::bwd_early_dk:
      return launch<T, Config<kRegsPdSEarlyDK, kConsumerLoads, kDS32, kR64, kBox, kSel>>;
    case Variant::bwd_consumer_loads:
      return launch<T, Config<kRegsPdS, kConsumerLoads, kDS32, kR64, kBox, kSel>>;
    case Variant::bwd_consumer_dq:
      return launch<T, Config<kRegsPdS, kProducerWarpgroup, kDS32, kR64, kBox, kSel>>;
    case Variant::bwd_sts_ds:
      return launch<T, Config<kRegsPdS, kProducerDQWriter, kDS32, kR64, kBox, kSel>>;
    case Variant::bwd_lds64:
      return launch<T, Config<kRegsPdS, kProducerDQWriter, kStoreDSMatrix, kR64, kBox, kSel>>;
    case Variant::bwd_dq_boxes:
      return launch<T, Config<kRegsPdS, kProducerDQWriter, kStoreDSMatrix, kRows128, kBox,
                              kMaskBranch>>;
    case Variant::bwd_mask_select:
      return launch<T, Config<kRegsPdS, kProducerDQWriter, kStoreDSMatrix, kRows128,
                              kDQFragments, kSel>>;
    default: return nullptr;
  }
}

}  // namespace radial::cuda_detail::hopper_bwd
