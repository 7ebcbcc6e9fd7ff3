// The order of V^T's keys for the FP8 P V product, shared by the quantisation pass (which
// writes V^T so) and the kernel (whose P registers follow it; fwd_fp8_common.cuh).
#pragma once

namespace radial::cuda_detail::hopper {

// The key that position p (0..15) of each group of 16 in V^T holds. The 8-bit A fragment gives
// thread t of a quad the k positions 4t..4t+3 (and 16 + those), while the fp32 accumulator
// gives it keys 2t, 2t+1, 8+2t, 9+2t (and 16 + those); so P goes into the A registers as it
// lies in the accumulator, and V^T's keys follow the same order.
__host__ __device__ constexpr int fp8_vt_key(int p) {
  return 8 * ((p & 3) >> 1) + 2 * (p >> 2) + (p & 1);
}

// Where key k (0..15) of a group goes in V^T (the inverse of fp8_vt_key).
__host__ __device__ constexpr int fp8_vt_position(int k) {
  return 4 * ((k & 7) >> 1) + 2 * (k >> 3) + (k & 1);
}

// The bits of Fp8Traits::kVariant (fwd_fp8_common.cuh says what each does) that the pass must
// know of (kFp8Wg3 is not one of them), and the library's choice: the key bias in V (128) with
// the row sums by the tensor cores (64), since round 4, and each K stage's metadata staged by
// the producer (4096), since round 6 (bench/gpu/HOPPER_NOTES.md).
constexpr int kFp8FmaO = 4, kFp8BiasVec = 32, kFp8SumTensor = 64, kFp8BiasInV = 128;
constexpr int kFp8StagedMeta = 4096;
constexpr int kFp8Library = kFp8BiasInV | kFp8SumTensor | kFp8StagedMeta;
// Head dim 128 (one CTA per tile): three consumer warpgroups on 192-row tiles since round 7
// (fwd_fp8_wg3.cuh), their block loop warp-uniform by votes since round 9 (the product
// descriptors in uniform registers), and since round 10 the row maxima by two chains a row half
// (kFp8TreeMax) and the tile loop's exit voted too, so that ptxas keeps the block counter, the
// stage and the phase in uniform registers without a vote a bit (kFp8UniformLoop);
// kFp8Library's two runs head dim 64 and persistent CTAs.
constexpr int kFp8Wg3 = 16384, kFp8Uniform = 8388608, kFp8TreeMax = 16777216;
constexpr int kFp8UniformLoop = 33554432;
constexpr int kFp8Round9D128 = kFp8Library | kFp8Wg3 | kFp8Uniform;
constexpr int kFp8Round10D128 = kFp8Round9D128 | kFp8TreeMax | kFp8UniformLoop;
// Round 11 (fwd_fp8_wg3_f16.cuh, fwd_fp8_s_f16.cuh): S by the e4m3 wgmma with an f16
// accumulator and the softmax on f16 pairs (kFp8SF16), which needs Q and K quantised to at most
// kFp8SF16Top in e4m3 units (128 x 22^2 = 61952 < 65504, f16's largest: no sum of a score's
// products can overflow): the library's since round 11. The comparison variants of rounds 7-10
// are built on kFp8Round10D128. Candidates not kept: the next block's S under this one's P V
// (kFp8Lookahead), with P from shared memory and SS P V products (kFp8SsP, V^T's keys then in
// fp8_vt_position_ss's order over the whole 128-key block).
constexpr int kFp8SF16 = 134217728, kFp8Lookahead = 268435456, kFp8SsP = 536870912;
constexpr float kFp8SF16Top = 22.f;
constexpr int kFp8Round11D128 = kFp8Round10D128 | kFp8SF16;
// Round 12: a quarter of the exponentials (n-tile 3 of every four) by a polynomial on f16 pairs
// instead of MUFU (kFp8PolyQuarter; with kFp8PolyHalf: three quarters; kFp8PolyThreeEighths):
// the library's since round 12 (1.1-3.6% over round 11's on an H200; half, three quarters and
// three eighths were not faster).
constexpr int kFp8PolyQuarter = 512, kFp8PolyHalf = 1024, kFp8PolyThreeEighths = 1073741824;
constexpr int kFp8Round12D128 = kFp8Round11D128 | kFp8PolyQuarter;
// Round 16's candidate, not kept (comparison variant fp8_wg3_pair_step): two kept key blocks a
// step where the warpgroup's list has them within the stage window (kFp8PairStep), both S
// products in flight together, one row maximum and rescale for both, and P V of the two into
// one accumulator added to O in fp32 once a step, that is, over 256 keys instead of the 128 of
// a block. The step's exponent base is a whole number of exp2 units, so the pass puts the key
// blocks' shifts on that grid too (Fp8Workspace::shift_grid).
constexpr int kFp8PairStep = 67108864;
// Round 17: P's e4m3 bits straight from the exponent, read through e4m3's own logarithmic
// layout (kFp8LinExp, fwd_fp8_s_f16.cuh's softmax_lin_h): no exponentials, two f16
// instructions a pair. The library's since round 17 (1.09-1.11x round 12's kernel on an H200);
// round 12's kernel is the comparison variant fp8_wg3_round12, and the round 12-16 candidates
// are built on it.
constexpr int kFp8LinExp = 2097152;
constexpr int kFp8Round17D128 = kFp8Round11D128 | kFp8LinExp;
constexpr int kFp8LibraryD128 = kFp8Round17D128;

// The bits the quantisation pass must know of for the library's kernel at this head dim
// (persistent: the two-warpgroup kernel). kFp8PairStep follows kFp8LibraryD128, so that a
// library with the pair step gets the pass's shift grid it needs.
constexpr int fp8_library_bits(int head_dim, bool persistent) {
  constexpr int kD128 = kFp8Library | kFp8SF16 | (kFp8LibraryD128 & kFp8PairStep);
  return head_dim == 128 && !persistent ? kD128 : kFp8Library;
}

// The key bias in V (kFp8BiasInV) for the key blocks whose biases span at most this many exp2
// units (scale_log2 x (largest - smallest)). The row's bound then exceeds its largest score by
// at most the span, so the key that dominates a row keeps P x 2^8 >= 2^(8 - 14) = 2^-6, e4m3's
// smallest normal number: full e4m3 precision. Wider blocks (outlier keys of heads with large
// means) get the bias score by score, as round 3's kernel. (bench/gpu/fp8_sim.py --bias-span:
// 8, 12 and 14 give round 3's errors on DiT-like inputs up to 3x harsher; without the bound
// the 2x harsher ones reach relative L2 0.13 and the 3x ones NaN.)
constexpr float kFp8BiasSpan = 14.f;

// With the key bias in V (Fp8Traits::kBiasInV and the row sums by the tensor cores), V^T's
// extra row holds each key's weight w <= 1 times 2^kWLog2, so that the weights of keys far
// below their block's largest bias stay normal e4m3 numbers.
constexpr float kWLog2 = 8.f;

// Where key c (0..127) of a block goes in V^T for the kernels with P in shared memory: thread t
// of a quad holds the keys 8 nt + 2 t + j (n-tile nt, j = 0, 1) of its rows, which go to the
// 32 consecutive positions 32 t + 2 nt + j, so that a thread stores a row's P by two 16-byte
// stores.
__host__ __device__ constexpr int fp8_vt_position_ss(int c) {
  return 32 * ((c & 7) >> 1) + 2 * (c >> 3) + (c & 1);
}

static_assert(fp8_vt_position_ss(127) == 127 && fp8_vt_position_ss(2) == 32 &&
                  fp8_vt_position_ss(8) == 2 && fp8_vt_position_ss(9) == 3,
              "fp8_vt_position_ss");
static_assert(fp8_vt_position(fp8_vt_key(5)) == 5 && fp8_vt_position(fp8_vt_key(14)) == 14 &&
                  fp8_vt_key(4) == 2 && fp8_vt_key(2) == 8,
              "fp8_vt_position inverts fp8_vt_key");

}  // namespace radial::cuda_detail::hopper
