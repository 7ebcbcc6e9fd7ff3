// Forward kernels for f16, head dim 64 (one file per instantiation keeps builds parallel).
#include "cuda/check.hpp"
#include "cuda/fwd_kernel.cuh"

namespace radial::cuda_detail {

void launch_fwd_f16_d64(const FwdParams& p, int block_size, PortableTile tile, bool l2_prefetch,
                        cudaStream_t stream) {
  launch_portable<__half, 64>(p, block_size, tile, l2_prefetch, stream);
}

}  // namespace radial::cuda_detail
