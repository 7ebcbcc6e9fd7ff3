// The one dispatcher: a kernel choice (src/api/kernel_choice.hpp) to the compiled instantiation
// that runs it (each lives in its own .cu file). What is not built, or does not cover the call,
// is refused here with an Error naming the field.
#include <string>

#include "api/kernel_choice.hpp"
#include "cuda/check.hpp"
#include "cuda/fwd_params.hpp"
#include "radial/error.hpp"
#ifdef RADIAL_WITH_HOPPER
#include "cuda/hopper/fwd_hopper.hpp"
#endif

namespace radial::cuda_detail {
namespace {

const char* const kAblationHint =
    " (built for comparison only: configure with -DRADIAL_ABLATION_KERNELS=ON)";

std::string arch_text(int arch) {
  return arch < 0 ? std::string("unknown")
                  : std::to_string(arch / 10) + "." + std::to_string(arch % 10);
}

void launch_portable_kernel(const FwdParams& p, const KernelChoice& c, DType dtype,
                            int head_dim, int block_size, cudaStream_t stream) {
  if (c.tile != PortableTile::standard || c.l2_prefetch) {
    require(block_size == 128, c.l2_prefetch ? "choice.l2_prefetch" : "choice.tile",
            "the standard tile without prefetch for block 64 (the others are block 128 only)",
            std::string(tile_name(c.tile)) + (c.l2_prefetch ? ", l2_prefetch=on" : ""));
    require(ablation_kernels_built(), c.l2_prefetch ? "choice.l2_prefetch" : "choice.tile",
            std::string("tile=standard, l2_prefetch=off") + kAblationHint,
            std::string(tile_name(c.tile)) + (c.l2_prefetch ? ", l2_prefetch=on" : ""));
    require(!c.l2_prefetch || c.tile == PortableTile::standard, "choice.l2_prefetch",
            "off with tile=" + std::string(tile_name(c.tile)) +
                " (the prefetch is built for the standard tile)",
            "on");
  }
  const bool bf16 = dtype == DType::bf16;
  if (head_dim == 64) {
    (bf16 ? launch_fwd_bf16_d64 : launch_fwd_f16_d64)(p, block_size, c.tile, c.l2_prefetch,
                                                      stream);
  } else {
    (bf16 ? launch_fwd_bf16_d128 : launch_fwd_f16_d128)(p, block_size, c.tile, c.l2_prefetch,
                                                        stream);
  }
}

void launch_hopper_kernel(const FwdParams& p, const KernelChoice& c, DType dtype, int head_dim,
                          int block_size, int arch, cudaStream_t stream) {
  require(hopper_kernel_built(), "choice.family",
          "a family built in (the Hopper kernel needs CuTe at build time: pip install "
          "nvidia-cutlass==4.2.0.0, RADIAL_HOPPER=AUTO or ON)",
          "hopper");
  require(arch == 90, "device", "compute capability 9.0 for the Hopper kernel", arch_text(arch));
  require(dtype == DType::bf16 || dtype == DType::f16, "q.dtype",
          "bf16 or f16 for the Hopper kernel", dtype_name(dtype));
  require(head_dim == 64 || head_dim == 128, "q.dim", "64 or 128 for the Hopper kernel",
          head_dim);
  require(block_size == 128, "plan.block_size", "128 for the Hopper kernel", block_size);
  const bool bf16 = dtype == DType::bf16;
  if (c.schedule != kDefaultHopperSchedule) {
    require(bf16 && head_dim == 128, "choice.schedule",
            std::string(schedule_name(kDefaultHopperSchedule)) +
                " for this dtype and head dim (the others are built for bf16, head dim 128)",
            schedule_name(c.schedule));
    require(ablation_kernels_built(), "choice.schedule",
            std::string(schedule_name(kDefaultHopperSchedule)) + kAblationHint,
            schedule_name(c.schedule));
  }
  const int ctas = p.tile_counter != nullptr ? p.ctas
                                             : static_cast<int>(p.batch_heads * p.block_rows);
#ifdef RADIAL_WITH_HOPPER
  if (c.precision == Precision::fp8) {
    require(c.schedule == kDefaultHopperSchedule, "choice.schedule",
            std::string(schedule_name(kDefaultHopperSchedule)) +
                " with precision=fp8 (the FP8 kernel has one schedule)",
            schedule_name(c.schedule));
    return run_fwd_fp8(p, dtype, head_dim, ctas, c.variant, stream);
  }
  if (c.variant != Variant::standard) {
    require(c.variant == Variant::bf16_late_wait && bf16 && head_dim == 128 &&
                c.schedule == kDefaultHopperSchedule,
            "choice.variant",
            "standard, or bf16_late_wait for bf16, head dim 128 and the default schedule, "
            "without precision=fp8",
            variant_name(c.variant));
    require(ablation_kernels_built(), "choice.variant", std::string("standard") + kAblationHint,
            variant_name(c.variant));
#ifdef RADIAL_ABLATION_KERNELS
    return launch_fwd_hopper_bf16_d128_late_wait(p, ctas, stream);
#endif
  }
  if (c.schedule != kDefaultHopperSchedule) {
#ifdef RADIAL_ABLATION_KERNELS
    switch (c.schedule) {
      case HopperSchedule::serial:
        return launch_fwd_hopper_bf16_d128_serial(p, ctas, stream);
      case HopperSchedule::overlap:
        return launch_fwd_hopper_bf16_d128_overlap(p, ctas, stream);
      case HopperSchedule::pingpong:
        return launch_fwd_hopper_bf16_d128_pingpong(p, ctas, stream);
      default:
        break;
    }
#endif
    throw Error("choice.schedule", "a Hopper schedule that is built", schedule_name(c.schedule));
  }
  if (head_dim == 128) {
    (bf16 ? launch_fwd_hopper_bf16_d128 : launch_fwd_hopper_f16_d128)(p, ctas, stream);
  } else {
    (bf16 ? launch_fwd_hopper_bf16_d64 : launch_fwd_hopper_f16_d64)(p, ctas, stream);
  }
#else
  (void)p, (void)ctas, (void)stream, (void)bf16;
#endif
}

}  // namespace

void launch_fwd(const FwdParams& params, const KernelChoice& choice, DType dtype, int head_dim,
                int block_size, int arch, cudaStream_t stream) {
  require(choice.direction == Direction::forward, "choice.direction",
          "forward (no backward kernel is built yet)", direction_name(choice.direction));
  if (choice.family == Family::hopper) {
    launch_hopper_kernel(params, choice, dtype, head_dim, block_size, arch, stream);
  } else {
    launch_portable_kernel(params, choice, dtype, head_dim, block_size, stream);
  }
}

}  // namespace radial::cuda_detail
