// Picks the compiled instantiation for a dtype and head dim (each lives in its own .cu file).
#include "cuda/fwd_params.hpp"
#include "cuda/hopper/fwd_hopper.hpp"
#include "radial/error.hpp"

namespace radial::cuda_detail {

void launch_fwd(const FwdParams& params, DType dtype, int head_dim, int block_size,
                FwdVariant variant, cudaStream_t stream) {
  if (variant >= FwdVariant::hopper && variant <= FwdVariant::hopper_split_pingpong) {
#ifdef RADIAL_WITH_HOPPER
    const HopperSchedule schedules[] = {HopperSchedule::overlap, HopperSchedule::serial,
                                        HopperSchedule::warp_specialized,
                                        HopperSchedule::pingpong, HopperSchedule::split_overlap,
                                        HopperSchedule::split_pingpong};
    launch_fwd_hopper(params, dtype, head_dim, block_size,
                      schedules[static_cast<int>(variant) - static_cast<int>(FwdVariant::hopper)],
                      stream);
    return;
#else
    throw Error("variant", "a kernel built in (the Hopper kernel needs -DRADIAL_HOPPER=ON)",
                "FwdVariant::hopper");
#endif
  }
  const bool bf16 = dtype == DType::bf16;
  if (head_dim == 64) {
    (bf16 ? launch_fwd_bf16_d64 : launch_fwd_f16_d64)(params, block_size, variant, stream);
  } else {
    (bf16 ? launch_fwd_bf16_d128 : launch_fwd_f16_d128)(params, block_size, variant, stream);
  }
}

}  // namespace radial::cuda_detail
