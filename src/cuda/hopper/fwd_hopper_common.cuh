// What the Hopper forward kernel's pieces share: tile shapes and CuTe layouts per element type
// and head dim, the wgmma tiled MMAs, issuing a warpgroup product, the online softmax on
// wgmma accumulators, and the epilogue.
#pragma once

#include <cute/arch/mma_sm90.hpp>
#include <cute/atom/mma_atom.hpp>
#include <cute/atom/mma_traits_sm90_gmma.hpp>
#include <cute/tensor.hpp>
// after tensor.hpp, which they need first
#include <cute/atom/copy_atom.hpp>
#include <cute/atom/copy_traits_sm75.hpp>
#include <cutlass/numeric_types.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "cuda/block_walk.cuh"
#include "cuda/fwd_params.hpp"
#include "cuda/ptx.cuh"

namespace radial::cuda_detail::hopper {

using namespace cute;

// One query block of 128 rows per tile (two consumer warpgroups of 64 rows), 128 keys per
// step, K and V in kStages shared-memory stages.
// Stages: D 128 Q 32 KB + 2 x 64 KB (3 stages, 224 KB, also fit and gained nothing on an
// H100); D 64 Q 16 KB + 4 x 32 KB, deeper for the shorter steps.
// kLateWait (a comparison build, KernelChoice::variant bf16_late_wait): the overlap schedules
// keep the wait for P V below the exponentials (end_block), which ptxas otherwise hoists above
// the softmax, so that the softmax runs under the P V product as the schedule intends.
template <class Element_, int kHeadDim, int kStages_ = (kHeadDim == 64 ? 4 : 2),
          bool kLateWait_ = false>
struct Traits {
  using Element = Element_;
  static constexpr int kConsumerWGs = 2;  // 64 query rows each
  static constexpr int kThreads = 384, kConsumers = 256;
  static constexpr int kD = kHeadDim, kBM = 128, kBN = 128;
  static constexpr int kStages = kStages_;
  static constexpr bool kLateWait = kLateWait_;
  static constexpr bool kFp8 = false;  // see Fp8Traits (fwd_fp8_common.cuh)
  // setmaxnreg of the producer and consumer warpgroups (40: no spills in the producer).
  static constexpr int kProducerRegs = 40, kConsumerRegs = 232;
  static constexpr int kBiasBytes = 0, kMetaBytes = 0;  // (FP8 only)
  static constexpr bool kStagedMeta = false, kWg3 = false;
  using BM = Int<kBM>;
  using BN = Int<kBN>;
  using HD = Int<kD>;
  using St = Int<kStages>;

  // K-major, 128-byte swizzle: 8-row by 64-column atoms (16-byte chunk c of row r stored at
  // chunk c ^ (r & 7)), tiled down the rows first, then across 64-column slabs, then stages:
  // each 128 x 64 slab is one TMA box.
  using SmemLayoutQ =
      decltype(tile_to_shape(GMMA::Layout_K_SW128_Atom<Element>{}, Shape<BM, HD>{}));
  using SmemLayoutKV =
      decltype(tile_to_shape(GMMA::Layout_K_SW128_Atom<Element>{}, Shape<BN, HD, St>{}));
  // V seen as (head dim, keys): the B operand of P V, MN-major.
  using SmemLayoutVt = decltype(composition(
      SmemLayoutKV{}, make_ordered_layout(Shape<HD, BN, St>{}, Step<_2, _1, _3>{})));

  // Two warpgroups stacked along M (rows 0-63, 64-127 of the query block).
  using MmaQK = decltype(make_tiled_mma(
      GMMA::ss_op_selector<Element, Element, float, Shape<_64, BN, HD>>(),
      Layout<Shape<_2, _1, _1>>{}));
  // Q K^T with Q in registers (loaded once per tile by ldmatrix): a fifth less shared-memory
  // operand traffic per key block, 32 more registers per consumer thread.
  using MmaQKrs = decltype(make_tiled_mma(
      GMMA::rs_op_selector<Element, Element, float, Shape<_64, BN, HD>>(),
      Layout<Shape<_2, _1, _1>>{}));
  using MmaPV = decltype(make_tiled_mma(
      GMMA::rs_op_selector<Element, Element, float, Shape<_64, HD, BN>, GMMA::Major::K,
                           GMMA::Major::MN>(),
      Layout<Shape<_2, _1, _1>>{}));

