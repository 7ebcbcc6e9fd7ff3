// The FP8 forward with three consumer warpgroups (Fp8Traits::kWg3): the library's kernel at
// head dim 128 since round 7 (kFp8LibraryD128), one CTA per tile. Since round 11 the library's
// consumers are fwd_fp8_wg3_f16.cuh's (S in f16); those below, S in fp32, are round 10's
// (kFp8Round10D128) and the comparison variants'.
//
// Why: the two-warpgroup FP8 step is one warp's serial softmax with one other warp per
// scheduler to fill its gaps (bench/gpu/HOPPER_NOTES.md, round 5 c-); a third warpgroup gives
// each scheduler a third warp. Its price is registers: 160 a consumer thread (128 x 32 +
// 384 x 160 of 65536), so a warpgroup does not overlap S with P V (S, O, the per-block P V
// accumulator and P would not fit), and P V is two products in turn, V^T's rows 0-63 and
// 64-135 (the head dim's second half and the row sums' 8), into one 36-register accumulator each
// added to O in fp32 (O = O x alpha + Ot, one FFMA: O holds the blocks before under the previous
// maximum).
//
// Tiles are 192 query rows: 64 a warpgroup, each warpgroup's rows inside one of the plan's
// 128-row query blocks (tile i's rows 192 i .. 192 i + 191 cover a whole block and half of a
// neighbour). The producer walks the union of the two blocks' key lists (both sorted, merged;
// the lists' rotation, RowOrder::locality's, is not used) and stages with each K block which
// of the two blocks keeps it; a warpgroup skips the blocks its own does not keep (it still
// waits for both stages and releases them, so that no stage is refilled early). One CTA per
// tile (no persistent hand-out: persistent=on runs the two-warpgroup kernel), the tiles of a
// (batch, head) in FwdParams::tile_order if set (since round 14, row_order=locality: the
// locality order's tiles, schedule::tile192_order), else in natural order.
//
// The block loop's branches, its stage index and the warpgroup index come from warp votes
// (Fp8Traits::kUniform, round 9): ptxas then keeps the products' shared-memory descriptors in
// uniform registers, where it otherwise built them in ordinary ones and moved each by R2UR.
// With the tile loop's exit voted too (kUniformLoop, round 10) ptxas knows the block counter
// itself to be uniform, and the stage index needs no vote a bit.
#pragma once

#include <climits>

#include "cuda/hopper/fwd_fp8_common.cuh"
#include "cuda/hopper/fwd_hopper_kernel.cuh"

