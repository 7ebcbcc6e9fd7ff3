// The GPU side of `radial bench`: device buffers through the CUDA runtime and the CUDA backend,
// timed with CUDA events. Without RADIAL_WITH_CUDA the runner is simply absent.
#include "bench_runner.hpp"
#include "radial/error.hpp"

#ifdef RADIAL_WITH_CUDA
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "radial/attention.hpp"
#include "radial/cuda.hpp"
#endif

namespace radial_cli {

#ifdef RADIAL_WITH_CUDA

namespace {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    throw std::runtime_error(std::string("cuda: ") + what + ": " + cudaGetErrorString(status));
}

// One device allocation, freed with its owner.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) { check(cudaMalloc(&ptr_, bytes), "cudaMalloc"); }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

class CudaRunner final : public AttentionRunner {
 public:
  CudaRunner(const BenchShape& shape, const Bytes& q, const Bytes& k, const Bytes& v,
             radial::Precision precision)
      : shape_(shape), q_(shape.bytes()), k_(shape.bytes()), v_(shape.bytes()),
        out_{DeviceBuffer(shape.bytes()), DeviceBuffer(shape.bytes())},
        lse_{DeviceBuffer(shape.lse_elements() * 4), DeviceBuffer(shape.lse_elements() * 4)} {
    check(cudaMemcpy(q_.get(), q.data(), q.size(), cudaMemcpyHostToDevice), "copy q");
    check(cudaMemcpy(k_.get(), k.data(), k.size(), cudaMemcpyHostToDevice), "copy k");
    check(cudaMemcpy(v_.get(), v.data(), v.size(), cudaMemcpyHostToDevice), "copy v");
    check(cudaGetDevice(&device_), "cudaGetDevice");
    check(cudaEventCreate(&start_), "cudaEventCreate");
    check(cudaEventCreate(&stop_), "cudaEventCreate");
    options_.backend = radial::Backend::cuda;
    options_.precision = precision;
  }
  ~CudaRunner() override {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }

  std::string device() const override {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, device_) != cudaSuccess) return "cuda";
    return std::string("cuda:") + std::to_string(device_) + " (" + prop.name + ")";
  }

  double run(const radial::Plan& plan, int slot) override {
    // 0xFF bytes are NaN in f32, bf16 and fp16 alike: anything the kernel leaves unwritten shows.
    check(cudaMemset(out_[slot].get(), 0xFF, out_[slot].bytes()), "poison out");
    check(cudaMemset(lse_[slot].get(), 0xFF, lse_[slot].bytes()), "poison lse");
    check(cudaEventRecord(start_, nullptr), "cudaEventRecord");
    radial::attention(plan, view(q_.get()), view(k_.get()), view(v_.get()), view(out_[slot].get()),
                      static_cast<float*>(lse_[slot].get()), options_);
    check(cudaEventRecord(stop_, nullptr), "cudaEventRecord");
    check(cudaEventSynchronize(stop_), "attention");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start_, stop_), "cudaEventElapsedTime");
    return ms * 1e-3;
  }

  Bytes output(int slot) override {
    Bytes host(out_[slot].bytes());
    check(cudaMemcpy(host.data(), out_[slot].get(), host.size(), cudaMemcpyDeviceToHost), "copy out");
    return host;
  }
  std::vector<float> lse(int slot) override {
    std::vector<float> host(shape_.lse_elements());
    check(cudaMemcpy(host.data(), lse_[slot].get(), host.size() * 4, cudaMemcpyDeviceToHost),
          "copy lse");
    return host;
  }

 private:
  radial::TensorView view(void* data) const {
    auto t = radial::TensorView::bshd(data, shape_.dtype, shape_.batch, shape_.seq, shape_.heads,
                                      shape_.dim, radial::Device::cuda);
    t.device_index = device_;
    return t;
  }

  BenchShape shape_;
  DeviceBuffer q_, k_, v_, out_[2], lse_[2];
  int device_ = 0;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
  radial::AttentionOptions options_;
};

}  // namespace

bool cuda_runner_available() { return radial::cuda_available(); }

std::unique_ptr<AttentionRunner> make_cuda_runner(const BenchShape& shape, const Bytes& q,
                                                  const Bytes& k, const Bytes& v,
                                                  radial::Precision precision) {
  radial::require(cuda_runner_available(), "--backend", "a visible CUDA device for cuda",
                  "none");
  return std::make_unique<CudaRunner>(shape, q, k, v, precision);
}

#else

bool cuda_runner_available() { return false; }

std::unique_ptr<AttentionRunner> make_cuda_runner(const BenchShape&, const Bytes&, const Bytes&,
                                                  const Bytes&, radial::Precision) {
  throw radial::Error("--backend", "auto or cpu (this build has no CUDA backend)", "cuda");
}

#endif

}  // namespace radial_cli
