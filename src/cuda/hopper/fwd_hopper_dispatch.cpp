// Picks the Hopper kernel's instantiation for a dtype and head dim.
#include <string>

#include "cuda/hopper/fwd_hopper.hpp"
#include "radial/error.hpp"

namespace radial::cuda_detail {

bool hopper_supports(DType dtype, int head_dim, int block_size) {
  return (dtype == DType::bf16 || dtype == DType::f16) && (head_dim == 64 || head_dim == 128) &&
         block_size == 128;
}

void launch_fwd_hopper(const FwdParams& p, DType dtype, int head_dim, int block_size,
                       HopperSchedule schedule, int ctas, cudaStream_t stream) {
  require(dtype == DType::bf16 || dtype == DType::f16, "q.dtype",
          "bf16 or f16 for the Hopper kernel", dtype_name(dtype));
  require(head_dim == 64 || head_dim == 128, "q.dim", "64 or 128 for the Hopper kernel",
          head_dim);
  require(block_size == 128, "plan.block_size", "128 for the Hopper kernel", block_size);
  const bool bf16 = dtype == DType::bf16;
  require(schedule == kDefaultHopperSchedule || (bf16 && head_dim == 128), "variant",
          "the default Hopper schedule (the others are built for bf16, head dim 128 only)",
          static_cast<int>(schedule));
  if (schedule != kDefaultHopperSchedule) {
    switch (schedule) {
      case HopperSchedule::serial:
        return launch_fwd_hopper_bf16_d128_serial(p, ctas, stream);
      case HopperSchedule::overlap:
        return launch_fwd_hopper_bf16_d128_overlap(p, ctas, stream);
      case HopperSchedule::pingpong:
        return launch_fwd_hopper_bf16_d128_pingpong(p, ctas, stream);
      default:
        throw Error("variant", "a Hopper schedule that is built",
                    std::to_string(static_cast<int>(schedule)));
    }
  }
  if (head_dim == 128) {
    (bf16 ? launch_fwd_hopper_bf16_d128 : launch_fwd_hopper_f16_d128)(p, ctas, stream);
  } else {
    (bf16 ? launch_fwd_hopper_bf16_d64 : launch_fwd_hopper_f16_d64)(p, ctas, stream);
  }
}

}  // namespace radial::cuda_detail
