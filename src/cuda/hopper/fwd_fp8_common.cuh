// What the FP8 (e4m3) forward adds to the Hopper kernel's pieces (fwd_hopper_common.cuh): its
// tile shapes and layouts, P in e4m3 in the register order of the 8-bit A operand, and the
// per-channel V scale of the epilogue. The operands come from the quantisation pass
// (fp8_quantize.cu; FwdParams::fp8 says what they hold).
#pragma once

#include <cuda_fp8.h>

#include "cuda/hopper/fwd_fp8_layout.hpp"
#include "cuda/hopper/fwd_hopper_common.cuh"
// after CuTe's GMMA definitions (fwd_hopper_common.cuh), which it needs: the N = 136 product
#include <cute/arch/mma_sm90_gmma_ext.hpp>
#include <cute/atom/mma_traits_sm90_gmma_ext.hpp>

namespace radial::cuda_detail::hopper {

// P = exp2(...) x 2^kPLog2: probabilities <= 256, so that the small ones of a long row stay
// normal e4m3 numbers (down to 2^-6 / 256) instead of flushing to zero; the row sums carry the
// same factor, so it cancels in the output and comes off the log-sum-exp.
constexpr float kPLog2 = 8.f;
// Fp8Traits::kLazy's slack: kPLog2 + kLazyLog2 <= log2(448).
constexpr float kLazyLog2 = 0.8f;

// Q, K: [128, kD] e4m3 tiles, K-major (kD bytes a row: the 128- or 64-byte swizzle). V^T:
// [kD, 128 keys], K-major too (FP8 wgmma takes both operands K-major), 128 bytes a row.
// Output in OutElement (the inputs' dtype). Four stages: the tiles are half the bf16 size.
// kVariant (comparison builds only, KernelChoice::variant fp8_*; 0 is the library's), to find what
// costs time: bit 1, no key bias (scores = raw x scales, Q's smoothing left uncorrected: wrong
// results unless mean(Q) = 0); bit 2, P V accumulated straight into O by the wgmma (no fp32
// add per block). (H200: 1.24x, 1.12x and 1.24x the library's 1.06x over bf16;
// bench/gpu/HOPPER_NOTES.md.)
// Round 3's candidates (same results as the library's, up to rounding; not yet timed):
// bit 4, O = O x alpha(t-1) + P V(t-1), one FFMA per O entry instead of an add and a multiply
// (O lags one block behind the running maximum); bit 8, the wait for P V kept below the
// exponentials (ptxas otherwise hoists it above the softmax, so no exponential runs under the
// P V product); bit 16, the next block's first key and K scale loaded one block ahead (two
// dependent global loads off the path to the S product's issue); bit 32, the key biases read
// as 16-byte loads, one ahead (the pass writes them in V^T's key order: Fp8Workspace::
// k_bias_vt_order), instead of 16 8-byte loads each waited for before its four FFMAs; bit 64,
// the row sums by the tensor cores: V^T gets 8 more rows (the first all ones, the rest zeros;
// kVtRows), so P V's column kD is the row's sum of the e4m3 P, rescaled and added with O, and
// the softmax's 64 FADDs a block go.
// Round 4: bit 128, the key bias out of the scores (kBiasInV, with bit 64): each key block whose
// biases span at most kFp8BiasSpan adds its largest bias (FwdParams::fp8.k_block_shift) to all
// its scores through the exponent's FFMA, and the pass has multiplied each key's V by
// w = exp2((bias - that) x scale_log2) <= 1, so that P V and the row sums (by the tensor cores,
// w x 2^kWLog2 being V^T's extra row) get the bias back without a per-score FFMA; the other
// ("wide") blocks add the biases score by score as round 3's kernel (a uniform branch).
// Bit 256 (kPairs): two key blocks a step, fwd_fp8_pairs.cuh.
// Round 5: bits 512 and 1024 (kPolyExp 4 and 2, with bit 128), the exponentials of every
// fourth or every second n-tile by a polynomial on the FMA pipe (exp2_poly) instead of MUFU,
// whose 64 a block are as many cycles as the block's FP8 products (FlashAttention-4's remedy).
// Bit 2048 (kLazy, with bit 128): a row keeps its maximum until a block's bound exceeds it by
// more than kLazyLog2 exp2 units (P x 2^kPLog2 then stays below 2^8.8 < 448, e4m3's largest),
// and O skips its rescale (64 FMUL) when no row of the warp moved (a warp vote).
// Round 6: bit 4096 (kStagedMeta, with bit 128), the producer puts each K stage's first key,
// K scale and (shift, wide) into shared memory beside the stage (it runs kStages blocks ahead),
// so the consumers read one 16-byte shared load after the stage's wait instead of a column
// index, then a scale and a shift, by dependent global loads behind reloaded pointers; the
// block counter is unsigned (stage and phase by mask and shift). The library's since round 6.
// Bit 8192 (kQRegs, with 4096): Q loaded into registers once per tile (ldmatrix) and Q K^T
// from registers (RS), as the bf16 kernel's q_registers schedule: no Q reads from shared
// memory per block, 16 more registers a thread, Q's stage free for the next tile at once.
// Round 7: bit 16384 (kWg3, with 4096): three consumer warpgroups on 192-row tiles
// (fwd_fp8_wg3.cuh), so that each scheduler has three consumer warps instead of two; the
// registers (160 a thread) allow no overlap of S with P V in a warpgroup, and P V is two
// products (V^T's rows 0-63, then 64-135) into one 36-register accumulator in turn.
// Bit 32768 (kWg3Whole, with 16384): P V as one product into a 68-register accumulator (S is
// dead by then, so it may fit the 160).
// Round 8 (on bit 16384, fwd_fp8_wg3.cuh): bit 65536 (kTrace), clock stamps of each block's
// phases by warp 0 of each warpgroup of one CTA, printed at the tile's end (where a scheduler's
// three warps spend a block); bit 131072 (kRing, with 32768), the warpgroups take turns at
// issuing their products in a fixed ring, the second starting one turn late, so that the tensor
// cores see S, P V, S, P V of the three in turn instead of whichever comes first; bit 262144
// (kRingConvoy, with 131072), the same ring without the late start (S, S, S, then the three
// P V); bit 524288 (kSHalves), S as two products of 64 keys, the first half's row maxima taken
// while the second runs; bit 1048576 (kPvOverlap), the second P V half issued before the first
// half's add into O. (Bits 2097152 and 4194304, the
// barrier waits taken off a warp's chain, were timed in round 8 b- at 2a7b16d and removed;
// round 17 took 2097152 again.)
// Round 9: bit 8388608 (kUniform, on bit 16384; the library's at head dim 128), the block loop's
// branches, its stage index and the warpgroup index by warp votes, values ptxas then knows to
// be the same in every lane: the products' shared-memory descriptors are computed in uniform
// registers instead of in ordinary ones moved by R2UR before each wgmma (32 R2UR and 16 moves
// of constant descriptor halves a block before). The votes change no arithmetic.
// Round 10 (on bit 16384): bit 16777216 (kTreeMax), each row half's raw maximum by two running
// maxima (even and odd n-tiles) instead of one chain (raw_row_max); bit 33554432 (kUniformLoop,
// with 8388608), the tile loop's exit voted as well, so that ptxas knows the block counter to be
// warp-uniform and the per-bit votes of the stage index go. Neither changes the results' bits.
// Round 11 (on the library's head-dim-128 kernel): bit 134217728 (kSF16), S by the e4m3 wgmma
// with an f16 accumulator (32 registers instead of 64) and the softmax on f16 pairs
// (fwd_fp8_s_f16.cuh; the pass quantises Q and K to at most kFp8SF16Top, so that the f16
// accumulator cannot overflow); bit 268435456 (kLookahead, with 134217728), the next block's S
// issued while this block's first P V product runs, into the registers that P was made from;
// bit 536870912 (kSsP, with 268435456), P written to shared memory (kPBytes, before the key
// biases) and P V as SS products, so that P's 16 registers are free while the next S runs (the
// pass writes V^T's keys in the order fp8_vt_position_ss, each thread's 32 entries of a row
// then being 32 consecutive bytes: two 16-byte stores).
// Round 12 (on bit 134217728): bits 512, 1024 or both there take a quarter, half or three
// quarters of the n-tiles' exponentials (kPolyTiles) on f16 pairs by exp2_poly_h2
// (fwd_fp8_s_f16.cuh), six FMA- and ALU-pipe instructions a pair against two MUFU and a PRMT;
// bit 1073741824 three eighths; bit 2048 (kSLate) there issues the next block's S (if it is the
// warpgroup's) once P V's second product is done, before that product's adds into O.
// Round 16 (on bit 134217728): bit 67108864 (kPairStep) takes two kept key blocks a step, one
// base for both and P V of both into one accumulator added to O once a step
// (fwd_fp8_wg3_f16.cuh; the pass's shifts on the whole exp2 grid).
// Round 17 (on bit 134217728; the library's at head dim 128): bit 2097152 (kLinExp) makes P's
// e4m3 bits from the exponent by two f16 instructions a pair, e4m3's bits read as 8 log2 + 56
// (fwd_fp8_s_f16.cuh's softmax_lin_h), instead of exponentials and a conversion.
// The library's kernel is kFp8Library (fwd_fp8_layout.hpp); kVariant 0 is round 3's.
template <class OutElement_, int kHeadDim, int kVariant = kFp8Library, int kStages_ = 4>
struct Fp8Traits {
  static constexpr bool kBiasInV = (kVariant & 128) != 0;
  static constexpr bool kPairs = (kVariant & 256) != 0;  // fwd_fp8_pairs.cuh
  static constexpr bool kKeyBias = (kVariant & 1) == 0 && !kBiasInV;
  static constexpr bool kAddPerBlock = (kVariant & 2) == 0;
  static constexpr bool kFmaO = (kVariant & 4) != 0;
  static constexpr bool kLateWait = (kVariant & 8) != 0;
  static constexpr bool kPrefetch = (kVariant & 16) != 0;
  static constexpr bool kBiasVec = (kVariant & 32) != 0;
  static constexpr bool kSumTensor = (kVariant & 64) != 0;
  static constexpr int kPolyExp = (kVariant & 512) ? 4 : (kVariant & 1024) ? 2 : 0;
  // (on kSF16: the n-tiles nt whose exponentials the polynomial takes, bit nt % 8: 512 n-tiles
  // 3 and 7 of every eight, 1024 the odd ones, both all but 0 and 4; bit 1073741824 3, 5, 7)
  static constexpr unsigned kPolyTiles = (kVariant & 1073741824) ? 0xa8u
                                         : (kVariant & 512) && (kVariant & 1024) ? 0xeeu
                                         : (kVariant & 1024)                     ? 0xaau
                                         : (kVariant & 512)                      ? 0x88u
                                                                                 : 0u;
  static constexpr bool kLazy = (kVariant & 2048) != 0;
  static constexpr bool kStagedMeta = (kVariant & 4096) != 0;
  static constexpr bool kQRegs = (kVariant & 8192) != 0;
  static constexpr bool kWg3 = (kVariant & 16384) != 0;  // fwd_fp8_wg3.cuh
  static constexpr bool kWg3Whole = (kVariant & 32768) != 0;
  static constexpr bool kTrace = (kVariant & 65536) != 0;
  static constexpr bool kRing = (kVariant & 131072) != 0;
  static constexpr bool kRingConvoy = (kVariant & 262144) != 0;
  static constexpr bool kSHalves = (kVariant & 524288) != 0;
  static constexpr bool kPvOverlap = (kVariant & 1048576) != 0;
  static constexpr bool kUniform = (kVariant & 8388608) != 0;
  static constexpr bool kTreeMax = (kVariant & 16777216) != 0;
  static constexpr bool kUniformLoop = (kVariant & 33554432) != 0;
  static constexpr bool kSF16 = (kVariant & 134217728) != 0;  // fwd_fp8_s_f16.cuh
  static constexpr bool kLookahead = (kVariant & 268435456) != 0;
  static constexpr bool kSsP = (kVariant & 536870912) != 0;
  static constexpr bool kSLate = kSF16 && kLazy;  // (bit 2048 on kSF16: fwd_fp8_wg3_f16.cuh)
  static constexpr bool kPairStep = (kVariant & 67108864) != 0;  // (fwd_fp8_wg3_f16.cuh)
  static constexpr bool kLinExp = (kVariant & 2097152) != 0;  // (fwd_fp8_s_f16.cuh)
  static_assert(!kFmaO || kAddPerBlock, "bit 4 adds each block's P V in fp32");
  static_assert(!kBiasInV || kSumTensor, "bit 128 takes the row sums from the tensor cores");
  static_assert(!kPairs || (kBiasInV && !kFmaO && !kLateWait), "bit 256 is built on bit 128");
  static_assert(kPolyExp == 0 || (kBiasInV && !kPairs), "bits 512 and 1024 are built on bit 128");
  static_assert(!kLazy || (kBiasInV && !kPairs && !kFmaO), "bit 2048 is built on bit 128");
  static_assert(!kStagedMeta || (kBiasInV && !kPairs), "bit 4096 is built on bit 128");
  static_assert(!kQRegs || kStagedMeta, "bit 8192 is built on bit 4096");
  static_assert(!kWg3Whole || kWg3, "bit 32768 is built on bit 16384");
  static_assert(!kUniformLoop || kUniform, "bit 33554432 is built on bit 8388608");
  static_assert(!kSF16 || (kWg3 && kUniformLoop && kBiasInV && !kTrace && !kRing && !kSHalves &&
                           !kWg3Whole && !kPvOverlap),
                "bit 134217728 is built on the library's three-warpgroup kernel");
  static_assert(!kLookahead || kSF16, "bit 268435456 is built on bit 134217728");
  static_assert(!kSsP || kLookahead, "bit 536870912 is built on bit 268435456");
  static_assert(!kSLate || !kLookahead, "bit 2048 on kSF16 is its own look-ahead");
  static_assert(!kPairStep || (kSF16 && !kLookahead && !kSLate),
                "bit 67108864 is built on bit 134217728");
  static_assert(!kLinExp || (kSF16 && !kLookahead && !kPairStep),
                "bit 2097152 is built on bit 134217728");
  static_assert(!(kTrace || kSHalves || kPvOverlap || kUniform || kTreeMax) || kWg3,
                "bits 65536 and up are built on bit 16384");
  static_assert(!kRing || kWg3Whole, "bit 131072 is built on bit 32768 (one P V product a turn)");
  static_assert(!kRingConvoy || kRing, "bit 262144 is built on bit 131072");
  static_assert(!kPvOverlap || !kWg3Whole, "bit 1048576 splits P V (not bit 32768)");
  static_assert(!kWg3 || (kStagedMeta && !kQRegs && (!kLazy || kSF16) && kHeadDim == 128),
                "bit 16384 is built on bit 4096, head dim 128");
  using Element = cutlass::float_e4m3_t;
  using OutElement = OutElement_;
  static constexpr int kConsumerWGs = kWg3 ? 3 : 2;  // 64 query rows each
  static constexpr int kThreads = 128 * (kConsumerWGs + 1), kConsumers = 128 * kConsumerWGs;
  static constexpr int kD = kHeadDim, kBM = 64 * kConsumerWGs, kBN = 128;
  static constexpr int kStages = kStages_;
  static constexpr bool kFp8 = true;
  // (kWg3: 128 x 32 + 384 x 160, all 65536 registers, as FlashAttention-3's three warpgroups)
  static constexpr int kProducerRegs = kWg3 ? 32 : 24, kConsumerRegs = kWg3 ? 160 : 240;
  using BM = Int<kBM>;
  using BN = Int<kBN>;
  using HD = Int<kD>;
  using St = Int<kStages>;
  static constexpr int kVtRows = kSumTensor ? kD + 8 : kD;  // V^T's rows: P V's N
  using HDV = Int<kVtRows>;

