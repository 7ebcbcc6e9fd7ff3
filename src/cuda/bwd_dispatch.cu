// The backward's dispatcher: a kernel choice (direction=backward; src/api/kernel_choice.hpp,
// picked by choose_kernel like the forward's) to its main kernel (Hopper or portable) and the
// compiled instantiation for a dtype and head dim (each in its own .cu file); and the per-call
// workspace's size.
#include <algorithm>
#include <string>
#include <type_traits>

#include "cuda/bwd_kernel.cuh"
#include "api/kernel_choice.hpp"
#include "radial/error.hpp"
#ifdef RADIAL_WITH_HOPPER
#include "cuda/hopper/bwd_hopper.hpp"
#endif

namespace radial::cuda_detail {

int64_t bwd_workspace_floats(int64_t batch_heads, int64_t seq_pad, int head_dim,
                             bool deterministic) {
  const int64_t rows = batch_heads * seq_pad;
  return 2 * rows + (deterministic ? 0 : rows * head_dim);
}

void bwd_set_workspace(BwdParams& p, float* workspace, int head_dim, bool deterministic) {
  const int64_t rows = p.batch_heads * p.seq_pad;
  p.lse2 = workspace;
  p.delta = workspace + rows;
  // rows is a multiple of 64, so the accumulator starts 16-byte aligned like the buffer.
  p.dq_accum = deterministic ? nullptr : workspace + 2 * rows;
  (void)head_dim;
}

int bwd_smem_bytes(int head_dim, int block_size, bool deterministic) {
  const auto pick = [&](auto d, auto b) {
    constexpr int D = decltype(d)::value, B = decltype(b)::value;
    return deterministic
               ? std::max(BwdKVConfig<D, B, false>::kSmemBytes, BwdQConfig<D, B>::kSmemBytes)
               : BwdKVConfig<D, B, true>::kSmemBytes;
  };
  using D64 = std::integral_constant<int, 64>;
  using D128 = std::integral_constant<int, 128>;
  if (head_dim == 64) return block_size == 64 ? pick(D64{}, D64{}) : pick(D64{}, D128{});
  return block_size == 64 ? pick(D128{}, D64{}) : pick(D128{}, D128{});
}

namespace {

// The main kernel's instantiation for the Hopper kernel, or nullptr for the portable one.
BwdMainKernel hopper_main(DType dtype, int head_dim) {
#ifdef RADIAL_WITH_HOPPER
  const bool bf16 = dtype == DType::bf16;
  if (head_dim == 64) return bf16 ? launch_bwd_hopper_bf16_d64 : launch_bwd_hopper_f16_d64;
  return bf16 ? launch_bwd_hopper_bf16_d128 : launch_bwd_hopper_f16_d128;
#else
  (void)dtype, (void)head_dim;
  return nullptr;
#endif
}

// A comparison variant's instantiation (bwd_hopper_variants_*.cu). The caller has checked that the
// build holds them, the dtype and the head dim.
BwdMainKernel hopper_variant_main(Variant variant, DType dtype, int head_dim) {
#if defined(RADIAL_WITH_HOPPER) && defined(RADIAL_ABLATION_KERNELS)
  const bool bf16 = dtype == DType::bf16;
  const auto variants = head_dim == 64
                            ? (bf16 ? bwd_hopper_variant_bf16_d64 : bwd_hopper_variant_f16_d64)
                            : (bf16 ? bwd_hopper_variant_bf16_d128 : bwd_hopper_variant_f16_d128);
  if (const BwdMainKernel main = variants(variant)) return main;
#else
  (void)dtype, (void)head_dim;  // (launch_bwd has refused the variants in this build)
#endif
  throw Error("choice.variant",
              "standard, bwd_rs_dv, bwd_ss, bwd_early_dk, bwd_consumer_loads, bwd_consumer_dq, "
              "bwd_sts_ds, bwd_lds64, bwd_dq_boxes or bwd_mask_select for the backward",
              variant_name(variant));
}

std::string arch_text(int arch) {
  return arch < 0 ? std::string("unknown")
                  : std::to_string(arch / 10) + "." + std::to_string(arch % 10);
}

}  // namespace

void launch_bwd(const BwdParams& params, const KernelChoice& choice, DType dtype, int head_dim,
                int block_size, int arch, cudaStream_t stream) {
  require(choice.direction == Direction::backward, "choice.direction",
          "backward (forward choices go to launch_fwd)", direction_name(choice.direction));
  // The portable kernel's tiles, prefetch and row orders are forward fields: its backward has
  // one shape, walking the plan's columns heaviest first.
  require(choice.tile == PortableTile::standard && !choice.l2_prefetch, "choice.tile",
          "the standard tile without prefetch for the backward", tile_name(choice.tile));
  // The comparison variants (KernelChoice::variant) are the Hopper backward's bwd_ ones.
  const bool variant = choice.variant != Variant::standard;
  require(!variant || (choice.family == Family::hopper && bwd_variant(choice.variant)),
          "choice.variant",
          "standard, or a bwd_ variant of family=hopper, for the backward",
          std::string(variant_name(choice.variant)) + " with family=" +
              family_name(choice.family));
  BwdMainKernel main = nullptr;
  if (choice.family == Family::hopper) {
    if (variant) {
      require(hopper_kernel_built() && ablation_kernels_built(), "choice.variant",
              "standard in this build (the bwd_ variants need the Hopper kernel and "
              "RADIAL_ABLATION_KERNELS)",
              variant_name(choice.variant));
      // What the variants cover, named as theirs (the same calls as the library's kernel).
      require((dtype == DType::bf16 || dtype == DType::f16) &&
                  (head_dim == 64 || head_dim == 128) && block_size == 128,
              "choice.variant",
              "standard for this call (the bwd_ variants take bf16 or f16, head dim 64 or "
              "128, block size 128)",
              std::string(variant_name(choice.variant)) + " with " + dtype_name(dtype) +
                  ", head dim " + std::to_string(head_dim) + ", block size " +
                  std::to_string(block_size));
    }
    require(hopper_kernel_built(), "choice.family",
            "a family built in (the Hopper kernel needs CuTe at build time: pip install "
            "nvidia-cutlass==4.2.0.0, RADIAL_HOPPER=AUTO or ON)",
            "hopper");
    require(arch == 90, "device", "compute capability 9.0 for the Hopper kernel",
            arch_text(arch));
    require(dtype == DType::bf16 || dtype == DType::f16, "q.dtype",
            "bf16 or f16 for the Hopper kernel", dtype_name(dtype));
    require(head_dim == 64 || head_dim == 128, "q.dim", "64 or 128 for the Hopper kernel",
            head_dim);
    require(block_size == 128, "plan.block_size", "128 for the Hopper kernel", block_size);
    require(!choice.deterministic, "choice.deterministic",
            "off for the Hopper backward (it adds dQ by atomics; family=portable has the "
            "deterministic pass)",
            "on");
    main = variant ? hopper_variant_main(choice.variant, dtype, head_dim)
                   : hopper_main(dtype, head_dim);
  }
  const bool deterministic = choice.deterministic;
  const bool bf16 = dtype == DType::bf16;
  if (head_dim == 64) {
    (bf16 ? launch_bwd_bf16_d64 : launch_bwd_f16_d64)(params, block_size, deterministic, main,
                                                       stream);
  } else {
    (bf16 ? launch_bwd_bf16_d128 : launch_bwd_f16_d128)(params, block_size, deterministic, main,
                                                         stream);
  }
}

}  // namespace radial::cuda_detail
