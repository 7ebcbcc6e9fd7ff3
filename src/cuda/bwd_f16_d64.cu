// Backward kernels for f16, head dim 64 (one file per instantiation keeps builds parallel).
#include "cuda/bwd_kernel.cuh"

namespace radial::cuda_detail {

void launch_bwd_f16_d64(const BwdParams& p, int block_size, bool deterministic,
                        BwdMainKernel main, cudaStream_t stream) {
  launch_bwd_for<__half, 64>(p, block_size, deterministic, main, stream);
}

}  // namespace radial::cuda_detail
