// Picks the compiled instantiation for a variant, dtype and head dim (each lives in its own
// .cu file).
#include <string>

#include "cuda/check.hpp"
#include "cuda/fwd_params.hpp"
#include "radial/error.hpp"
#ifdef RADIAL_WITH_HOPPER
#include "cuda/hopper/fwd_hopper.hpp"
#endif

namespace radial::cuda_detail {

#ifdef RADIAL_WITH_HOPPER
namespace {

// Compute capability of `device` as major * 10 + minor, or -1 when it cannot be read (a bad
// index is left to the argument checks, which name it).
int compute_capability(int device) {
  int major = 0, minor = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
    cudaGetLastError();
    return -1;
  }
  return major * 10 + minor;
}

}  // namespace
#endif

bool is_hopper_variant(FwdVariant variant) {
  return variant >= FwdVariant::hopper && variant <= FwdVariant::hopper_q_registers;
}

void launch_fwd(const FwdParams& params, DType dtype, int head_dim, int block_size,
                FwdVariant variant, cudaStream_t stream) {
  if (is_hopper_variant(variant)) {
#ifdef RADIAL_WITH_HOPPER
    int device = 0;
    RADIAL_CUDA_CHECK(cudaGetDevice(&device));
    const int cc = compute_capability(device);
    require(cc == 90, "device", "compute capability 9.0 for the Hopper kernel",
            std::to_string(cc / 10) + "." + std::to_string(cc % 10));
    HopperSchedule schedule = kDefaultHopperSchedule;
    if (variant == FwdVariant::hopper_serial) schedule = HopperSchedule::serial;
    if (variant == FwdVariant::hopper_overlap) schedule = HopperSchedule::overlap;
    if (variant == FwdVariant::hopper_pingpong) schedule = HopperSchedule::pingpong;
    if (variant == FwdVariant::hopper_q_registers) schedule = HopperSchedule::overlap_q_registers;
    const int ctas = params.tile_counter != nullptr
                         ? params.ctas
                         : static_cast<int>(params.batch_heads * params.block_rows);
    launch_fwd_hopper(params, dtype, head_dim, block_size, schedule, ctas, stream);
    return;
#else
    throw Error("variant",
                "a kernel built in (the Hopper kernel needs CuTe at build time: pip install "
                "nvidia-cutlass==4.2.0.0, RADIAL_HOPPER=AUTO or ON)",
                std::to_string(static_cast<int>(variant)));
#endif
  }
  const bool bf16 = dtype == DType::bf16;
  if (head_dim == 64) {
    (bf16 ? launch_fwd_bf16_d64 : launch_fwd_f16_d64)(params, block_size, variant, stream);
  } else {
    (bf16 ? launch_fwd_bf16_d128 : launch_fwd_f16_d128)(params, block_size, variant, stream);
  }
}

bool hopper_default_persistent() {
#ifdef RADIAL_WITH_HOPPER
  return kDefaultHopperPersistent;
#else
  return false;
#endif
}

bool hopper_covers(DType dtype, int head_dim, int block_size, int device) {
#ifdef RADIAL_WITH_HOPPER
  return hopper_supports(dtype, head_dim, block_size) && compute_capability(device) == 90;
#else
  (void)dtype, (void)head_dim, (void)block_size, (void)device;
  return false;
#endif
}

}  // namespace radial::cuda_detail
