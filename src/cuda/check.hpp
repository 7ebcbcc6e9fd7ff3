// CUDA runtime failures become exceptions that name the call, so a failed launch or copy is
// never silently ignored. Bad input is reported earlier, as radial::Error (argument checks).
#pragma once

#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace radial::cuda_detail {

class CudaError : public std::runtime_error {
 public:
  CudaError(const char* call, cudaError_t code)
      : std::runtime_error(std::string("radial: CUDA call ") + call + " failed: " +
                           cudaGetErrorName(code) + " (" + cudaGetErrorString(code) + ")"),
        code_(code) {}
  cudaError_t code() const noexcept { return code_; }

 private:
  cudaError_t code_;
};

inline void check_cuda(cudaError_t code, const char* call) {
  if (code != cudaSuccess) {
    cudaGetLastError();  // a non-sticky error must not resurface at the next unrelated check
    throw CudaError(call, code);
  }
}

}  // namespace radial::cuda_detail

// RADIAL_CUDA_CHECK(cudaMalloc(&p, n)) throws CudaError("cudaMalloc(&p, n)", code) on failure.
#define RADIAL_CUDA_CHECK(call) ::radial::cuda_detail::check_cuda((call), #call)