  using AtomQK = std::conditional_t<kD == 128, GMMA::Layout_K_SW128_Atom<Element>,
                                    GMMA::Layout_K_SW64_Atom<Element>>;
  using SmemLayoutQ = decltype(tile_to_shape(AtomQK{}, Shape<BM, HD>{}));
  using SmemLayoutKV = decltype(tile_to_shape(AtomQK{}, Shape<BN, HD, St>{}));
  using SmemLayoutVt =
      decltype(tile_to_shape(GMMA::Layout_K_SW128_Atom<Element>{}, Shape<HDV, BN, St>{}));

  using WGs = Layout<Shape<Int<kConsumerWGs>, _1, _1>>;  // stacked along M
  using MmaQK = decltype(make_tiled_mma(
      GMMA::ss_op_selector<Element, Element, float, Shape<_64, BN, HD>>(), WGs{}));
  using MmaQK16 = decltype(make_tiled_mma(  // (kSF16: the f16 accumulator)
      GMMA::ss_op_selector<Element, Element, cutlass::half_t, Shape<_64, BN, HD>>(), WGs{}));
  using MmaQKrs = decltype(make_tiled_mma(
      GMMA::rs_op_selector<Element, Element, float, Shape<_64, BN, HD>>(), WGs{}));
  // (N = 136 and 72 are CuTe's extended shapes, which its selector offers only with
  // CUTE_SM90_EXTENDED_MMA_SHAPES_ENABLED: named directly.)
  using PVAtom = std::conditional_t<
      kSumTensor && kD == 128, SM90::GMMA::MMA_64x136x32_F32E4M3E4M3_RS_TN<>,
      std::conditional_t<
          kSumTensor && kD == 64, SM90::GMMA::MMA_64x72x32_F32E4M3E4M3_RS_TN<>,
          decltype(GMMA::rs_op_selector<Element, Element, float, Shape<_64, HDV, BN>>())>>;
  using MmaPV = decltype(make_tiled_mma(PVAtom{}, WGs{}));
  // kWg3: P V in two products, V^T's rows 0-63 (head dim columns 0-63) and 64-135 (the rest
  // and the row sums' 8), each [64 or 72 rows, 128 keys, stages] at its byte offset.
  using MmaPVa = decltype(make_tiled_mma(
      decltype(GMMA::rs_op_selector<Element, Element, float, Shape<_64, _64, BN>>()){}, WGs{}));
  using MmaPVb =
      decltype(make_tiled_mma(SM90::GMMA::MMA_64x72x32_F32E4M3E4M3_RS_TN<>{}, WGs{}));
  // kLookahead: P V in three products, V^T's rows 0-47, 48-95 and 96-135 (24, 24 and 20
  // accumulator registers), so that the next S fits beside one of them
  using MmaPV48 =
      decltype(make_tiled_mma(SM90::GMMA::MMA_64x48x32_F32E4M3E4M3_RS_TN<>{}, WGs{}));
  using MmaPV40 =
      decltype(make_tiled_mma(SM90::GMMA::MMA_64x40x32_F32E4M3E4M3_RS_TN<>{}, WGs{}));
  using SmemLayoutVt48 = decltype(tile_to_shape(GMMA::Layout_K_SW128_Atom<Element>{},
                                                Shape<_48, BN>{}));
  using SmemLayoutVt40 = decltype(tile_to_shape(GMMA::Layout_K_SW128_Atom<Element>{},
                                                Shape<_40, BN>{}));
  // kSsP: P from shared memory, [kBM rows, 128 keys] K-major, and P V's halves as SS products
  using SmemLayoutP = decltype(tile_to_shape(GMMA::Layout_K_SW128_Atom<Element>{},
                                             Shape<BM, BN>{}));
  using MmaPVaSS = decltype(make_tiled_mma(
      decltype(GMMA::ss_op_selector<Element, Element, float, Shape<_64, _64, BN>>()){}, WGs{}));
  using MmaPVbSS =
      decltype(make_tiled_mma(SM90::GMMA::MMA_64x72x32_F32E4M3E4M3_SS_TN<>{}, WGs{}));
  // kSHalves: S as two products of 64 keys, K's rows 0-63 and 64-127 of a stage
  using MmaQKh = decltype(make_tiled_mma(
      GMMA::ss_op_selector<Element, Element, float, Shape<_64, _64, HD>>(), WGs{}));
  using SmemLayoutKh = decltype(tile_to_shape(AtomQK{}, Shape<_64, HD>{}));
  using SmemLayoutVtA = decltype(tile_to_shape(GMMA::Layout_K_SW128_Atom<Element>{},
                                               Shape<_64, BN>{}));
  using SmemLayoutVtB = decltype(tile_to_shape(GMMA::Layout_K_SW128_Atom<Element>{},
                                               Shape<Int<kVtRows - 64>, BN>{}));

