// Picks the compiled instantiation for a dtype and head dim (each lives in its own .cu file).
#include "cuda/fwd_params.hpp"

namespace radial::cuda_detail {

void launch_fwd(const FwdParams& params, DType dtype, int head_dim, int block_size,
                FwdVariant variant, cudaStream_t stream) {
  const bool bf16 = dtype == DType::bf16;
  if (head_dim == 64) {
    (bf16 ? launch_fwd_bf16_d64 : launch_fwd_f16_d64)(params, block_size, variant, stream);
  } else {
    (bf16 ? launch_fwd_bf16_d128 : launch_fwd_f16_d128)(params, block_size, variant, stream);
  }
}

}  // namespace radial::cuda_detail
