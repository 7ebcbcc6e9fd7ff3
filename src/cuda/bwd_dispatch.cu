// Picks the backward's main kernel (Hopper or portable) and the compiled instantiation for a
// dtype and head dim (each lives in its own .cu file), and sizes the per-call workspace.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "cuda/bwd_kernel.cuh"
#include "cuda/fwd_params.hpp"  // hopper_covers
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

std::atomic<BwdKernel> forced_kernel{BwdKernel::automatic};

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

}  // namespace

void set_bwd_kernel(BwdKernel kernel) { forced_kernel.store(kernel); }

BwdKernel bwd_kernel_for(DType dtype, int head_dim, int block_size, bool deterministic,
                         int device) {
  // Read once, like the forward's (attention_cuda.cpp).
  static const bool portable_only = [] {
    const char* env = std::getenv("RADIAL_PORTABLE_KERNEL");
    return env != nullptr && env[0] != '\0' && env[0] != '0';
  }();
  const BwdKernel forced = forced_kernel.load();
  if (forced == BwdKernel::portable) return BwdKernel::portable;
  const bool covers = !deterministic && hopper_covers(dtype, head_dim, block_size, device);
  if (forced == BwdKernel::hopper) {
    require(covers, "kernel",
            "a call the Hopper backward covers (built with CuTe, compute capability 9.0, bf16 "
            "or f16, head dim 64 or 128, block 128, not deterministic)",
            std::string(dtype_name(dtype)) + ", head dim " + std::to_string(head_dim) +
                ", block " + std::to_string(block_size) +
                (deterministic ? ", deterministic" : ""));
    return BwdKernel::hopper;
  }
  return covers && kHopperBackwardByDefault && !portable_only ? BwdKernel::hopper
                                                              : BwdKernel::portable;
}

void launch_bwd(const BwdParams& params, DType dtype, int head_dim, int block_size,
                bool deterministic, cudaStream_t stream) {
  int device = 0;
  RADIAL_CUDA_CHECK(cudaGetDevice(&device));
  const BwdMainKernel main =
      bwd_kernel_for(dtype, head_dim, block_size, deterministic, device) == BwdKernel::hopper
          ? hopper_main(dtype, head_dim)
          : nullptr;
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
