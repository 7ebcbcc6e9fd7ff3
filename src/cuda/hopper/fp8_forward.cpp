// The FP8 forward on the host (fwd_hopper.hpp): workspace, quantisation pass, kernel.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>

#include "cuda/check.hpp"
#include "cuda/hopper/fp8_quantize.hpp"
#include "cuda/hopper/fwd_hopper.hpp"
#include "radial/error.hpp"

namespace radial::cuda_detail {
namespace {

// One memory pool per device that keeps what it got (release threshold: never), so that the
// workspace of every call after the first comes without a cudaMalloc; stream-ordered, so calls
// on different streams never share a buffer.
cudaMemPool_t workspace_pool(int device) {
  static std::mutex mutex;
  static std::map<int, cudaMemPool_t> pools;
  std::lock_guard<std::mutex> lock(mutex);
  auto found = pools.find(device);
  if (found != pools.end()) return found->second;
  cudaMemPoolProps props{};
  props.allocType = cudaMemAllocationTypePinned;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = device;
  cudaMemPool_t pool = nullptr;
  RADIAL_CUDA_CHECK(cudaMemPoolCreate(&pool, &props));
  uint64_t keep = UINT64_MAX;
  RADIAL_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
  pools[device] = pool;
  return pool;
}

// RADIAL_FP8_VARIANT (read at each call, so that a benchmark can switch it between calls): a
// comparison variant of the FP8 kernel, 0 for the library's.
int fp8_variant() {
  const char* env = std::getenv("RADIAL_FP8_VARIANT");
  return env != nullptr ? std::atoi(env) : 0;
}

void launch_kernel(const FwdParams& q, DType dtype, int head_dim, int ctas,
                   cudaStream_t stream) {
  const bool bf16 = dtype == DType::bf16;
  const int variant = fp8_variant();
  if (variant != 0) {
#ifdef RADIAL_ABLATION_KERNELS
    if (variant == 8) return;  // the quantisation pass alone, to time it (no output)
    require(bf16 && head_dim == 128 && variant >= 1 && variant <= 3, "RADIAL_FP8_VARIANT",
            "0, or 1..3 for bf16, head dim 128 (8: the quantisation pass only)", variant);
    switch (variant) {
      case 1: return launch_fwd_hopper_fp8_bf16_d128_v1(q, ctas, stream);
      case 2: return launch_fwd_hopper_fp8_bf16_d128_v2(q, ctas, stream);
      default: return launch_fwd_hopper_fp8_bf16_d128_v3(q, ctas, stream);
    }
#else
    throw Error("RADIAL_FP8_VARIANT", "0 (the variants are built with RADIAL_ABLATION_KERNELS)",
                std::to_string(variant));
#endif
  }
  if (head_dim == 128) {
    (bf16 ? launch_fwd_hopper_fp8_bf16_d128 : launch_fwd_hopper_fp8_f16_d128)(q, ctas, stream);
  } else {
    (bf16 ? launch_fwd_hopper_fp8_bf16_d64 : launch_fwd_hopper_fp8_f16_d64)(q, ctas, stream);
  }
}

}  // namespace

void run_fwd_fp8(const FwdParams& p, DType dtype, int head_dim, int ctas, cudaStream_t stream) {
  int device = 0;
  RADIAL_CUDA_CHECK(cudaGetDevice(&device));
  void* base = nullptr;
  RADIAL_CUDA_CHECK(cudaMallocFromPoolAsync(&base, hopper::fp8_workspace_bytes(p, head_dim),
                                            workspace_pool(device), stream));
  const hopper::Fp8Workspace w = hopper::fp8_workspace(base, p, head_dim);
  FwdParams q = p;
  q.fp8 = w.operands;
  try {
    hopper::quantize_fp8(p, dtype, head_dim, w, stream);
    launch_kernel(q, dtype, head_dim, ctas, stream);
  } catch (...) {
    cudaFreeAsync(base, stream);
    throw;
  }
  RADIAL_CUDA_CHECK(cudaFreeAsync(base, stream));
}

}  // namespace radial::cuda_detail
