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
DQAccumOrder launch_bwd_hopper_bf16_d128(const BwdParams&, cudaStream_t);
DQAccumOrder launch_bwd_hopper_f16_d128(const BwdParams&, cudaStream_t);
DQAccumOrder launch_bwd_hopper_bf16_d64(const BwdParams&, cudaStream_t);
DQAccumOrder launch_bwd_hopper_f16_d64(const BwdParams&, cudaStream_t);

#ifdef RADIAL_ABLATION_KERNELS
// The comparison variants (bwd_hopper_variants_*.cu; choice variant=bwd_rs_dv, bwd_ss,
// bwd_early_dk, bwd_consumer_loads, bwd_consumer_dq, bwd_sts_ds, bwd_lds64, bwd_dq_boxes,
// bwd_mask_select: bwd_hopper_kernel.cuh, Config):
// the main kernel of `variant` for this dtype and head dim, or nullptr when `variant` is not a
// bwd_ one.
BwdMainKernel bwd_hopper_variant_bf16_d128(Variant variant);
BwdMainKernel bwd_hopper_variant_f16_d128(Variant variant);
BwdMainKernel bwd_hopper_variant_bf16_d64(Variant variant);
BwdMainKernel bwd_hopper_variant_f16_d64(Variant variant);
#endif

}  // namespace radial::cuda_detail
