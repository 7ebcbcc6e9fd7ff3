// The Hopper backward's main kernel for f16, head dim 64.
#include "cuda/hopper/bwd_hopper.hpp"
#include "cuda/hopper/bwd_hopper_kernel.cuh"

namespace radial::cuda_detail {

DQAccumOrder launch_bwd_hopper_f16_d64(const BwdParams& p, cudaStream_t stream) {
  return hopper_bwd::launch<hopper_bwd::BwdTraits<cutlass::half_t, 64>>(p, stream);
}

}  // namespace radial::cuda_detail