  static constexpr int kBoxCols = kD;  // one TMA box per Q or K tile
  static constexpr int kBoxes = 1;
  static constexpr int kBoxBytes = kBN * kD;
  static constexpr int kQBytes = kBM * kD;
  static constexpr int kTileBytes = kBN * kD;  // a K tile
  static constexpr int kVtBytes = kBN * kVtRows;  // a V^T tile
  static constexpr int kBiasBytes = kBN * 4;   // the K tile's key biases (fp32)
  // kStagedMeta: the K stage's (first key, K scale, shift, wide), one float4
  static constexpr int kMetaBytes = kStagedMeta ? 16 : 0;
  static constexpr int kPBytes = kSsP ? kBM * kBN : 0;  // (a multiple of 1024)
};

__device__ __forceinline__ uint32_t e4m3x2(float lo, float hi) {
  return __nv_cvt_float2_to_fp8x2(make_float2(lo, hi), __NV_SATFINITE, __NV_E4M3);
}

// P = S in e4m3, as the A operand of P V^T. Per k-step of 32 keys (accumulator entries
// 16 ks ..) register r = v1 + 2 v2 (rows +8 v1, keys +16 v2) holds bytes from entries
// b, b + 1, b + 4, b + 5 with b = 16 ks + 8 v2 + 2 v1 (fp8_vt_key's order).
template <class TS, class TP>
__device__ __forceinline__ void convert_fp8(const TS& s, TP& pf) {
  static_assert(decltype(size(s))::value == 64 && decltype(size(pf))::value == 64, "P sizes");
  Tensor regs = recast<uint32_t>(pf);  // 16 registers, 4 per k-step
#pragma unroll
  for (int ks = 0; ks < 4; ++ks) {
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int b = 16 * ks + 8 * (r >> 1) + 2 * (r & 1);
      regs(ks * 4 + r) = e4m3x2(s(b), s(b + 1)) | (e4m3x2(s(b + 4), s(b + 5)) << 16);
    }
  }
}

