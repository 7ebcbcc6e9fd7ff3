// The FP8 forward on the host (fwd_hopper.hpp): workspace, quantisation pass, kernel.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "cuda/check.hpp"
#include "cuda/hopper/fp8_quantize.hpp"
#include "cuda/hopper/fwd_fp8_layout.hpp"
#include "cuda/hopper/fwd_hopper.hpp"
#include "radial/error.hpp"

namespace radial::cuda_detail {
namespace {

// One memory pool per device that keeps what it got (release threshold: never), so that the
// workspace of every call after the first comes without a cudaMalloc; stream-ordered, so calls
// on different streams never share a buffer.
cudaMemPool_t workspace_pool(int device) {
  static std::mutex mutex;
  static std::map<int, cudaMemPool_t> pools;
  std::lock_guard<std::mutex> lock(mutex);
  auto found = pools.find(device);
  if (found != pools.end()) return found->second;
  cudaMemPoolProps props{};
  props.allocType = cudaMemAllocationTypePinned;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = device;
  cudaMemPool_t pool = nullptr;
  RADIAL_CUDA_CHECK(cudaMemPoolCreate(&pool, &props));
  uint64_t keep = UINT64_MAX;
  RADIAL_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
  pools[device] = pool;
  return pool;
}

// Fp8Traits::kVariant's bit 1: the kernel adds no key bias (Fp8Traits::kKeyBias off, not in V),
// so the pass must not smooth Q (since round 14 the smoothing means come from a sample of the
// tokens, and mean(Q) is no longer about 0 even on zero-mean inputs).
constexpr int kFp8NoKeyBias = 1;

// Fp8Traits::kVariant of the kernel that `variant` runs (its bits that the pass must know of:
// fwd_hopper_fp8_bf16_d128_v<n>.cu say the rest).
int kernel_bits(Variant variant, int head_dim, bool persistent) {
  using namespace hopper;
  switch (variant) {
    case Variant::standard: return fp8_library_bits(head_dim, persistent);
    case Variant::fp8_bias_vec: return kFp8BiasVec;
    case Variant::fp8_round3_bias_vec: return kFp8BiasVec | 28;
    case Variant::fp8_sum_tensor: return kFp8SumTensor;
    case Variant::fp8_round3_sum_tensor: return kFp8SumTensor | 28;
    case Variant::fp8_bias_in_v_fma_o: return kFp8Library | kFp8FmaO;
    case Variant::fp8_pairs:  // (these change the kernel only)
    case Variant::fp8_poly_exp_quarter:
    case Variant::fp8_poly_exp_half:
    case Variant::fp8_lazy_rescale:
    case Variant::fp8_lazy_poly:
    case Variant::fp8_global_meta:
    case Variant::fp8_q_registers:
    case Variant::fp8_two_warpgroups:
    case Variant::fp8_wg3_whole_pv:
    case Variant::fp8_wg3_five_stages:
    case Variant::fp8_wg3_poly_exp_quarter:
    case Variant::fp8_wg3_trace:
    case Variant::fp8_wg3_ring:
    case Variant::fp8_wg3_ring_trace:
    case Variant::fp8_wg3_s_halves:
    case Variant::fp8_wg3_ring_convoy:
    case Variant::fp8_wg3_pv_overlap:
    case Variant::fp8_wg3_ring_s_halves:
    case Variant::fp8_wg3_s_halves_pv_overlap:
    case Variant::fp8_wg3_round8:
    case Variant::fp8_wg3_round9:
    case Variant::fp8_wg3_round9_tree_max:
    case Variant::fp8_wg3_round9_uniform_loop:
    case Variant::fp8_wg3_round10: return kFp8Library;
    case Variant::fp8_wg3_s_f16_lookahead:  // (Q and K to at most kFp8SF16Top)
    case Variant::fp8_wg3_f16_poly_quarter:
    case Variant::fp8_wg3_f16_poly_half:
    case Variant::fp8_wg3_f16_poly_three_quarters:
    case Variant::fp8_wg3_round11:
    case Variant::fp8_wg3_f16_poly_three_eighths:
    case Variant::fp8_wg3_f16_s_late:
    case Variant::fp8_wg3_round12:
      return kFp8Library | kFp8SF16;
    case Variant::fp8_wg3_s_f16_ss_p: return kFp8Library | kFp8SF16 | kFp8SsP;
    case Variant::fp8_wg3_pair_step: return kFp8Library | kFp8SF16 | kFp8PairStep;  // (shift grid)
    case Variant::fp8_no_key_bias:
    case Variant::fp8_no_key_bias_direct_o:
    case Variant::fp8_no_key_bias_round3: return kFp8NoKeyBias;
    default: return 0;  // the others: none of the pass's bits
  }
}

// The comparison variants of the three-warpgroup kernel (fwd_fp8_wg3.cuh: 192-row tiles, one
// CTA each).
bool wg3_variant(Variant variant) {
  return std::string_view(variant_name(variant)).starts_with("fp8_wg3_");
}

// Whether `variant` runs that kernel with one CTA per tile: the library's at head dim 128, and
// the fp8_wg3_ variants.
bool runs_wg3(Variant variant, int head_dim) {
  return head_dim == 128 && (variant == Variant::standard || wg3_variant(variant));
}

void launch_kernel(const FwdParams& q, DType dtype, int head_dim, int ctas, Variant variant,
                   cudaStream_t stream) {
  const bool bf16 = dtype == DType::bf16;
  if (variant != Variant::standard) {
    require(fp8_variant(variant), "choice.variant", "standard or an fp8_ variant",
            variant_name(variant));
#ifdef RADIAL_ABLATION_KERNELS
    if (variant == Variant::fp8_quantize_only) return;  // the pass alone, to time it
    require(bf16 && head_dim == 128, "choice.variant",
            "standard for this dtype and head dim (the variants are built for bf16, head dim 128)",
            variant_name(variant));
    // The three-warpgroup variants take one CTA per 192-row tile (fwd_fp8_wg3.cuh).
    if (wg3_variant(variant)) {
      require(q.tile_counter == nullptr, "choice.persistent",
              std::string("off with variant=") + variant_name(variant) +
                  " (one CTA per 192-row tile)",
              "on");
    }
    switch (variant) {
      case Variant::fp8_no_key_bias: return launch_fwd_hopper_fp8_bf16_d128_v1(q, ctas, stream);
      case Variant::fp8_direct_o: return launch_fwd_hopper_fp8_bf16_d128_v2(q, ctas, stream);
      case Variant::fp8_no_key_bias_direct_o:
        return launch_fwd_hopper_fp8_bf16_d128_v3(q, ctas, stream);
      case Variant::fp8_fma_o: return launch_fwd_hopper_fp8_bf16_d128_v4(q, ctas, stream);
      case Variant::fp8_late_wait: return launch_fwd_hopper_fp8_bf16_d128_v5(q, ctas, stream);
      case Variant::fp8_fma_o_late_wait: return launch_fwd_hopper_fp8_bf16_d128_v6(q, ctas, stream);
      case Variant::fp8_prefetch: return launch_fwd_hopper_fp8_bf16_d128_v7(q, ctas, stream);
      case Variant::fp8_round3: return launch_fwd_hopper_fp8_bf16_d128_v8(q, ctas, stream);
      case Variant::fp8_no_key_bias_round3:
        return launch_fwd_hopper_fp8_bf16_d128_v9(q, ctas, stream);
      case Variant::fp8_bias_vec: return launch_fwd_hopper_fp8_bf16_d128_v10(q, ctas, stream);
      case Variant::fp8_round3_bias_vec:
        return launch_fwd_hopper_fp8_bf16_d128_v11(q, ctas, stream);
      case Variant::fp8_sum_tensor: return launch_fwd_hopper_fp8_bf16_d128_v12(q, ctas, stream);
      case Variant::fp8_round3_sum_tensor:
        return launch_fwd_hopper_fp8_bf16_d128_v13(q, ctas, stream);
      case Variant::fp8_bias_in_v_fma_o:
        return launch_fwd_hopper_fp8_bf16_d128_v15(q, ctas, stream);
      case Variant::fp8_key_bias: return launch_fwd_hopper_fp8_bf16_d128_v17(q, ctas, stream);
      case Variant::fp8_pairs: return launch_fwd_hopper_fp8_bf16_d128_v18(q, ctas, stream);
      case Variant::fp8_poly_exp_quarter:
        return launch_fwd_hopper_fp8_bf16_d128_v19(q, ctas, stream);
      case Variant::fp8_poly_exp_half: return launch_fwd_hopper_fp8_bf16_d128_v20(q, ctas, stream);
      case Variant::fp8_lazy_rescale: return launch_fwd_hopper_fp8_bf16_d128_v21(q, ctas, stream);
      case Variant::fp8_lazy_poly: return launch_fwd_hopper_fp8_bf16_d128_v22(q, ctas, stream);
      case Variant::fp8_global_meta: return launch_fwd_hopper_fp8_bf16_d128_v23(q, ctas, stream);
      case Variant::fp8_q_registers: return launch_fwd_hopper_fp8_bf16_d128_v24(q, ctas, stream);
      case Variant::fp8_two_warpgroups: return launch_fwd_hopper_fp8_bf16_d128_v25(q, ctas, stream);
      case Variant::fp8_wg3_whole_pv: return launch_fwd_hopper_fp8_bf16_d128_v26(q, ctas, stream);
      case Variant::fp8_wg3_five_stages:
        return launch_fwd_hopper_fp8_bf16_d128_v27(q, ctas, stream);
      case Variant::fp8_wg3_poly_exp_quarter:
        return launch_fwd_hopper_fp8_bf16_d128_v28(q, ctas, stream);
      case Variant::fp8_wg3_trace: return launch_fwd_hopper_fp8_bf16_d128_v29(q, ctas, stream);
      case Variant::fp8_wg3_ring: return launch_fwd_hopper_fp8_bf16_d128_v30(q, ctas, stream);
      case Variant::fp8_wg3_ring_trace: return launch_fwd_hopper_fp8_bf16_d128_v31(q, ctas, stream);
      case Variant::fp8_wg3_s_halves: return launch_fwd_hopper_fp8_bf16_d128_v32(q, ctas, stream);
      case Variant::fp8_wg3_ring_convoy:
        return launch_fwd_hopper_fp8_bf16_d128_v33(q, ctas, stream);
      case Variant::fp8_wg3_pv_overlap: return launch_fwd_hopper_fp8_bf16_d128_v34(q, ctas, stream);
      case Variant::fp8_wg3_ring_s_halves:
        return launch_fwd_hopper_fp8_bf16_d128_v35(q, ctas, stream);
      case Variant::fp8_wg3_s_halves_pv_overlap:
        return launch_fwd_hopper_fp8_bf16_d128_v36(q, ctas, stream);
      case Variant::fp8_wg3_round8: return launch_fwd_hopper_fp8_bf16_d128_v37(q, ctas, stream);
      case Variant::fp8_wg3_round9: return launch_fwd_hopper_fp8_bf16_d128_v38(q, ctas, stream);
      case Variant::fp8_wg3_round9_tree_max:
        return launch_fwd_hopper_fp8_bf16_d128_v39(q, ctas, stream);
      case Variant::fp8_wg3_round9_uniform_loop:
        return launch_fwd_hopper_fp8_bf16_d128_v41(q, ctas, stream);
      case Variant::fp8_wg3_round10: return launch_fwd_hopper_fp8_bf16_d128_v42(q, ctas, stream);
      case Variant::fp8_wg3_s_f16_lookahead:
        return launch_fwd_hopper_fp8_bf16_d128_v43(q, ctas, stream);
      case Variant::fp8_wg3_s_f16_ss_p: return launch_fwd_hopper_fp8_bf16_d128_v44(q, ctas, stream);
      case Variant::fp8_wg3_f16_poly_quarter:
        return launch_fwd_hopper_fp8_bf16_d128_v45(q, ctas, stream);
      case Variant::fp8_wg3_f16_poly_half:
        return launch_fwd_hopper_fp8_bf16_d128_v46(q, ctas, stream);
      case Variant::fp8_wg3_f16_poly_three_quarters:
        return launch_fwd_hopper_fp8_bf16_d128_v47(q, ctas, stream);
      case Variant::fp8_wg3_round11: return launch_fwd_hopper_fp8_bf16_d128_v48(q, ctas, stream);
      case Variant::fp8_wg3_f16_poly_three_eighths:
        return launch_fwd_hopper_fp8_bf16_d128_v49(q, ctas, stream);
      case Variant::fp8_wg3_f16_s_late: return launch_fwd_hopper_fp8_bf16_d128_v50(q, ctas, stream);
      case Variant::fp8_wg3_pair_step: return launch_fwd_hopper_fp8_bf16_d128_v51(q, ctas, stream);
      case Variant::fp8_wg3_round12: return launch_fwd_hopper_fp8_bf16_d128_v52(q, ctas, stream);
      default: break;
    }
#endif
    throw Error("choice.variant",
                "standard (the comparison variants are built with RADIAL_ABLATION_KERNELS)",
                variant_name(variant));
  }
  if (head_dim == 128 && q.tile_counter != nullptr) {
    (bf16 ? launch_fwd_hopper_fp8_bf16_d128_persistent
          : launch_fwd_hopper_fp8_f16_d128_persistent)(q, ctas, stream);
  } else if (head_dim == 128) {
    (bf16 ? launch_fwd_hopper_fp8_bf16_d128 : launch_fwd_hopper_fp8_f16_d128)(q, ctas, stream);
  } else {
    (bf16 ? launch_fwd_hopper_fp8_bf16_d64 : launch_fwd_hopper_fp8_f16_d64)(q, ctas, stream);
  }
}

}  // namespace

void run_fwd_fp8(const FwdParams& p, DType dtype, int head_dim, int ctas, Variant variant,
                 cudaStream_t stream) {
  int device = 0;
  RADIAL_CUDA_CHECK(cudaGetDevice(&device));
  void* base = nullptr;
  // (The kernels with the row sums by the tensor cores want V^T with 8 more rows; those with
  // the key bias in V their V weighted.)
  const int bits = kernel_bits(variant, head_dim, p.tile_counter != nullptr);
  const int vt_rows = head_dim + ((bits & hopper::kFp8SumTensor) != 0 ? 8 : 0);
  RADIAL_CUDA_CHECK(cudaMallocFromPoolAsync(
      &base, hopper::fp8_workspace_bytes(p, head_dim, vt_rows), workspace_pool(device), stream));
  hopper::Fp8Workspace w = hopper::fp8_workspace(base, p, head_dim, vt_rows);
  // (A variant that reads the key biases as 16-byte loads wants them in V^T's key order.)
  w.k_bias_vt_order = (bits & hopper::kFp8BiasVec) != 0;
  w.bias_in_v = (bits & hopper::kFp8BiasInV) != 0;
  // (S with an f16 accumulator wants Q and K small enough that no score can overflow it.)
  if ((bits & hopper::kFp8SF16) != 0) w.qk_top = hopper::kFp8SF16Top;
  w.vt_ss_order = (bits & hopper::kFp8SsP) != 0;  // (P from shared memory: V^T's key order)
  w.smooth_q = (bits & kFp8NoKeyBias) == 0;  // (no key bias: nothing may need one)
  w.shift_grid = (bits & hopper::kFp8PairStep) != 0;  // (a step's two blocks share one base)
  FwdParams q = p;
  q.fp8 = w.operands;
  // (One CTA per tile: the 192-row tiles' order is for the three-warpgroup kernel only; the
  // others index their 128-row tiles.)
  if (p.tile_counter == nullptr && !runs_wg3(variant, head_dim)) q.tile_order = nullptr;
  try {
    hopper::quantize_fp8(p, dtype, head_dim, w, stream);
    launch_kernel(q, dtype, head_dim, ctas, variant, stream);
  } catch (...) {
    cudaFreeAsync(base, stream);
    throw;
  }
  RADIAL_CUDA_CHECK(cudaFreeAsync(base, stream));
}

}  // namespace radial::cuda_detail
