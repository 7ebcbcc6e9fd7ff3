// The Hopper (sm_90a) forward kernel's entry points, compiled when CuTe is found
// (RADIAL_HOPPER=AUTO, the default) or required (ON).
#pragma once

#include <cuda_runtime_api.h>

#include "cuda/fwd_params.hpp"
#include "radial/dtype.hpp"

namespace radial::cuda_detail {

// How the consumer warpgroups order their work (fwd_hopper_kernel.cuh; what each gave is in
// bench/gpu/HOPPER_NOTES.md).
enum class HopperSchedule {
  serial,    // each product waited for
  overlap,   // the softmax of block t while P V of block t-1 runs
  pingpong,  // overlap, the two warpgroups taking turns on the tensor cores
  overlap_q_registers,  // overlap with Q in registers (RS Q K^T, loaded once per tile)
};

// The schedule and grid the library uses (bench/gpu/HOPPER_NOTES.md has the measurements):
// overlap matched or beat pingpong (and three K/V stages gained nothing); Q in registers gave
// 2-3% more than Q read from shared memory by every Q K^T; one CTA per tile, which the hardware
// hands out in locality order as SMs free up, matched persistent CTAs on an atomic counter
// (and beat persistent CTAs on a static host schedule by 7-16%).
constexpr HopperSchedule kDefaultHopperSchedule = HopperSchedule::overlap_q_registers;
constexpr bool kDefaultHopperPersistent = false;

// True when the kernel covers this dtype (bf16, f16), head dim (64, 128) and block size (128).
bool hopper_supports(DType dtype, int head_dim, int block_size);

// Launches `ctas` CTAs (persistent ones when params.tile_counter is set, else one per tile);
// throws radial::Error naming the argument the kernel does not cover. The
// caller has checked that the device is compute capability 9.0.
void launch_fwd_hopper(const FwdParams& params, DType dtype, int head_dim, int block_size,
                       HopperSchedule schedule, int ctas, cudaStream_t stream);

// One instantiation per file: the library's schedule for each (dtype, head dim), and the other
// schedules for bf16, head dim 128 (the benchmark compares them).
void launch_fwd_hopper_bf16_d128(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_f16_d128(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_bf16_d64(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_f16_d64(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_bf16_d128_serial(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_bf16_d128_overlap(const FwdParams&, int ctas, cudaStream_t);
void launch_fwd_hopper_bf16_d128_pingpong(const FwdParams&, int ctas, cudaStream_t);

}  // namespace radial::cuda_detail
