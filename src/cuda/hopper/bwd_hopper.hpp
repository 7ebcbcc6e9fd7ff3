// The Hopper (sm_90a) backward's main kernel (bwd_hopper_kernel.cuh): dK, dV and dQ by float32
// atomics, between the portable backward's preprocess and dQ conversion (bwd_kernel.cuh).
// Compiled when CuTe is found, like the Hopper forward.
#pragma once

#include <cuda_runtime_api.h>

#include "cuda/bwd_params.hpp"

namespace radial::cuda_detail {

// One instantiation per file; each launches one CTA per (batch x head, key block) on `stream`.
// The caller has checked compute capability 9.0, block size 128 and the atomic dQ mode (the
// workspace holds the dQ accumulator, zeroed by the preprocess).
void launch_bwd_hopper_bf16_d128(const BwdParams&, cudaStream_t);
void launch_bwd_hopper_f16_d128(const BwdParams&, cudaStream_t);
void launch_bwd_hopper_bf16_d64(const BwdParams&, cudaStream_t);
void launch_bwd_hopper_f16_d64(const BwdParams&, cudaStream_t);

#ifdef RADIAL_ABLATION_KERNELS
// Comparison variants (bwd_hopper_variants_*.cu; choice variant=bwd_rs_dv, bwd_ss,
// bwd_early_dk): dV's product with P^T from registers, dK's with dS^T from shared memory; both
// from shared memory; the library's operands with dK's product and the next tile's issued
// earlier (Operands kRegsPdSEarlyDK).
void launch_bwd_hopper_rs_dv_bf16_d128(const BwdParams&, cudaStream_t);
void launch_bwd_hopper_rs_dv_f16_d128(const BwdParams&, cudaStream_t);
void launch_bwd_hopper_rs_dv_bf16_d64(const BwdParams&, cudaStream_t);
void launch_bwd_hopper_rs_dv_f16_d64(const BwdParams&, cudaStream_t);
void launch_bwd_hopper_ss_bf16_d128(const BwdParams&, cudaStream_t);
void launch_bwd_hopper_ss_f16_d128(const BwdParams&, cudaStream_t);
void launch_bwd_hopper_ss_bf16_d64(const BwdParams&, cudaStream_t);
void launch_bwd_hopper_ss_f16_d64(const BwdParams&, cudaStream_t);
void launch_bwd_hopper_early_dk_bf16_d128(const BwdParams&, cudaStream_t);
void launch_bwd_hopper_early_dk_f16_d128(const BwdParams&, cudaStream_t);
void launch_bwd_hopper_early_dk_bf16_d64(const BwdParams&, cudaStream_t);
void launch_bwd_hopper_early_dk_f16_d64(const BwdParams&, cudaStream_t);
#endif

}  // namespace radial::cuda_detail