// S = S x s_scale + the bias of its key (columns 8 nt + 2 (lane % 4) + j of the block, whose
// 128 biases are in shared memory): the smoothed scores in score units.
template <class TS>
__device__ __forceinline__ void dequantise(TS& s, const float* bias, float s_scale, int lane) {
#pragma unroll
  for (int nt = 0; nt < 16; ++nt) {
    // One pair at a time (volatile): loaded all at once, the 32 values would spill.
    float2 b;
    asm volatile("ld.shared.v2.f32 {%0, %1}, [%2];\n"
                 : "=f"(b.x), "=f"(b.y)
                 : "r"(smem_addr(bias + nt * 8 + (lane & 3) * 2)));
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      s(nt * 4 + half * 2) = fmaf(s(nt * 4 + half * 2), s_scale, b.x);
      s(nt * 4 + half * 2 + 1) = fmaf(s(nt * 4 + half * 2 + 1), s_scale, b.y);
    }
  }
}

// The same with the biases in fp8_vt_position order within each 16 keys (Fp8Traits::kBiasVec):
// thread t of a quad finds the keys 2t, 2t+1, 8+2t, 9+2t of n-tiles 2g, 2g+1 at 16 g + 4 t,
// one 16-byte load, issued a group ahead of its use.
template <class TS>
__device__ __forceinline__ void dequantise_vec(TS& s, const float* bias, float s_scale, int lane) {
  const auto load = [&](int g) {
    float4 b;
    asm volatile("ld.shared.v4.f32 {%0, %1, %2, %3}, [%4];\n"
                 : "=f"(b.x), "=f"(b.y), "=f"(b.z), "=f"(b.w)
                 : "r"(smem_addr(bias + g * 16 + (lane & 3) * 4)));
    return b;
  };
  float4 b = load(0);
#pragma unroll
  for (int g = 0; g < 8; ++g) {
    const float4 next = load(g < 7 ? g + 1 : g);
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int lo = 8 * g + half * 2, hi = 8 * g + 4 + half * 2;  // n-tiles 2g and 2g+1
      s(lo) = fmaf(s(lo), s_scale, b.x);
      s(lo + 1) = fmaf(s(lo + 1), s_scale, b.y);
      s(hi) = fmaf(s(hi), s_scale, b.z);
      s(hi + 1) = fmaf(s(hi + 1), s_scale, b.w);
    }
    b = next;
  }
}

