// The Hopper backward's comparison variants (RADIAL_ABLATION_KERNELS) for bf16, head dim 128:
// dV's product with P^T from registers but dK's with dS^T from shared memory (bwd_rs_dv); both
// through shared memory (bwd_ss, the library's kernel until 2026-12-01); the library's operands
// with dK's product and the next tile's issued earlier (bwd_early_dk). See
// bwd_hopper_kernel.cuh, Operands.
#include "cuda/hopper/bwd_hopper.hpp"
#include "cuda/hopper/bwd_hopper_kernel.cuh"

namespace radial::cuda_detail {

void launch_bwd_hopper_rs_dv_bf16_d128(const BwdParams& p, cudaStream_t stream) {
  hopper_bwd::launch<hopper_bwd::BwdTraits<cutlass::bfloat16_t, 128>, hopper_bwd::kRegsP>(p, stream);
}

void launch_bwd_hopper_ss_bf16_d128(const BwdParams& p, cudaStream_t stream) {
  hopper_bwd::launch<hopper_bwd::BwdTraits<cutlass::bfloat16_t, 128>, hopper_bwd::kSmemPdS>(p, stream);
}

void launch_bwd_hopper_early_dk_bf16_d128(const BwdParams& p, cudaStream_t stream) {
  hopper_bwd::launch<hopper_bwd::BwdTraits<cutlass::bfloat16_t, 128>, hopper_bwd::kRegsPdSEarlyDK>(p, stream);
}

}  // namespace radial::cuda_detail
