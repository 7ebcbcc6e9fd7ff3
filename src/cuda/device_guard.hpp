// Makes a device current for a scope and gives the caller's back at its end (also when the
// scope throws): the library's entry points run on the tensors' device whatever the caller's
// current one is.
#pragma once

#include <cuda_runtime_api.h>

#include "cuda/check.hpp"

namespace radial::cuda_detail {

class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    RADIAL_CUDA_CHECK(cudaGetDevice(&previous_));
    changed_ = previous_ != device;
    if (changed_) RADIAL_CUDA_CHECK(cudaSetDevice(device));
  }
  ~DeviceGuard() {
    if (changed_) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
  bool changed_ = false;
};

}  // namespace radial::cuda_detail