// exp2(y) for y <= 9 without MUFU (6 FMA-pipe instructions and an integer add): 2^floor(y) put
// into the exponent of a degree-2 minimax polynomial of 2^frac(y) (relative error 1.7e-3,
// far below e4m3's 2^-4, which P is rounded to next). y below -127 (masked keys: -inf) gives a
// number below 2^-126, which e4m3 flushes to zero.
__device__ __forceinline__ float exp2_poly(float y) {
  y = fmaxf(y, -127.f);
  const float t = __fadd_rd(y, 12582912.f);  // 1.5 x 2^23: floor(y) in the low bits
  const float f = y - (t - 12582912.f);       // [0, 1)
  const float p = fmaf(fmaf(0.33718943f, f, 0.65763628f), f, 1.00172476f);
  return __int_as_float(__float_as_int(p) + (__float_as_int(t) << 23));
}

// The raw (unscaled) largest entry of n-tiles [kFrom, kTo) per row half, into m. kTree: two
// running maxima a row half (even and odd n-tiles), then combined, so that the dependent FMNMX
// chain (ptxas keeps the order given) is half as long and the FMNMX issue at their pipe's rate
// (nvcc 13.0, the three-warpgroup kernel: 203 -> 149 stall cycles a block); four chains or a
// full tree hold more registers and spill at 160 a thread.
template <int kFrom, int kTo, bool kTree = false, class TS>
__device__ __forceinline__ void raw_row_max(const TS& s, float (&m)[2]) {
  if constexpr (kTree) {
    static_assert((kTo - kFrom) % 2 == 0, "n-tiles in pairs");
    float x[2][2];
#pragma unroll
    for (int half = 0; half < 2; ++half) {
#pragma unroll
      for (int c = 0; c < 2; ++c)
        x[half][c] = fmaxf(s((kFrom + c) * 4 + half * 2), s((kFrom + c) * 4 + half * 2 + 1));
    }
#pragma unroll
    for (int nt = kFrom + 2; nt < kTo; ++nt) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        float& y = x[half][(nt - kFrom) % 2];
        y = fmaxf(y, fmaxf(s(nt * 4 + half * 2), s(nt * 4 + half * 2 + 1)));
      }
    }
