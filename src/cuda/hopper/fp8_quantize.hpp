// The FP8 forward's quantisation pass (fp8_quantize.cu): bf16/f16 Q, K, V in, the e4m3 operands
// and scales of FwdParams::fp8 out, Q and K smoothed (their means over the valid tokens
// subtracted per batch, head and channel). q . k = (q - mq) . (k - mk) + mq . (k - mk) + q . mk:
// the kernel multiplies the smoothed parts in e4m3, gets the second term per key back (k_bias,
// in fp32: added to the scores, or with bias_in_v folded into V per key block), and the third,
// the same for every key of a row, leaves the softmax unchanged and goes back into the
// log-sum-exp (lse_shift). Large channel means, common in DiT activations, then cost no e4m3
// precision. The identity holds for any mq and mk, so they need not be the exact means: the pass
// takes them over a fixed eighth of the tokens (kFp8MeanSampleRows), which centres Q and K as
// well on DiT-like inputs and saves the statistics launch most of its reads of Q and K.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

#include "cuda/fwd_params.hpp"
#include "radial/dtype.hpp"

namespace radial::cuda_detail::hopper {

// The tokens whose mean smooths Q and K: the first kFp8MeanSampleRows of every 128-token block
// (those below seq for Q, below key_limit for K).
constexpr int kFp8MeanSampleRows = 16;

// Where the pass writes, all in one workspace (fp8_workspace_bytes).
struct Fp8Workspace {
  Fp8Operands operands;  // q, k, vt, scales, lse_shift, padded_seq
  float* k_mean = nullptr;      // [batch x heads, head_dim]
  float* q_mean = nullptr;      // [batch x heads, head_dim]
  float* partial_qsum = nullptr;  // [batch x heads, chunks, head_dim]: Q's sums per chunk
  float* partial_sum = nullptr;  // [batch x heads, chunks, head_dim]: K's sums per chunk
  float* partial_max = nullptr;  // [batch x heads, chunks, head_dim]: V's max |v| per chunk
  int chunks = 0;
  // k_bias's keys in fp8_vt_position order within each group of 16, as V^T's (the variants
  // with Fp8Traits::kBiasVec read a thread's four biases of two n-tiles as one 16-byte load).
  bool k_bias_vt_order = false;
  // V^T's rows per (batch, head): head_dim, or head_dim + 8 for the variants with
  // Fp8Traits::kSumTensor (row head_dim all ones, the rest zeros: P V's row sums).
  int vt_rows = 0;
  // Fp8Traits::kBiasInV: per key block the largest key bias goes to operands.k_block_shift,
  // k_bias gets each key's w = exp2((bias - that) x scale_log2), V is multiplied by w before
  // its quantisation, and V^T's extra row (if any) holds w x 2^kWLog2 instead of ones.
  bool bias_in_v = false;
  // Q's and K's largest |x| per block in e4m3 units: 448, e4m3's largest, or less for kernels
  // whose scores must fit a narrower accumulator (Fp8Traits::kSF16: kFp8SF16Top).
  float qk_top = 448.f;
  // V^T's keys in fp8_vt_position_ss's order over each block instead of fp8_vt_position's in
  // each 16 (Fp8Traits::kSsP: P from shared memory).
  bool vt_ss_order = false;
  // Q smoothed by its mean (the key bias then restores mean(Q) . (k - mean(K))); false for the
  // kernels without the key bias (Fp8Traits::kKeyBias off, not in V): mean(Q) taken as 0.
  bool smooth_q = true;
  // Each narrow key block's shift raised to the integer exp2 grid (shift x scale_log2 a whole
  // number; Fp8Traits::kPairStep: a step's two blocks share one exponent base, which f16 holds
  // exactly only if both blocks' offsets from it are whole numbers).
  bool shift_grid = false;
};

// The workspace's size for the call `p` describes (V^T with vt_rows rows a head, 0: head_dim),
// and its layout from `base`.
size_t fp8_workspace_bytes(const FwdParams& p, int head_dim, int vt_rows = 0);
Fp8Workspace fp8_workspace(void* base, const FwdParams& p, int head_dim, int vt_rows = 0);

// Three launches on `stream`: Q's and K's sums over the sampled tokens and V's maxima per chunk
// of tokens, their reduction to the means and V's scales, then per 128-token block one CTA for
// Q (with lse_shift) and one for K (with k_bias) and V^T together.
void quantize_fp8(const FwdParams& p, DType dtype, int head_dim, const Fp8Workspace& w,
                  cudaStream_t stream);

}  // namespace radial::cuda_detail::hopper
