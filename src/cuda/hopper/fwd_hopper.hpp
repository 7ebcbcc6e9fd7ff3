// The Hopper (sm_90a) forward kernel's entry point, compiled only with RADIAL_HOPPER=ON.
#pragma once

#include <cuda_runtime_api.h>

#include "cuda/fwd_params.hpp"
#include "radial/dtype.hpp"

namespace radial::cuda_detail {

// Launches the sm_90a kernel; throws radial::Error unless dtype is bf16, head_dim 128, block
// size 128 and the current device is compute capability 9.0. overlap: the softmax of block t
// runs during P V of block t-1 (FwdVariant::hopper); else each product is waited for
// (FwdVariant::hopper_serial).
void launch_fwd_hopper(const FwdParams& params, DType dtype, int head_dim, int block_size,
                       bool overlap, cudaStream_t stream);

}  // namespace radial::cuda_detail