#pragma unroll
    for (int half = 0; half < 2; ++half) m[half] = fmaxf(x[half][0], x[half][1]);
  } else {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float x = -INFINITY;
#pragma unroll
      for (int nt = kFrom; nt < kTo; ++nt)
        x = fmaxf(x, fmaxf(s(nt * 4 + half * 2), s(nt * 4 + half * 2 + 1)));
      m[half] = x;
    }
  }
}

// online_softmax_shifted's second part, from each row half's raw largest entry in this thread.
template <int kPolyExp = 0, bool kLazy = false, class TS>
__device__ __forceinline__ void softmax_from_max(TS& s, const float (&raw)[2], float scale_log2,
                                                 float (&row_max)[2], float (&alpha)[2],
                                                 float s_scale, float s_shift) {
  constexpr int kNT = 16;  // 8-key n-tiles
  float base[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    // An upper bound of the block's largest score: its largest product plus its largest bias.
    float m = fmaxf(row_max[half], fmaf(quad_max(raw[half]), s_scale, s_shift));
    if (kLazy && m * scale_log2 <= row_max[half] * scale_log2 + kLazyLog2) m = row_max[half];
    base[half] = softmax_base(m, scale_log2);
    alpha[half] = softmax_alpha(row_max[half], base[half], scale_log2);
    row_max[half] = m;
    base[half] -= kPLog2 + s_shift * scale_log2;
  }
  const float exp_scale = scale_log2 * s_scale;
#pragma unroll
  for (int i = 0; i < kNT * 4; ++i) {
    if (kPolyExp > 0 && (i >> 2) % (kPolyExp > 0 ? kPolyExp : 1) == kPolyExp - 1) {
      s(i) = exp2_poly(fmaf(s(i), exp_scale, -base[(i >> 1) & 1]));
    } else {
      s(i) = softmax_exp(s(i), exp_scale, base[(i >> 1) & 1]);
    }
  }
}

