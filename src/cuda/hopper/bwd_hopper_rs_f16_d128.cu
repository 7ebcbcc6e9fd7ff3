// The Hopper backward's comparison variants (RADIAL_ABLATION_KERNELS) for f16, head dim 128:
// dV's product with P^T from registers, and dV's and dK's with P^T and dS^T from registers
// (bwd_hopper_kernel.cuh, Operands; choice variant=bwd_rs_dv, bwd_rs_dv_dk).
#include "cuda/hopper/bwd_hopper.hpp"
#include "cuda/hopper/bwd_hopper_kernel.cuh"

namespace radial::cuda_detail {

void launch_bwd_hopper_rs_dv_f16_d128(const BwdParams& p, cudaStream_t stream) {
  hopper_bwd::launch<hopper_bwd::BwdTraits<cutlass::half_t, 128>, hopper_bwd::kRegsP>(p, stream);
}

void launch_bwd_hopper_rs_dv_dk_f16_d128(const BwdParams& p, cudaStream_t stream) {
  hopper_bwd::launch<hopper_bwd::BwdTraits<cutlass::half_t, 128>, hopper_bwd::kRegsPdS>(p, stream);
}

}  // namespace radial::cuda_detail