namespace radial::cuda_detail::hopper {

// Staged metadata's first word: the block's first key (a multiple of 128) with these bits.
constexpr int kWg3KeptByA = 1, kWg3KeptByB = 2, kWg3Last = 4;

struct Wg3Tile {
  int b, h, q0;
  int64_t bh;
  int qa, qb;  // the query blocks of its rows (qa == qb when there is one)
};

__device__ __forceinline__ int wg3_tiles_per_head(const FwdParams& p) {
  return (p.seq + 191) / 192;
}

__device__ __forceinline__ Wg3Tile load_wg3_tile(const FwdParams& p, int index) {
  const int per_head = wg3_tiles_per_head(p);
  Wg3Tile t;
  t.bh = index / per_head;
  t.b = static_cast<int>(t.bh / p.heads);
  t.h = static_cast<int>(t.bh % p.heads);
  const int rank = index - static_cast<int>(t.bh) * per_head;
  t.q0 = (p.tile_order != nullptr ? __ldg(p.tile_order + rank) : rank) * 192;
  t.qa = t.q0 / 128;
  t.qb = min((t.q0 + 191) / 128, p.block_rows - 1);
  return t;
}

// The producer thread for 192-row tiles: Q as three 64-row boxes, then the merged key lists.
template <class T>
__device__ void produce_wg3(const FwdParams& p, const CUtensorMap* tq, const CUtensorMap* tk,
                            const CUtensorMap* tv, uint32_t sq, uint32_t sk, uint32_t sv,
                            uint32_t sb, float4* meta, Barriers<T::kStages>* bars) {
  constexpr int kS = T::kStages;
  const auto bar = [](uint64_t& x) { return smem_addr(&x); };
  const uint32_t q_full = bar(bars->q_full), q_empty = bar(bars->q_empty);
  uint32_t it = 0;
  for (int j = 0;; ++j) {
    const int index = next_tile_producer(p, bars, j);
    if (index < 0) break;
    const Wg3Tile tile = load_wg3_tile(p, index);
    if (j > 0) mbar_wait(q_empty, (j - 1) & 1);
    mbar_arrive_expect_tx(q_full, T::kQBytes);
#pragma unroll
    for (int r = 0; r < T::kBM / 64; ++r) {
      tma_load_4d(sq + r * 64 * T::kD, tq, q_full, 0, tile.q0 + 64 * r, tile.h, tile.b);
    }
    const int begin_a = __ldg(p.row_offset + tile.qa), end_a = __ldg(p.row_offset + tile.qa + 1);
    int begin_b = __ldg(p.row_offset + tile.qb), end_b = __ldg(p.row_offset + tile.qb + 1);
    const bool one = tile.qa == tile.qb;
    if (one) begin_b = end_b;  // (one list: every block kept by both bits)
    int ia = begin_a, ib = begin_b;
    while (ia < end_a || ib < end_b) {
      const int ca = ia < end_a ? __ldg(p.col_index + ia) : INT_MAX;
      const int cb = ib < end_b ? __ldg(p.col_index + ib) : INT_MAX;
      const int c = min(ca, cb);
      int flags = one ? kWg3KeptByA | kWg3KeptByB
                      : (ca == c ? kWg3KeptByA : 0) | (cb == c ? kWg3KeptByB : 0);
      ia += ca == c, ib += cb == c;
      if (ia >= end_a && ib >= end_b) flags |= kWg3Last;
      const int key0 = c * 128;
      const int s = it % kS;
      const uint32_t parity = ((it / kS) & 1) ^ 1;  // the previous use's release
      const int64_t kb = tile.bh * p.block_rows + c;
      const float2 shift = __ldg(reinterpret_cast<const float2*>(p.fp8.k_block_shift) + kb);
      const float4 m =
          make_float4(__int_as_float(key0 | flags), __ldg(p.fp8.k_scale + kb), shift.x, shift.y);
      if (it >= kS) mbar_wait(bar(bars->k_empty[s]), parity);
      asm volatile("st.shared.v4.f32 [%0], {%1, %2, %3, %4};\n" ::"r"(smem_addr(meta + s)),
                   "f"(m.x), "f"(m.y), "f"(m.z), "f"(m.w)
                   : "memory");
      mbar_arrive_expect_tx(bar(bars->k_full[s]), T::kTileBytes + T::kBiasBytes);
      tma_load_4d(sk + s * T::kTileBytes, tk, bar(bars->k_full[s]), 0, key0, tile.h, tile.b);
      bulk_load(sb + s * T::kBiasBytes, p.fp8.k_bias + tile.bh * p.fp8.padded_seq + key0,
                T::kBiasBytes, bar(bars->k_full[s]));
      if (it >= kS) mbar_wait(bar(bars->v_empty[s]), parity);
      mbar_arrive_expect_tx(bar(bars->v_full[s]), T::kVtBytes);
      tma_load_4d(sv + s * T::kVtBytes, tv, bar(bars->v_full[s]), key0, 0, tile.h, tile.b);
      ++it;
    }
  }
}

// V^T's rows [row0, row0 + Layout's rows) of stage s, as thread slice thr's B operand of a P V
// product (P V in parts: each part's rows at their byte offset).
template <class T, class Layout, class Thr, class S>
__device__ __forceinline__ auto vt_rows(const Thr& thr, typename T::Element* v_smem, S s,
                                        int row0) {
  return thr.partition_fragment_B(
      make_tensor(make_smem_ptr(v_smem + s * T::kVtBytes + row0 * T::kBN), Layout{}));
}

// O[kFirst ..] = O x alpha + Ot per row.
template <int kFirst, class TO, class TT>
__device__ __forceinline__ void fma_into(TO& o, const TT& ot, const float (&alpha)[2]) {
#pragma unroll
  for (int i = 0; i < size(ot); ++i) {
    o(kFirst + i) = fmaf(o(kFirst + i), alpha[(i >> 1) & 1], ot(i));
  }
}

// Fp8Traits::kTrace: clock stamps of a block's phases (t0 the K stage ready, t1 S issued, t2 S
// done, t3 P ready, t4 P V issued, t5 the block done) by lane 0 of warp 0 of each warpgroup
// (the three share scheduler 0) of one CTA in the middle of a large grid, into a buffer that the
// trace variants' files define (RADIAL_WG3_TRACE, before this header) and print after the kernel
// (a printf in the kernel would make ptxas serialise its wgmma).
struct Wg3Trace;
#ifdef RADIAL_WG3_TRACE
constexpr int kWg3TraceMax = 96;
static __device__ uint32_t g_wg3_trace[3][kWg3TraceMax][7];  // t0 .. t5, own
static __device__ int g_wg3_trace_n[3], g_wg3_trace_cta[2];  // blocks; the CTA and its SM
struct Wg3Trace {
  int wg, n = 0;
  bool on = false;
  __device__ __forceinline__ void stamp(int k) {
    uint32_t c;
    asm volatile("mov.u32 %0, %%clock;\n" : "=r"(c));
    if (on && n < kWg3TraceMax) g_wg3_trace[wg][n][k] = c;
  }
  __device__ __forceinline__ void next(bool mine) {
    if (on && n < kWg3TraceMax) g_wg3_trace[wg][n++][6] = mine;
  }
  __device__ void finish() const {
    if (!on) return;
    g_wg3_trace_n[wg] = n;
    uint32_t sm;
    asm volatile("mov.u32 %0, %%smid;\n" : "=r"(sm));
    g_wg3_trace_cta[0] = static_cast<int>(blockIdx.x), g_wg3_trace_cta[1] = static_cast<int>(sm);
  }
};
// One line a block: "TRACE cta sm wg block own t0 .. t5".
static __global__ void print_wg3_trace() {
  for (int wg = 0; wg < 3; ++wg) {
    for (int i = 0; i < g_wg3_trace_n[wg]; ++i) {
      const uint32_t* t = g_wg3_trace[wg][i];
      printf("TRACE %d %d %d %d %u %u %u %u %u %u %u\n", g_wg3_trace_cta[0], g_wg3_trace_cta[1],
             wg, i, t[6], t[0], t[1], t[2], t[3], t[4], t[5]);
    }
  }
}
#endif
struct Wg3NoTrace {
  __device__ __forceinline__ void stamp(int) {}
  __device__ __forceinline__ void next(bool) {}
  __device__ __forceinline__ void finish() const {}
};

// Fp8Traits::kRing: named barriers 1-3, warpgroup w waiting on barrier 1 + w for its turn and
// passing it on to the next one's. The first warpgroup's first turn needs no wait.
struct Wg3Ring {
  int wg, turn = 0;
  __device__ __forceinline__ void wait() const {
    if (wg != 0 || turn != 0) asm volatile("bar.sync %0, 256;\n" ::"r"(1 + wg) : "memory");
  }
  __device__ __forceinline__ void pass() {
    asm volatile("bar.arrive %0, 256;\n" ::"r"(wg == 2 ? 1 : wg + 2) : "memory");
    ++turn;
  }
};

// Fp8Traits::kSF16's consumers (fwd_fp8_wg3_f16.cuh, included at the end).
template <class T>
__device__ void consume_fp8_wg3_f16(const FwdParams& p, typename T::Element* q_smem,
                                    typename T::Element* k_smem, typename T::Element* v_smem,
                                    const float* bias_smem, const float4* meta,
                                    Barriers<T::kStages>* bars);

template <class T>
__device__ void consume_fp8_wg3(const FwdParams& p, typename T::Element* q_smem,
                                typename T::Element* k_smem, typename T::Element* v_smem,
                                const float* bias_smem, const float4* meta,
                                Barriers<T::kStages>* bars) {
  if constexpr (T::kSF16) {
    consume_fp8_wg3_f16<T>(p, q_smem, k_smem, v_smem, bias_smem, meta, bars);
    return;
  }
  using Element = typename T::Element;
  constexpr int kS = T::kStages;
  const auto bar = [](uint64_t& x) { return smem_addr(&x); };
  const uint32_t q_full = bar(bars->q_full), q_empty = bar(bars->q_empty);
  const int tid = static_cast<int>(threadIdx.x) - 128;  // 0..383 over the consumers
  // (kUniform: the warpgroup index, the stage index and the loop's tests of the staged metadata
  // by warp votes, whose results ptxas knows to be the same in all lanes)
  const auto uniform = [](bool x) { return !T::kUniform ? x : __any_sync(0xffffffffu, x) != 0; };
  const int wg = !T::kUniform ? tid >> 7 : uniform(tid & 128) | uniform(tid & 256) << 1;
  const int slice = T::kUniform ? wg * 128 : tid;  // (the descriptors depend on wg only)
  const int lane = tid & 31;

  Tensor sQ = make_tensor(make_smem_ptr(q_smem), typename T::SmemLayoutQ{});
  Tensor sK = make_tensor(make_smem_ptr(k_smem), typename T::SmemLayoutKV{});
  typename T::MmaQK mma_qk;
  typename T::MmaQKh mma_qkh;  // (kSHalves)
  typename T::MmaPV mma_pv;  // (O's fragment: the head dim and the row sums' columns)
  typename T::MmaPVa mma_pva;
  typename T::MmaPVb mma_pvb;
  auto thr_qk = mma_qk.get_thread_slice(slice);
  auto thr_qkh = mma_qkh.get_thread_slice(slice);
  auto thr_pva = mma_pva.get_thread_slice(slice);
  auto thr_pvb = mma_pvb.get_thread_slice(slice);
  Tensor tSrQ = thr_qk.partition_fragment_A(sQ);
  Tensor tSrK = thr_qk.partition_fragment_B(sK);
  Tensor tSrS = partition_fragment_C(mma_qk, Shape<typename T::BM, typename T::BN>{});
  // (kSHalves: S's entries for keys 0-63 and 64-127, views of tSrS's first and last 32)
  Tensor tShQ = thr_qkh.partition_fragment_A(sQ);
  const auto half_layout =
      layout(partition_fragment_C(mma_qkh, Shape<typename T::BM, _64>{}));
  Tensor tSrSa = make_tensor(tSrS.data(), half_layout);
  Tensor tSrSb = make_tensor(tSrS.data() + 32, half_layout);
  Tensor tOrO = partition_fragment_C(mma_pv, Shape<typename T::BM, typename T::HDV>{});
  Tensor tOrOt = partition_fragment_C(mma_pv, Shape<typename T::BM, typename T::HDV>{});
  Tensor tOrVt = mma_pv.get_thread_slice(tid).partition_fragment_B(
      make_tensor(make_smem_ptr(v_smem), typename T::SmemLayoutVt{}));  // (kWg3Whole)
  Tensor tOrOa = partition_fragment_C(mma_pva, Shape<typename T::BM, _64>{});
  Tensor tOrOb = partition_fragment_C(mma_pvb, Shape<typename T::BM, Int<T::kVtRows - 64>>{});
  Tensor tOrP =
      make_tensor<Element>(partition_shape_A(mma_pva, Shape<typename T::BM, typename T::BN>{}));
  static_assert(size(tSrS) == 64 && size(tOrP) == 64 && size(tOrO) == T::kVtRows / 2 &&
                    size(tOrOa) == 32 && size(tOrOa) + size(tOrOb) == size(tOrO) &&
                    size(tSrSa) == 32,
                "fragment sizes");
  // K's key halves of stage s (kSHalves)
  const auto k_half = [&](int s, int h) {
    Tensor t = make_tensor(make_smem_ptr(k_smem + s * T::kTileBytes + h * 64 * T::kD),
                           typename T::SmemLayoutKh{});
    return thr_qkh.partition_fragment_B(t);
  };
  // V^T's two row ranges of stage s
  const auto vt_a = [&](int s) {
    return vt_rows<T, typename T::SmemLayoutVtA>(thr_pva, v_smem, s, 0);
  };
  const auto vt_b = [&](int s) {
    return vt_rows<T, typename T::SmemLayoutVtB>(thr_pvb, v_smem, s, 64);
  };
  std::conditional_t<T::kTrace, Wg3Trace, Wg3NoTrace> trace;
  if constexpr (T::kTrace) {
    trace.wg = wg;
    trace.on = (tid & 127) == 0 && gridDim.x > 1000 && blockIdx.x == gridDim.x / 2;
  }

  uint32_t it = 0;  // K/V blocks of the merged lists so far, over all tiles
  for (int j = 0;; ++j) {
    const int index = next_tile_consumer(p, bars, j);
    if (T::kUniformLoop ? uniform(index < 0) : index < 0) break;
    const Wg3Tile tile = load_wg3_tile(p, index);
    const int my_q = min((tile.q0 + 64 * wg) / 128, p.block_rows - 1);
    const int my_bit = my_q == tile.qa ? kWg3KeptByA : kWg3KeptByB;
    const bool any = uniform(__ldg(p.row_offset + tile.qa + 1) > __ldg(p.row_offset + tile.qa) ||
                             __ldg(p.row_offset + tile.qb + 1) > __ldg(p.row_offset + tile.qb));
    const float q_scale = __ldg(p.fp8.q_scale + tile.bh * p.block_rows + my_q);
    clear(tOrO);
    float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.f, 0.f}, alpha[2];
    Wg3Ring ring{wg};
    // (the interleaved ring: the second warpgroup's first turn is empty)
    if (T::kRing && !T::kRingConvoy && any && wg == 1) ring.wait(), ring.pass();
    mbar_wait(q_full, j & 1);
    for (bool more = any; more; ++it) {
      uint32_t s = it % kS;
      const uint32_t parity = (it / kS) & 1;
      if constexpr (T::kUniform && !T::kUniformLoop) {  // (the stage's bits, one vote each)
        uint32_t u = 0;
#pragma unroll
        for (int b = 0; (1 << b) < kS; ++b) u |= static_cast<uint32_t>(uniform(s >> b & 1)) << b;
        s = u;
      }
      mbar_wait(bar(bars->k_full[s]), parity);
      trace.stamp(0);
      float4 m;
      asm volatile("ld.shared.v4.f32 {%0, %1, %2, %3}, [%4];\n"
                   : "=f"(m.x), "=f"(m.y), "=f"(m.z), "=f"(m.w)
                   : "r"(smem_addr(meta + s)));
      const int word = __float_as_int(m.x);
      more = uniform((word & kWg3Last) == 0);
      if (uniform((word & my_bit) == 0)) {  // not this warpgroup's block: release both stages
        mbar_arrive(bar(bars->k_empty[s]));
        if constexpr (T::kRing) ring.wait(), ring.pass();  // (its turn for S: empty)
        mbar_wait(bar(bars->v_full[s]), parity);
        mbar_arrive(bar(bars->v_empty[s]));
        if constexpr (T::kRing) ring.wait(), ring.pass();  // (and for P V)
        trace.next(false);
        continue;
      }
      float s_scale = q_scale * m.y, s_shift = m.z;
      if constexpr (T::kSHalves) {
        if constexpr (T::kRing) ring.wait();
        wg_issue<true>(mma_qkh, tShQ, k_half(s, 0), tSrSa);
        wg_issue<true>(mma_qkh, tShQ, k_half(s, 1), tSrSb);
        if constexpr (T::kRing) ring.pass();
        trace.stamp(1);
        if (m.w != 0.f) {  // a wide block: both halves, then its biases score by score
          warpgroup_wait<0>();
          warpgroup_fence_operand(tSrS);
          trace.stamp(2);
          dequantise(tSrS, bias_smem + s * T::kBN, s_scale, lane);
          mbar_arrive(bar(bars->k_empty[s]));
          online_softmax_shifted<T::kPolyExp>(tSrS, word & ~127, p.key_limit, p.scale_log2,
                                              row_max, alpha, lane, 1.f, 0.f);
        } else {
          float raw[2], raw_b[2];
          warpgroup_wait<1>();
          warpgroup_fence_operand(tSrSa);
          trace.stamp(2);
          mask_past_key_limit<0, 8>(tSrS, word & ~127, p.key_limit, lane);
          raw_row_max<0, 8>(tSrS, raw);
          end_block(m.y);  // (keeps the second half's wait below the first half's maxima)
          warpgroup_wait<0>();
          warpgroup_fence_operand(tSrSb);
          mbar_arrive(bar(bars->k_empty[s]));
          mask_past_key_limit<8, 16>(tSrS, word & ~127, p.key_limit, lane);
          raw_row_max<8, 16>(tSrS, raw_b);
          raw[0] = fmaxf(raw[0], raw_b[0]), raw[1] = fmaxf(raw[1], raw_b[1]);
          softmax_from_max<T::kPolyExp>(tSrS, raw, p.scale_log2, row_max, alpha, s_scale,
                                        s_shift);
        }
      } else {
        if constexpr (T::kRing) ring.wait();
        wg_issue<true>(mma_qk, tSrQ, tSrK(_, _, _, s), tSrS);
        if constexpr (T::kRing) ring.pass();
        trace.stamp(1);
        warpgroup_wait<0>();
        warpgroup_fence_operand(tSrS);
        trace.stamp(2);
        if (uniform(m.w != 0.f)) {  // a wide block: its biases score by score
          dequantise(tSrS, bias_smem + s * T::kBN, s_scale, lane);
          s_scale = 1.f, s_shift = 0.f;
        }
        mbar_arrive(bar(bars->k_empty[s]));
        online_softmax_shifted<T::kPolyExp, false, T::kTreeMax>(
            tSrS, word & ~127, p.key_limit, p.scale_log2, row_max, alpha, lane, s_scale,
            s_shift);
      }
      convert_fp8(tSrS, tOrP);
      trace.stamp(3);
      mbar_wait(bar(bars->v_full[s]), parity);
      if constexpr (T::kWg3Whole) {
        if constexpr (T::kRing) ring.wait();
        wg_issue<true>(mma_pv, tOrP, tOrVt(_, _, _, s), tOrOt);
        if constexpr (T::kRing) ring.pass();
        trace.stamp(4);
        warpgroup_wait<0>();
        warpgroup_fence_operand(tOrOt);
        warpgroup_fence_operand(tOrP);
        mbar_arrive(bar(bars->v_empty[s]));
        fma_into<0>(tOrO, tOrOt, alpha);
      } else if constexpr (T::kPvOverlap) {
        wg_issue<true>(mma_pva, tOrP, vt_a(s), tOrOa);
        trace.stamp(4);
        warpgroup_wait<0>();
        warpgroup_fence_operand(tOrOa);
        wg_issue<true>(mma_pvb, tOrP, vt_b(s), tOrOb);
        fma_into<0>(tOrO, tOrOa, alpha);
        end_block(m.y);  // (keeps the second half's wait below the first half's add)
        warpgroup_wait<0>();
        warpgroup_fence_operand(tOrOb);
        warpgroup_fence_operand(tOrP);
        mbar_arrive(bar(bars->v_empty[s]));
        fma_into<32>(tOrO, tOrOb, alpha);
      } else {
        wg_issue<true>(mma_pva, tOrP, vt_a(s), tOrOa);
        trace.stamp(4);
        warpgroup_wait<0>();
        warpgroup_fence_operand(tOrOa);
        fma_into<0>(tOrO, tOrOa, alpha);
        wg_issue<true>(mma_pvb, tOrP, vt_b(s), tOrOb);
        warpgroup_wait<0>();
        warpgroup_fence_operand(tOrOb);
        warpgroup_fence_operand(tOrP);
        mbar_arrive(bar(bars->v_empty[s]));
        fma_into<32>(tOrO, tOrOb, alpha);
      }
      trace.stamp(5);
      trace.next(true);
    }
    if constexpr (T::kRing) {  // the turns that close the ring (Wg3Ring: each wait has a pass)
      if (any && T::kRingConvoy && wg == 0) ring.wait();
      if (any && !T::kRingConvoy && wg == 0) ring.wait(), ring.pass();
      if (any && !T::kRingConvoy && wg == 2) ring.wait();
    }
    mbar_arrive(q_empty);
    store_fp8_output<T>(p, tOrO, row_max, row_sum, tile.q0, tile.bh, tile.b, tile.h, tid, lane);
  }
  trace.finish();
}

}  // namespace radial::cuda_detail::hopper

#include "cuda/hopper/fwd_fp8_wg3_f16.cuh"
