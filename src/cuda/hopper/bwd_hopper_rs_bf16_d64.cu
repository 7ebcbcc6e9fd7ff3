// The Hopper backward's comparison variants (RADIAL_ABLATION_KERNELS) for bf16, head dim 64:
// dV's product with P^T from registers, and dV's and dK's with P^T and dS^T from registers
// (bwd_hopper_kernel.cuh, Operands; choice variant=bwd_rs_dv, bwd_rs_dv_dk).
#include "cuda/hopper/bwd_hopper.hpp"
#include "cuda/hopper/bwd_hopper_kernel.cuh"

namespace radial::cuda_detail {

void launch_bwd_hopper_rs_dv_bf16_d64(const BwdParams& p, cudaStream_t stream) {
  hopper_bwd::launch<hopper_bwd::BwdTraits<cutlass::bfloat16_t, 64>, hopper_bwd::kRegsP>(p, stream);
}

void launch_bwd_hopper_rs_dv_dk_bf16_d64(const BwdParams& p, cudaStream_t stream) {
  hopper_bwd::launch<hopper_bwd::BwdTraits<cutlass::bfloat16_t, 64>, hopper_bwd::kRegsPdS>(p, stream);
}

}  // namespace radial::cuda_detail
