// The Hopper backward's comparison variants (RADIAL_ABLATION_KERNELS) for bf16, head dim 128:
// bwd_rs_dv, bwd_ss, bwd_early_dk, bwd_consumer_loads, bwd_consumer_dq, bwd_sts_ds, bwd_lds64,
// bwd_dq_boxes and bwd_mask_select (bwd_hopper_kernel.cuh, Config and variant_launch).
#include "cuda/hopper/bwd_hopper.hpp"
#include "cuda/hopper/bwd_hopper_kernel.cuh"

namespace radial::cuda_detail {

BwdMainKernel bwd_hopper_variant_bf16_d128(Variant variant) {
  return hopper_bwd::variant_launch<hopper_bwd::BwdTraits<cutlass::bfloat16_t, 128>>(variant);
}

}  // namespace radial::cuda_detail
