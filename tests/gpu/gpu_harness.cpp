#include "gpu_harness.hpp"

#include <iostream>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "../../src/cuda/backend.hpp"
#include "radial/cuda.hpp"

namespace radial::gpu_test {

const std::string& gpu_unavailable_reason() {
  static const std::string reason = [] {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    cudaGetLastError();
    if (status != cudaSuccess) {
      return std::string("no usable CUDA device (cudaGetDeviceCount: ") +
             cudaGetErrorName(status) + ")";
    }
    if (count == 0) return std::string("no CUDA device visible");
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess && prop.major < 8) {
      return "device 0 is sm_" + std::to_string(prop.major * 10 + prop.minor) +
             "; the kernels need sm_80 or newer";
    }
    return std::string();
  }();
  return reason;
}

DeviceBuffer::DeviceBuffer(size_t bytes) : bytes_(bytes) {
  if (gpu_unavailable_reason().empty() && bytes > 0) {
    if (cudaMalloc(&ptr_, bytes) != cudaSuccess) {
      ptr_ = nullptr;
      ADD_FAILURE() << "cudaMalloc of " << bytes << " bytes failed";
    }
  }
}

DeviceBuffer::~DeviceBuffer() {
  if (ptr_) cudaFree(ptr_);
}

const char* layout_name(Layout layout) {
  switch (layout) {
    case Layout::bshd: return "bshd";
    case Layout::bhsd: return "bhsd";
    case Layout::packed: return "packed";
    case Layout::padded: return "padded";
  }
  return "?";
}

namespace {

struct Strides {
  int64_t b, s, h, elements;
};

Strides layout_strides(Layout layout, int64_t B, int64_t S, int64_t H, int64_t D) {
  Strides st{};
  switch (layout) {
    case Layout::bshd: st = {S * H * D, H * D, D, 0}; break;
    case Layout::bhsd: st = {H * S * D, D, S * D, 0}; break;
    case Layout::packed: st = {S * 3 * H * D, 3 * H * D, D, 0}; break;
    case Layout::padded: {
      const int64_t row = D + 8, head = S * row + 16;
      st = {H * head + 32, row, head, 0};
      break;
    }
  }
  st.elements = (B - 1) * st.b + (S - 1) * st.s + (H - 1) * st.h + D;
  if (layout == Layout::padded || layout == Layout::packed) st.elements += 64;  // trailing gap
  return st;
}

constexpr uint16_t kNaNBits = 0xffff;  // NaN in both bf16 and fp16

uint16_t encode(DType dtype, float x) {
  return dtype == DType::bf16 ? from_float<bf16_t>(x).bits : from_float<f16_t>(x).bits;
}

float decode(DType dtype, uint16_t bits) {
  return dtype == DType::bf16 ? to_float(bf16_t{bits}) : to_float(f16_t{bits});
}

}  // namespace

TestTensor::TestTensor(DType dt, Layout layout, int64_t b, int64_t s, int64_t h, int64_t d)
    : dtype(dt),
      batch(b),
      seq(s),
      heads(h),
      dim(d),
      device(static_cast<size_t>(layout_strides(layout, b, s, h, d).elements) * 2) {
  const Strides st = layout_strides(layout, b, s, h, d);
  stride_batch = st.b, stride_seq = st.s, stride_head = st.h;
  host.assign(static_cast<size_t>(st.elements), kNaNBits);
}

void TestTensor::randomize(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::fill(host.begin(), host.end(), kNaNBits);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t s = 0; s < seq; ++s)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t d = 0; d < dim; ++d) host[index(b, s, h, d)] = encode(dtype, normal(rng));
  ASSERT_EQ(cudaMemcpy(device.get(), host.data(), host.size() * 2, cudaMemcpyHostToDevice),
            cudaSuccess);
}

void TestTensor::poison() {
  std::fill(host.begin(), host.end(), kNaNBits);
  ASSERT_EQ(cudaMemset(device.get(), 0xff, host.size() * 2), cudaSuccess);
}

void TestTensor::download() {
  ASSERT_EQ(cudaMemcpy(host.data(), device.get(), host.size() * 2, cudaMemcpyDeviceToHost),
            cudaSuccess);
}

TensorView TestTensor::host_view() {
  TensorView v = TensorView::bshd(host.data(), dtype, batch, seq, heads, dim);
  v.stride_batch = stride_batch, v.stride_seq = stride_seq, v.stride_head = stride_head;
  return v;
}

TensorView TestTensor::device_view() const {
  TensorView v = TensorView::bshd(device.get(), dtype, batch, seq, heads, dim, Device::cuda);
  v.stride_batch = stride_batch, v.stride_seq = stride_seq, v.stride_head = stride_head;
  int current = 0;
  cudaGetDevice(&current);
  v.device_index = current;
  return v;
}

float TestTensor::at(int64_t b, int64_t s, int64_t h, int64_t d) const {
  return decode(dtype, host[index(b, s, h, d)]);
}

int64_t TestTensor::touched_gaps() const {
  std::vector<char> covered(host.size(), 0);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t s = 0; s < seq; ++s)
      for (int64_t h = 0; h < heads; ++h)
        std::fill_n(covered.begin() + index(b, s, h, 0), dim, 1);
  int64_t touched = 0;
  for (size_t i = 0; i < host.size(); ++i) touched += !covered[i] && host[i] != kNaNBits;
  return touched;
}

double out_tolerance(DType dtype) { return dtype == DType::bf16 ? 5e-3 : 1e-3; }