// The online softmax of the FP8 kernel with the key bias in V (Fp8Traits::kBiasInV), in place:
// entries are raw products that s_scale turns into scores, s_shift (the block's largest key
// bias) is added to each, and the probabilities come out times 2^kPLog2; row_max stays in
// score units, an upper bound of the row's largest score. No row sums: the tensor cores add
// the probabilities weighted by their keys' w (V^T's extra row).
// kPolyExp > 0: every kPolyExp-th n-tile's exponentials by exp2_poly. kLazy: the row maximum
// moves only past kLazyLog2 (alpha is then exactly 1).
template <int kPolyExp = 0, bool kLazy = false, bool kTreeMax = false, class TS>
__device__ __forceinline__ void online_softmax_shifted(TS& s, int key0, int key_limit,
                                                       float scale_log2, float (&row_max)[2],
                                                       float (&alpha)[2], int lane,
                                                       float s_scale, float s_shift) {
  mask_past_key_limit(s, key0, key_limit, lane);
  float raw[2];
  raw_row_max<0, 16, kTreeMax>(s, raw);
  softmax_from_max<kPolyExp, kLazy>(s, raw, scale_log2, row_max, alpha, s_scale, s_shift);
}

// O *= the V scale of each column it holds (columns 8 nt + 2 (lane % 4) + j), over the first
// kNT n-tiles (the head dim's; kSumTensor's extra columns hold the row sums).
template <int kNT, class TO>
__device__ __forceinline__ void scale_columns(TO& o, const float* v_scale, int lane) {
#pragma unroll
  for (int nt = 0; nt < kNT; ++nt) {
    const float2 sc = __ldg(reinterpret_cast<const float2*>(v_scale + nt * 8 + (lane & 3) * 2));
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      o(nt * 4 + half * 2) *= sc.x;
      o(nt * 4 + half * 2 + 1) *= sc.y;
    }
  }
}

