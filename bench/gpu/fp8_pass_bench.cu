// The FP8 forward's quantisation pass alone (src/cuda/hopper/fp8_quantize.cu), timed on one
// shape with the library's settings (the key bias in V, V^T with its extra rows), and its memory
// traffic as an effective bandwidth: round 13's pass read Q, K and V for the statistics, the
// quantisation reads them again and writes the e4m3 operands (the rate counts those bytes).
// Built by bench/gpu/fp8_pass_bench.sh against any version of fp8_quantize.cu, so that two
// versions can be timed in one device run.
//   fp8_pass_bench [seq heads head_dim [iterations]]   (default: Wan2.1-14B, 69 frames)
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "cuda/check.hpp"
#include "cuda/hopper/fp8_quantize.hpp"
#include "cuda/hopper/fwd_fp8_layout.hpp"

namespace {

using radial::cuda_detail::FwdParams;
namespace hopper = radial::cuda_detail::hopper;

// Gaussian-like bf16 values with per-channel means, from a hash of the index (no host copy).
__global__ void fill(__nv_bfloat16* x, int64_t n, int d, uint32_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 15, h *= 2246822519u, h ^= h >> 13;
    const float u = (h & 0xffffff) * (1.f / 16777216.f) - 0.5f;
    const float mean = static_cast<float>(static_cast<int>(i % d) % 7 - 3);
    x[i] = __float2bfloat16(mean + 3.4f * u);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int seq = argc > 1 ? std::atoi(argv[1]) : 69120;
  const int heads = argc > 2 ? std::atoi(argv[2]) : 40;
  const int d = argc > 3 ? std::atoi(argv[3]) : 128;
  const int iters = argc > 4 ? std::atoi(argv[4]) : 20;
  if (seq <= 0 || heads <= 0 || (d != 64 && d != 128) || iters <= 0) {
    std::fprintf(stderr, "usage: fp8_pass_bench [seq > 0] [heads > 0] [head_dim 64|128] [iters]\n");
    return 2;
  }
  const int64_t n = int64_t(seq) * heads * d;  // bshd, batch 1
  __nv_bfloat16 *q, *k, *v;
  RADIAL_CUDA_CHECK(cudaMalloc(&q, n * 2));
  RADIAL_CUDA_CHECK(cudaMalloc(&k, n * 2));
  RADIAL_CUDA_CHECK(cudaMalloc(&v, n * 2));
  fill<<<1024, 256>>>(q, n, d, 1u);
  fill<<<1024, 256>>>(k, n, d, 2u);
  fill<<<1024, 256>>>(v, n, d, 3u);
  FwdParams p;
  p.q = q, p.k = k, p.v = v;
  p.q_sb = p.k_sb = p.v_sb = int64_t(seq) * heads * d;
  p.q_ss = p.k_ss = p.v_ss = int64_t(heads) * d;
  p.q_sh = p.k_sh = p.v_sh = d;
  p.heads = heads, p.seq = seq, p.key_limit = seq, p.batch_heads = heads;
  p.block_rows = (seq + 127) / 128;
  p.scale = 1.f / std::sqrt(float(d)), p.scale_log2 = p.scale * 1.4426950408889634f;
  const int vt_rows = d + 8;
  void* work;
  RADIAL_CUDA_CHECK(cudaMalloc(&work, hopper::fp8_workspace_bytes(p, d, vt_rows)));
  hopper::Fp8Workspace w = hopper::fp8_workspace(work, p, d, vt_rows);
  w.bias_in_v = true;
  cudaEvent_t start, stop;
  RADIAL_CUDA_CHECK(cudaEventCreate(&start));
  RADIAL_CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<float> ms;
  for (int i = 0; i < iters + 3; ++i) {
    RADIAL_CUDA_CHECK(cudaEventRecord(start));
    hopper::quantize_fp8(p, radial::DType::bf16, d, w, nullptr);
    RADIAL_CUDA_CHECK(cudaEventRecord(stop));
    RADIAL_CUDA_CHECK(cudaEventSynchronize(stop));
    float t = 0.f;
    RADIAL_CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
    if (i >= 3) ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  const double padded = double(p.block_rows) * 128 * heads;
  // Round 13's traffic, whichever version runs, so that the rates of two versions compare as
  // their times: two reads of Q, K and V (bf16), Q, K and V^T written in e4m3 (V^T with its extra
  // rows). Since the means' sample the statistics pass reads only an eighth of Q and K, so the
  // newer pass's rate can pass the DRAM peak.
  const double bytes = 2.0 * 3 * n * 2 + padded * (2.0 * d + vt_rows);
  cudaDeviceProp prop{};
  RADIAL_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("%s seq %d heads %d d %d: median %.3f ms (min %.3f) over %d, %.0f GB/s effective\n",
              prop.name, seq, heads, d, median, ms.front(), iters, bytes / median / 1e6);
  return 0;
}
