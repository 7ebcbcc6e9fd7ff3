// The Hopper backward's main kernel for bf16, head dim 128.
#include "cuda/hopper/bwd_hopper.hpp"
#include "cuda/hopper/bwd_hopper_kernel.cuh"

namespace radial::cuda_detail {

DQAccumOrder launch_bwd_hopper_bf16_d128(const BwdParams& p, cudaStream_t stream) {
  return hopper_bwd::launch<hopper_bwd::BwdTraits<cutlass::bfloat16_t, 128>>(p, stream);
}

}  // namespace radial::cuda_detail