  static constexpr int kBoxCols = 64;  // 128 bytes: one swizzle atom wide
  static constexpr int kBoxes = kD / kBoxCols;
  static constexpr int kBoxBytes = kBN * kBoxCols * 2;
  static constexpr int kQBytes = kBM * kD * 2;
  static constexpr int kTileBytes = kBN * kD * 2;
  static constexpr int kVtBytes = kTileBytes;  // (the FP8 kernel's V^T may have more rows)
  static constexpr int kVtRows = kD;
  static constexpr int kPBytes = 0;  // (the FP8 kernel's P tile in shared memory, if any)
};

// Issues one warpgroup-wide matrix product C (+)= A B over the whole K extent as one wgmma
// group; the caller waits (warpgroup_wait) and then calls fence_after on what it reads.
template <bool Zero, class Mma, class TA, class TB, class TC>
__device__ __forceinline__ void wg_issue(Mma& mma, TA& a, TB const& b, TC& c) {
  constexpr bool kRegA =
      !cute::is_base_of<cute::GMMA::DescriptorIterator, typename Mma::FrgTypeA>::value;
  if constexpr (kRegA) warpgroup_fence_operand(a);
  warpgroup_fence_operand(c);
  warpgroup_arrive();
  if constexpr (Zero) mma.accumulate_ = GMMA::ScaleOut::Zero;
  CUTE_UNROLL
  for (int k = 0; k < size<2>(a); ++k) {
    cute::gemm(mma, a(_, _, k), b(_, _, k), c);
    mma.accumulate_ = GMMA::ScaleOut::One;
  }
  warpgroup_commit_batch();
}

// Q's tile from shared memory into the A registers of the RS Q K^T product (ldmatrix), once a
// tile (the bf16 kernel's q_registers schedule, the FP8 kernel's kQRegs).
template <class Element, class Mma, class TSQ, class TRQ>
__device__ __forceinline__ void load_q_registers(const Mma& mma, const TSQ& sQ, TRQ& rQ,
                                                 int tid) {
  auto s2r = make_tiled_copy_A(Copy_Atom<SM75_U32x4_LDSM_N, Element>{}, mma);
  auto thr_s2r = s2r.get_thread_slice(tid);
  Tensor tQsQ = thr_s2r.partition_S(sQ);
  Tensor tQrQ = thr_s2r.retile_D(rQ);
  cute::copy(s2r, tQsQ, tQrQ);
}

// The scores of one 128-key block's keys at key_limit and beyond set to -inf (only a block that
// crosses key_limit has any), in n-tiles [kFrom, kTo) (the FP8 S halves mask one at a time).
template <int kFrom = 0, int kTo = 16, class TS>
__device__ __forceinline__ void mask_past_key_limit(TS& s, int key0, int key_limit, int lane) {
  constexpr int kNT = 16;  // 8-key n-tiles
  if (crosses_key_limit(key0, kNT * 8, key_limit)) {
#pragma unroll
    for (int i = 4 * kFrom; i < 4 * kTo; ++i) {
      if (fragment_key(key0, i >> 2, i & 3, lane) >= key_limit) s(i) = -INFINITY;
    }
  }
}

// The online softmax of one 128-key block, in place: scores become unnormalised probabilities
// (exp2 with the scale folded in), row_max and row_sum advance, alpha gets the factors by
// which what was accumulated so far must be rescaled. Each thread's accumulator entries
// i = 4 nt + 2 half + j are row lane / 4 + 8 half of its warp's 16 and column
// 8 nt + 2 (lane % 4) + j; a row's four threads are one quad.
// kScaled (the FP8 kernel): the entries are raw products that s_scale turns into scores (the
// quantisation scales), and the probabilities come out multiplied by 2^p_log2 (so that small
// ones stay normal numbers in e4m3); row_max stays in score units, row_sum carries the factor.
template <bool kScaled = false, class TS>
__device__ __forceinline__ void online_softmax(TS& s, int key0, int key_limit, float scale_log2,
                                               float (&row_max)[2], float (&row_sum)[2],
                                               float (&alpha)[2], int lane,
                                               float s_scale = 1.f, float p_log2 = 0.f) {
  constexpr int kNT = 16;  // 8-key n-tiles
  mask_past_key_limit(s, key0, key_limit, lane);
  float base[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    float m = kScaled ? -INFINITY : row_max[half];
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt)
      m = fmaxf(m, fmaxf(s(nt * 4 + half * 2), s(nt * 4 + half * 2 + 1)));
    m = quad_max(m);
    if constexpr (kScaled) m = fmaxf(row_max[half], m * s_scale);
    base[half] = softmax_base(m, scale_log2);
    alpha[half] = softmax_alpha(row_max[half], base[half], scale_log2);
    row_max[half] = m;
    if constexpr (kScaled) base[half] -= p_log2;
  }
  const float exp_scale = kScaled ? scale_log2 * s_scale : scale_log2;
  float sum[2] = {0.f, 0.f};
#pragma unroll
  for (int i = 0; i < kNT * 4; ++i) {
    const int half = (i >> 1) & 1;
    const float e = softmax_exp(s(i), exp_scale, base[half]);
    s(i) = e;
    sum[half] += e;
  }
  row_sum[0] = softmax_sum(row_sum[0], alpha[0], sum[0]);
  row_sum[1] = softmax_sum(row_sum[1], alpha[1], sum[1]);
}

