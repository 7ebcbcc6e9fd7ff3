// The CPU side of `radial bench`: host buffers, radial::attention on the CPU backend, and the
// random inputs and conversions the command shares with the CUDA runner.
#include <chrono>
#include <cstring>
#include <utility>

#include "bench_runner.hpp"
#include "radial/attention.hpp"

namespace radial_cli {

Bytes random_tensor(const BenchShape& shape, std::mt19937_64& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const size_t n = shape.elements();
  Bytes out(shape.bytes());
  for (size_t i = 0; i < n; ++i) {
    const float x = normal(rng);
    switch (shape.dtype) {
      case radial::DType::f32: std::memcpy(&out[i * 4], &x, 4); break;
      case radial::DType::bf16: {
        const auto h = radial::from_float<radial::bf16_t>(x);
        std::memcpy(&out[i * 2], &h, 2);
        break;
      }
      case radial::DType::f16: {
        const auto h = radial::from_float<radial::f16_t>(x);
        std::memcpy(&out[i * 2], &h, 2);
        break;
      }
    }
  }
  return out;
}

std::vector<double> to_doubles(const Bytes& data, radial::DType dtype) {
  const size_t size = static_cast<size_t>(radial::dtype_size(dtype));
  std::vector<double> out(data.size() / size);
  for (size_t i = 0; i < out.size(); ++i) {
    switch (dtype) {
      case radial::DType::f32: {
        float x;
        std::memcpy(&x, &data[i * 4], 4);
        out[i] = x;
        break;
      }
      case radial::DType::bf16: {
        radial::bf16_t h;
        std::memcpy(&h, &data[i * 2], 2);
        out[i] = radial::to_float(h);
        break;
      }
      case radial::DType::f16: {
        radial::f16_t h;
        std::memcpy(&h, &data[i * 2], 2);
        out[i] = radial::to_float(h);
        break;
      }
    }
  }
  return out;
}

namespace {

class CpuRunner final : public AttentionRunner {
 public:
  CpuRunner(const BenchShape& shape, Bytes q, Bytes k, Bytes v, int threads)
      : shape_(shape), q_(std::move(q)), k_(std::move(k)), v_(std::move(v)) {
    options_.backend = radial::Backend::cpu;
    options_.threads = threads;
    for (int s = 0; s < 2; ++s) {
      out_[s].resize(shape.bytes());
      lse_[s].resize(shape.lse_elements());
    }
  }

  std::string device() const override { return "cpu"; }

  double run(const radial::Plan& plan, int slot) override {
    // 0xFF bytes are NaN in f32, bf16 and fp16 alike: anything the kernel leaves unwritten shows.
    std::memset(out_[slot].data(), 0xFF, out_[slot].size());
    std::memset(lse_[slot].data(), 0xFF, lse_[slot].size() * sizeof(float));
    const auto start = std::chrono::steady_clock::now();
    radial::attention(plan, view(q_.data()), view(k_.data()), view(v_.data()),
                      view(out_[slot].data()), lse_[slot].data(), options_);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  Bytes output(int slot) override { return out_[slot]; }
  std::vector<float> lse(int slot) override { return lse_[slot]; }

 private:
  radial::TensorView view(void* data) const {
    return radial::TensorView::bshd(data, shape_.dtype, shape_.batch, shape_.seq, shape_.heads,
                                    shape_.dim);
  }

  BenchShape shape_;
  Bytes q_, k_, v_, out_[2];
  std::vector<float> lse_[2];
  radial::AttentionOptions options_;
};

}  // namespace

std::unique_ptr<AttentionRunner> make_cpu_runner(const BenchShape& shape, Bytes q, Bytes k,
                                                 Bytes v, int threads) {
  return std::make_unique<CpuRunner>(shape, std::move(q), std::move(k), std::move(v), threads);
}

}  // namespace radial_cli
