// Picks the compiled backward instantiation for a dtype and head dim (each lives in its own .cu
// file), and sizes the per-call workspace.
#include <algorithm>
#include <type_traits>

#include "cuda/bwd_kernel.cuh"

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

void launch_bwd(const BwdParams& params, DType dtype, int head_dim, int block_size,
                bool deterministic, cudaStream_t stream) {
  const bool bf16 = dtype == DType::bf16;
  if (head_dim == 64) {
    (bf16 ? launch_bwd_bf16_d64 : launch_bwd_f16_d64)(params, block_size, deterministic, stream);
  } else {
    (bf16 ? launch_bwd_bf16_d128 : launch_bwd_f16_d128)(params, block_size, deterministic,
                                                         stream);
  }
}

}  // namespace radial::cuda_detail