// The FP8 consumers' epilogue for a tile's rows from q0 (tid over the consumer warpgroups): the
// row sums from O's extra column (kSumTensor), V's channel scales, the log-sum-exp's shift, then
// store_output. (Rows past the sequence, which a 192-row tile may have, store nothing.)
template <class T, class TO>
__device__ __forceinline__ void store_fp8_output(const FwdParams& p, TO& o,
                                                 const float (&row_max)[2], float (&row_sum)[2],
                                                 int q0, int64_t bh, int b, int h, int tid,
                                                 int lane) {
  using OutElement = typename T::OutElement;
  if constexpr (T::kSumTensor) {
    // P V's column kD (n-tile kD / 8, entry j = 0 of the quad's first thread; the other
    // threads' extra columns are zeros) is the row sum: the quad sum in store_output adds it.
    // (kBiasInV: the row holds w x 2^kWLog2.)
    constexpr float kRowUnit = T::kBiasInV ? 1.f / (1 << static_cast<int>(kWLog2)) : 1.f;
    row_sum[0] = o(T::kD / 2) * kRowUnit, row_sum[1] = o(T::kD / 2 + 2) * kRowUnit;
  }
  scale_columns<T::kD / 8>(o, p.fp8.v_scale + bh * T::kD, lane);
  // The smoothing took q . mean(K) from every score of the row; the log-sum-exp gets it back,
  // and loses the 2^kPLog2 that the row sums carry.
  float lse_add[2] = {0.f, 0.f};
  if (p.lse != nullptr) {
    const int warp_row = (tid >> 5) * 16 + (lane >> 2);
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int row = q0 + warp_row + half * 8;
      if (row < p.seq) {
        lse_add[half] = __ldg(p.fp8.lse_shift + bh * p.fp8.padded_seq + row) * p.scale -
                        kPLog2 * 0.6931471805599453f;
      }
    }
  }
  OutElement* og = static_cast<OutElement*>(p.out) + b * p.o_sb + h * p.o_sh;
  store_output<T::kD / 8>(p, og, o, row_max, row_sum, q0, tid, lane, bh, lse_add);
}

}  // namespace radial::cuda_detail::hopper