// A branch that is never taken (row sums are never negative) ends the basic block here.
// ptxas moves a wgmma wait up to the start of its basic block: in the overlap schedules the wait
// for P V, written after the softmax, lands above the exponentials (cuobjdump -sass: no MUFU
// between the two waits), and with this call before it, it stays below them.
__device__ __forceinline__ void end_block(float never_negative) {
  if (never_negative < 0.f) __trap();
}

// O *= alpha per row (O's entries follow the same i = 4 nt + 2 half + j order).
template <class TO>
__device__ __forceinline__ void rescale(TO& o, const float (&alpha)[2]) {
#pragma unroll
  for (int i = 0; i < size(o); ++i) o(i) *= alpha[(i >> 1) & 1];
}

// P = S in the element type, entry by entry (the RS A fragment has the accumulator's order,
// a k-step of 16 being two n-tiles).
template <class TS, class TP>
__device__ __forceinline__ void convert(const TS& s, TP& pf) {
  using E = typename TP::value_type;
#pragma unroll
  for (int i = 0; i < size(s); ++i) pf(i) = static_cast<E>(s(i));
}

template <class Element>
__device__ __forceinline__ uint32_t pack2(float a, float b) {
  if constexpr (std::is_same_v<Element, cutlass::bfloat16_t>) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
    return *reinterpret_cast<const uint32_t*>(&h);
  } else {
    const __half2 h = __floats2half2_rn(a, b);
    return *reinterpret_cast<const uint32_t*>(&h);
  }
}

// Normalises the rows (full sums over each quad), stores them as element pairs, and the
// log-sum-exp when asked. tid: 0..255 over the consumer warpgroups. kNTOut: the n-tiles stored
// (0: all of O's; the FP8 kernel's row-sum columns are not stored).
template <int kNTOut = 0, class Element, class TO>
__device__ __forceinline__ void store_output(const FwdParams& p, Element* og, const TO& tOrO,
                                             const float (&row_max)[2],
                                             const float (&row_sum)[2], int q0, int tid,
                                             int lane, int64_t bh,
                                             const float (&lse_add)[2] = {0.f, 0.f}) {
  // 8-column n-tiles of the head dim
  constexpr int kNT = kNTOut > 0 ? kNTOut : decltype(size(tOrO))::value / 4;
  const int warp_row = (tid >> 5) * 16 + (lane >> 2);
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const float sum = quad_sum(row_sum[half]);
    const float inv = row_inverse(sum);
    const int row = q0 + warp_row + half * 8;
    if (row < p.seq) {
      Element* orow = og + static_cast<int64_t>(row) * p.o_ss + (lane & 3) * 2;
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt) {
        *reinterpret_cast<uint32_t*>(orow + nt * 8) = pack2<Element>(
            tOrO(nt * 4 + half * 2) * inv, tOrO(nt * 4 + half * 2 + 1) * inv);
      }
      if (p.lse != nullptr && (lane & 3) == 0) {
        p.lse[bh * p.seq + row] = row_lse(row_max[half], sum, p.scale) + lse_add[half];
      }
    }
  }
}

}  // namespace radial::cuda_detail::hopper
