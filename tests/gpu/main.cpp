// Says up front whether the GPU tests can run here, so a CI log without a GPU shows plainly
// that they were skipped and why.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <iostream>

#include "gpu_harness.hpp"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const std::string& reason = radial::gpu_test::gpu_unavailable_reason();
  if (reason.empty()) {
    cudaDeviceProp prop{};
    cudaGetDeviceProperties(&prop, 0);
    std::cout << "radial_gpu_tests: running on " << prop.name << " (sm_" << prop.major
              << prop.minor << ", " << prop.multiProcessorCount << " SMs)\n";
  } else {
    std::cout << "radial_gpu_tests: GPU TESTS SKIPPED: " << reason << "\n";
  }
  return RUN_ALL_TESTS();
}
