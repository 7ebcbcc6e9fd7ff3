// The Hopper (sm_90a) forward kernel's entry point, compiled only with RADIAL_HOPPER=ON.
#pragma once

#include <cuda_runtime_api.h>

#include "cuda/fwd_params.hpp"
#include "radial/dtype.hpp"

namespace radial::cuda_detail {

// How the Hopper kernel runs (bench/gpu/HOPPER_NOTES.md has what each gave).
enum class HopperSchedule {
  serial,            // cp.async loads by all threads, each wgmma product waited for
  overlap,           // cp.async; the softmax of block t during P V of block t-1
  warp_specialized,  // a TMA producer warpgroup, two consumer warpgroups (overlap schedule)
  pingpong,          // warp_specialized, the consumers taking turns on the tensor cores
  split_overlap,     // warp_specialized, 64-key halves, overlapped schedule
  split_pingpong,    // split_overlap with the consumers taking turns
};

// Launches the sm_90a kernel; throws radial::Error unless dtype is bf16, head_dim 128, block
// size 128 and the current device is compute capability 9.0.
void launch_fwd_hopper(const FwdParams& params, DType dtype, int head_dim, int block_size,
                       HopperSchedule schedule, cudaStream_t stream);

// The warp-specialised kernel (fwd_hopper_ws_bf16_d128.cu), arguments already checked.
void launch_fwd_hopper_ws(const FwdParams& params, bool pingpong, bool split,
                          cudaStream_t stream);

}  // namespace radial::cuda_detail
