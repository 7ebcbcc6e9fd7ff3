// The Hopper (sm_90a) forward kernel's entry points, compiled when CuTe is found
// (RADIAL_HOPPER=AUTO, the default) or required (ON). The dispatcher (src/cuda/fwd_dispatch.cpp)
// picks one for a kernel choice; the schedules are HopperSchedule (src/api/kernel_choice.hpp).
#pragma once

#include <cuda_runtime_api.h>

#include "api/kernel_choice.hpp"
#include "cuda/fwd_params.hpp"

namespace radial::cuda_detail {

// Each launches `ctas` CTAs (persistent ones when params.tile_counter is set, else one per
// tile); the caller has checked dtype, head dim, block 128 and compute capability 9.0.
// One instantiation per file: the library's schedule (q_registers) for each (dtype, head dim).
void launch_fwd_hopper_bf16_d128(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_f16_d128(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_bf16_d64(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_f16_d64(const FwdParams&, int ctas, cudaStream_t);
// The FP8 (e4m3) kernel on the operands of the quantisation pass (params.fp8), output in the
// inputs' dtype (files fwd_hopper_fp8_<dtype>_d<dim>.cu); run_fwd_fp8 runs the pass and then it.
// Head dim 128: three consumer warpgroups on 192-row tiles, one CTA per tile (they launch their
// own count, whatever `ctas` says), and for persistent CTAs the two-warpgroup kernel (_persistent).
void launch_fwd_hopper_fp8_bf16_d128(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_f16_d128(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_persistent(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_f16_d128_persistent(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d64(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_f16_d64(const FwdParams&, int ctas, cudaStream_t);
// Comparison variants of the FP8 kernel (bf16, head dim 128; Fp8Traits::kVariant), built with
// RADIAL_ABLATION_KERNELS and run for the choice's fp8_ variants (KernelChoice::variant).
void launch_fwd_hopper_fp8_bf16_d128_v1(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v2(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v3(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v4(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v5(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v6(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v7(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v8(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v9(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v10(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v11(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v12(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v13(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v15(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v17(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v18(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v19(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v20(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v21(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v22(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v23(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v24(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v25(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v26(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v27(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v28(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v29(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v30(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v31(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v32(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v33(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v34(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v35(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v36(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v37(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v38(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v39(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v41(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v42(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v43(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v44(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v45(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v46(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v47(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v48(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v49(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v50(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v51(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_fp8_bf16_d128_v52(const FwdParams&, int ctas, cudaStream_t);
// The FP8 forward (precision fp8): a workspace from a per-device stream-ordered memory pool,
// the quantisation pass (fp8_quantize.hpp), the FP8 kernel, the workspace freed, all on
// `stream`. The caller has checked what launch_fwd_hopper_* need.
// `variant`: standard, or an fp8_ comparison variant (refused, naming choice.variant, when it is
// not built or does not cover the call).
void run_fwd_fp8(const FwdParams& p, DType dtype, int head_dim, int ctas, Variant variant,
                 cudaStream_t stream);
// The other schedules for bf16, head dim 128, for comparison (built with
// RADIAL_ABLATION_KERNELS; files fwd_hopper_bf16_d128_<schedule>.cu).
void launch_fwd_hopper_bf16_d128_serial(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_bf16_d128_overlap(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_bf16_d128_pingpong(const FwdParams&, int ctas, cudaStream_t);
// The library's schedule with Traits::kLateWait (KernelChoice::variant bf16_late_wait).
void launch_fwd_hopper_bf16_d128_late_wait(const FwdParams&, int ctas, cudaStream_t);

}  // namespace radial::cuda_detail