std::string choice_not_built(const std::string& text) {
  const KernelChoice c = parse_choice(text);
  const bool ablation = c.family == Family::portable
                            ? c.tile != PortableTile::standard || c.l2_prefetch
                            : c.schedule != kDefaultHopperSchedule ||
                                  c.variant != Variant::standard;
  if (ablation && !ablation_kernels_built()) {
    return "\"" + text + "\" is built for comparison only (RADIAL_ABLATION_KERNELS=ON)";
  }
  if (c.family == Family::hopper && !hopper_kernel_built()) {
    return "built without the Hopper kernel (no CuTe)";
  }
  return "";
}

CaseResult run_case(const Plan& plan, const CaseSpec& spec, const std::string& choice_text) {
  CaseResult result;
  result.seed = std::random_device{}();
  const int64_t S = plan.seq_len;
  TestTensor q(spec.dtype, spec.layout, spec.batch, S, spec.heads, spec.dim);
  TestTensor k(spec.dtype, spec.layout, spec.batch, S, spec.heads, spec.dim);
  TestTensor v(spec.dtype, spec.layout, spec.batch, S, spec.heads, spec.dim);
  // The output gets the padded layout whenever the inputs are not plain, so that stores
  // through unusual strides are checked too.
  const Layout out_layout = spec.layout == Layout::bshd ? Layout::bshd : Layout::padded;
  TestTensor out(spec.dtype, out_layout, spec.batch, S, spec.heads, spec.dim);
  q.randomize(result.seed);
  k.randomize(result.seed + 1);
  v.randomize(result.seed + 2);
  out.poison();
  const size_t n_lse = static_cast<size_t>(spec.batch * spec.heads * S);
  DeviceBuffer lse_device(n_lse * sizeof(float));
  std::vector<float> lse(n_lse, std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(cudaMemset(lse_device.get(), 0xff, n_lse * sizeof(float)), cudaSuccess);

  AttentionOptions options;
  options.scale = spec.scale;
  float* lse_ptr = spec.want_lse ? static_cast<float*>(lse_device.get()) : nullptr;
  KernelChoice choice = parse_choice(choice_text);
  choice.max_ctas = spec.max_ctas;
  cuda_detail::attention_cuda_with(plan, q.device_view(), k.device_view(), v.device_view(),
                                   out.device_view(), lse_ptr, options, choice);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  out.download();
  EXPECT_EQ(cudaMemcpy(lse.data(), lse_device.get(), n_lse * sizeof(float),
                       cudaMemcpyDeviceToHost),
            cudaSuccess);

  const ReferenceResult ref =
      attention_reference(plan, q.host_view(), k.host_view(), v.host_view(), spec.scale);
  double err2 = 0, ref2 = 0;
  for (int64_t b = 0; b < spec.batch; ++b)
    for (int64_t s = 0; s < S; ++s)
      for (int64_t h = 0; h < spec.heads; ++h)
        for (int64_t d = 0; d < spec.dim; ++d) {
          const double o = out.at(b, s, h, d), r = ref.at(b, s, h, d);
          if (!std::isfinite(o)) {
            ++result.non_finite_out;
            continue;
          }
          err2 += (o - r) * (o - r);
          ref2 += r * r;
        }
  result.out_rel_error = std::sqrt(err2 / ref2);
  result.touched_gaps = out.touched_gaps();
  if (spec.want_lse) {
    for (int64_t b = 0; b < spec.batch; ++b)
      for (int64_t h = 0; h < spec.heads; ++h)
        for (int64_t s = 0; s < S; ++s) {
          const float l = lse[static_cast<size_t>((b * spec.heads + h) * S + s)];
          if (!std::isfinite(l)) {
            ++result.bad_lse;
            continue;
          }
          result.lse_max_error =
              std::max(result.lse_max_error, std::abs(l - ref.lse_at(b, h, s)));
        }
  } else {
    // Without an lse pointer nothing may be written there.
    for (float l : lse) result.bad_lse += !std::isnan(l) ? 1 : 0;
  }
  return result;
}

Geometry geo(int64_t frames, int64_t tokens, int64_t text, int64_t valid) {
  Geometry g;
  g.frames = frames, g.tokens_per_frame = tokens, g.text_tokens = text, g.text_valid = valid;
  return g;
}

PlanSpec spec(Model model, double decay, int block) {
  PlanSpec s;
  s.model = model, s.decay_factor = decay, s.block_size = block;
  return s;
}

CaseSpec run(DType dtype, int64_t batch, int64_t heads, int64_t dim, Layout layout,
             double scale, bool lse) {
  CaseSpec c;
  c.dtype = dtype, c.batch = batch, c.heads = heads, c.dim = dim, c.layout = layout;
  c.scale = scale, c.want_lse = lse;
  return c;
}

void expect_matches_reference(const KernelCase& c, const std::string& label) {
  const std::string why = choice_not_built(c.choice);
  if (!why.empty()) GTEST_SKIP() << "skipped: " << why;
  const Plan plan =
      c.dense ? make_dense_plan(c.geometry, c.spec.block_size, c.spec.model)
              : make_plan(c.geometry, c.spec);
  const CaseResult r = run_case(plan, c.run, c.choice);
  SCOPED_TRACE("seed " + std::to_string(r.seed) + ", seq " + std::to_string(plan.seq_len) +
               ", key_limit " + std::to_string(plan.key_limit));
  EXPECT_EQ(r.non_finite_out, 0) << "outputs left unwritten (NaN) or not finite";
  EXPECT_EQ(r.touched_gaps, 0) << "elements outside the output view were written";
  EXPECT_EQ(r.bad_lse, 0) << "lse entries unwritten, not finite, or written when not asked";
  EXPECT_LT(r.out_rel_error, out_tolerance(c.run.dtype));
  EXPECT_LE(r.lse_max_error, kLseTolerance);
  std::cout << "  " << label << c.name << ": rel. error " << r.out_rel_error
            << ", lse max error " << r.lse_max_error << "\n";
}

}  // namespace radial::gpu_test
