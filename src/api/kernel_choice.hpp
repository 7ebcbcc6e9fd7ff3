// Which GPU kernel runs a call: a choice made of independent fields, picked in one place
// (choose_kernel, in the spirit of FlashAttention-3's tile_size.h) and mapped to a compiled
// instantiation by one dispatcher (src/cuda/fwd_dispatch.cpp), which refuses, naming the
// field, a choice that is not built. Benchmarks and tests name a choice by its fields as text,
// "family=hopper,schedule=serial" (parse_choice / format_choice), never by a number.
// Plain host code: no CUDA needed to choose, parse or print. C++17 (the kernels include it).
#pragma once

#include <string>
#include <string_view>

#include "radial/dtype.hpp"

namespace radial {

// The kernel family: the portable sm80+ kernel (mma.sync, src/cuda/fwd_kernel.cuh) or the
// sm_90a kernel (TMA, wgmma, warp-specialised, src/cuda/hopper).
enum class Family { portable, hopper };
enum class Direction { forward, backward };
// Portable kernel, block 128: 4 warps of 32 query rows with Q in shared memory (standard);
// 8 warps of 16 rows with Q in registers; standard warps with K and V double buffered.
// Block 64 has the standard tile only. (bench/gpu/NOTES.md has the measurements.)
enum class PortableTile { standard, eight_warps, double_buffer };
// How the Hopper kernel's consumer warpgroups order their work (fwd_hopper_kernel.cuh;
// bench/gpu/HOPPER_NOTES.md): each product waited for; the softmax of block t while P V of
// block t-1 runs; overlap with the two warpgroups taking turns; overlap with Q in registers.
enum class HopperSchedule { serial, overlap, pingpong, q_registers };
// The library's schedule (overlap with Q in registers: 2-3% over Q read from shared memory,
// and it matched or beat pingpong and three stages; bench/gpu/HOPPER_NOTES.md).
constexpr HopperSchedule kDefaultHopperSchedule = HopperSchedule::q_registers;
// The order of a head's block rows: the locality order with rotated block lists, heavy rows
// first (lists unrotated), or natural order (src/schedule/row_order.hpp).
enum class RowOrder { locality, heavy_first, natural };
// A named comparison variant of the chosen kernel, built only with RADIAL_ABLATION_KERNELS and
// never picked by choose_kernel: it exists to time one idea against the library's kernel in the
// same run (bench/gpu/HOPPER_NOTES.md says what each measured). standard is the library's.
// fp8_*: the FP8 forward (precision=fp8, bf16, head dim 128; Fp8Traits): no_key_bias drops
// the per-key bias that undoes Q's smoothing (since round 14 the pass leaves their Q unsmoothed,
// so they are exact, but Q's channel means cost e4m3 precision); direct_o
// accumulates P V straight into O; quantize_only runs the quantisation pass and no kernel (its
// output is not written; for timing the pass). Round 3 (same results as the library's up to
// rounding; Fp8Traits says what each does): fma_o, late_wait, fma_o_late_wait, prefetch,
// round3 (all three), no_key_bias_round3 (a ceiling: Q unsmoothed, as above), bias_vec (the
// key biases by 16-byte loads), round3_bias_vec (round3 and bias_vec), sum_tensor (the row
// sums by the tensor cores: a column of ones in V^T), round3_sum_tensor (round3 and sum_tensor).
// Round 4 (Fp8Traits::kBiasInV: the key bias of Q's smoothing leaves the scores: each key block
// whose biases span little adds its largest bias to all its scores, and the pass multiplies
// each key's V by exp2((bias - that) x scale_log2), so the per-score FFMA and its shared loads
// go; the row sums by the tensor cores, the factors being an extra row of V^T):
// the library's kernel since round 4; bias_in_v_fma_o is it with fma_o, and key_bias is round
// 3's library kernel (the bias added to every score). pairs: the library's with two key blocks
// a step (fwd_fp8_pairs.cuh). Round 5: poly_exp_quarter and poly_exp_half are the library's
// with a quarter or half of the exponentials by a polynomial on the FMA pipe (exp2_poly);
// lazy_rescale moves a row's maximum only past a slack and skips O's rescale when no row of the
// warp moved; lazy_poly is both lazy_rescale and poly_exp_quarter (these four are built on the
// library of rounds 4 and 5). Round 6: the library's kernel has the producer put each K stage's
// first key, K scale and shift in shared memory; global_meta is the library of rounds 4 and 5,
// whose consumers read them by dependent global loads; q_registers is the library's with Q in
// registers (Q K^T from registers, as the bf16 kernel's default schedule).
// bf16_late_wait: the native Hopper kernel (bf16, head dim 128, the default schedule) with the
// wait for P V kept below the exponentials (Traits::kLateWait).
// bwd_*: the Hopper backward (direction=backward; bf16/f16, head dim 64 and 128;
// bwd_hopper_kernel.cuh, Operands). The library's kernel takes dV's product's P^T and dK's
// dS^T from registers (RS wgmma; 1.07-1.13x bwd_ss on an H200); rs_dv takes only P^T from
// registers (dS^T from shared memory), ss both from shared memory (the library's until
// 2026-12-01); early_dk issues dK's product before the wait for the other warpgroup's dS^T and
// the next tile's products before dQ's stores (these three, like consumer_loads, without the
// library's producer warpgroup); consumer_loads is the library's kernel of 2026-12-01/02: no
// producer warpgroup, the consumers' thread 0 issuing the loads; dq_writer gives dQ's
// reduce-adds to the producer warpgroup's second warp; sts_ds is the library's kernel with
// dS^T stored by 32-bit stores instead of stmatrix (its store until 2026-12-02); lds64 reads
// lse2 and delta by 8-byte loads instead of 16-byte ones (its loads until 2026-12-02).
enum class Variant {
  standard,
  fp8_no_key_bias,
  fp8_direct_o,
  fp8_no_key_bias_direct_o,
  fp8_quantize_only,
  fp8_fma_o,
  fp8_late_wait,
  fp8_fma_o_late_wait,
  fp8_prefetch,
  fp8_round3,
  fp8_no_key_bias_round3,
  fp8_bias_vec,
  fp8_round3_bias_vec,
  fp8_sum_tensor,
  fp8_round3_sum_tensor,
  fp8_key_bias,
  fp8_bias_in_v_fma_o,
  fp8_pairs,
  fp8_poly_exp_quarter,
  fp8_poly_exp_half,
  fp8_lazy_rescale,
  fp8_lazy_poly,
  fp8_global_meta,
  fp8_q_registers,
  fp8_two_warpgroups,
  fp8_wg3_whole_pv,
  fp8_wg3_five_stages,
  fp8_wg3_poly_exp_quarter,
  fp8_wg3_trace,
  fp8_wg3_ring,
  fp8_wg3_ring_trace,
  fp8_wg3_s_halves,
  fp8_wg3_ring_convoy,
  fp8_wg3_pv_overlap,
  fp8_wg3_ring_s_halves,
  fp8_wg3_s_halves_pv_overlap,
  fp8_wg3_round8,
  fp8_wg3_round9,
  fp8_wg3_round9_tree_max,
  fp8_wg3_round9_uniform_loop,
  fp8_wg3_round10,
  fp8_wg3_s_f16_lookahead,
  fp8_wg3_s_f16_ss_p,
  fp8_wg3_f16_poly_quarter,
  fp8_wg3_f16_poly_half,
  fp8_wg3_f16_poly_three_quarters,
  fp8_wg3_round11,
  fp8_wg3_f16_poly_three_eighths,
  fp8_wg3_f16_s_late,
  fp8_wg3_pair_step,
  fp8_wg3_round12,
  bf16_late_wait,
  bwd_rs_dv,
  bwd_ss,
  bwd_early_dk,
  bwd_consumer_loads,
  bwd_consumer_dq,
  bwd_sts_ds,
  bwd_lds64,
  bwd_dq_boxes,
  bwd_mask_select,
};

struct KernelChoice {
  Family family = Family::portable;
  Direction direction = Direction::forward;
  PortableTile tile = PortableTile::standard;             // family portable only
  HopperSchedule schedule = kDefaultHopperSchedule;  // family hopper only
  RowOrder row_order = RowOrder::locality;
  // Hopper: persistent CTAs (one per SM) taking tiles from a counter in a host-made order
  // (src/schedule/tile_order.hpp), instead of one CTA per tile. Off by default: one CTA per
  // tile, handed out by the hardware in locality order as SMs free up, matched the counter
  // (and beat a static host schedule by 7-16%).
  bool persistent = false;
  int max_ctas = 0;  // persistent: at most this many CTAs (0: one per SM), for tests
  // Portable, block 128: K and V rows of the key block two ahead asked into L2.
  bool l2_prefetch = false;
  // Backward: dQ by a second pass over the plan's rows instead of float32 atomics, so that the
  // gradients are bit-identical run to run (AttentionOptions::deterministic). Portable only.
  bool deterministic = false;
  // fp8: the FP8 forward (family hopper, the default schedule): a quantisation pass, then the
  // e4m3 kernel (src/cuda/hopper/fwd_fp8_consumer.cuh). Written only when fp8.
  Precision precision = Precision::native;
  Variant variant = Variant::standard;  // family hopper; comparison builds only
};
// (Written out: the CUDA files that include this header are C++17.)
inline bool operator==(const KernelChoice& a, const KernelChoice& b) {
  return a.family == b.family && a.direction == b.direction && a.tile == b.tile &&
         a.schedule == b.schedule && a.row_order == b.row_order &&
         a.persistent == b.persistent && a.max_ctas == b.max_ctas &&
         a.l2_prefetch == b.l2_prefetch && a.deterministic == b.deterministic &&
         a.precision == b.precision && a.variant == b.variant;
}
inline bool operator!=(const KernelChoice& a, const KernelChoice& b) { return !(a == b); }

// What the library runs for `family` when nothing else is asked: for the Hopper kernel the
// overlap schedule with Q in registers on one CTA per tile (it matched or beat pingpong, three
// stages and persistent CTAs: bench/gpu/HOPPER_NOTES.md); for the portable one the standard
// tile without prefetch. Both visit rows in the locality order.
KernelChoice default_choice(Family family, Direction direction = Direction::forward);

// The one place that picks a kernel, forward and backward: the Hopper kernel on compute
// capability 9.0 (arch = major * 10 + minor) when it is built in and covers the call (bf16/f16,
// head dim 64/128, block 128; backward: dQ by atomics, not deterministic), the portable kernel
// otherwise. `deterministic` (backward only) asks for bit-identical gradients.
// precision fp8: the Hopper FP8 forward, or an Error naming "precision" when it does not cover
// the call (another card, not built, dtype, head dim, block size, backward).
KernelChoice choose_kernel(int arch, DType dtype, int head_dim, int block_size,
                           Direction direction, bool deterministic = false,
                           Precision precision = Precision::native);

// True when this build holds the Hopper kernel (CuTe found at build time).
bool hopper_kernel_built();
// True when this build holds the instantiations that exist only for comparison (CMake option
// RADIAL_ABLATION_KERNELS): portable tiles other than standard, the L2 prefetch, Hopper
// schedules other than the default.
bool ablation_kernels_built();

// "family=hopper,schedule=serial": comma-separated field=value pairs, any order; fields not
// named take default_choice(family) (family: portable when not named). Fields: family
// (portable, hopper), direction (forward, backward), tile (standard, eight_warps,
// double_buffer; portable), schedule (serial, overlap, pingpong, q_registers; hopper),
// row_order (locality, heavy_first, natural), persistent (on, off; hopper), max_ctas (an
// integer >= 0; with persistent=on), l2_prefetch (on, off; portable), deterministic (on, off;
// portable, direction=backward), precision (native, fp8; hopper, forward), variant (standard,
// fp8_no_key_bias, ...; hopper; an fp8_ variant needs precision=fp8, a bwd_ variant
// direction=backward). Throws radial::Error
// naming the field ("choice.schedule") for an unknown field or value, or a field that does
// not apply to the family.
KernelChoice parse_choice(std::string_view text);
// Every field that applies to the choice's family, in a fixed order; parse_choice reads it back.
std::string format_choice(const KernelChoice& choice);

const char* family_name(Family family);
const char* direction_name(Direction direction);
const char* tile_name(PortableTile tile);
const char* schedule_name(HopperSchedule schedule);
const char* row_order_name(RowOrder order);
const char* variant_name(Variant variant);
// True for the variants of the FP8 forward (they need precision=fp8).
bool fp8_variant(Variant variant);
// True for the variants of the Hopper backward (they need direction=backward).
bool bwd_variant(Variant variant);

}  // namespace radial
