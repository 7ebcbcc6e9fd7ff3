// A small C interface over the library for the Python scripts in bench/gpu and tests/gpu
// (loaded through ctypes): plans and their CSR, one attention call on device pointers (a chosen
// kernel variant, or the public dispatcher), and a timing loop with CUDA events. Internal to
// benchmarks and checks; bindings use the library's own C ABI.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "cuda/backend.hpp"
#include "radial/attention.hpp"
#include "radial/cuda.hpp"
#include "radial/geometry.hpp"
#include "radial/plan.hpp"

namespace {

thread_local std::string last_error;

template <class F>
int guarded(F&& f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    last_error = e.what();
    return 1;
  }
}

radial::TensorView view(const void* data, int dtype, const int64_t* shape,
                        const int64_t* strides) {
  radial::TensorView t;
  t.data = const_cast<void*>(data);
  t.dtype = static_cast<radial::DType>(dtype);
  t.device = radial::Device::cuda;
  cudaGetDevice(&t.device_index);
  t.batch = shape[0], t.seq = shape[1], t.heads = shape[2], t.dim = shape[3];
  t.stride_batch = strides[0], t.stride_seq = strides[1], t.stride_head = strides[2];
  return t;
}

struct Call {
  const radial::Plan* plan;
  radial::TensorView q, k, v, out;
  float* lse;
  radial::AttentionOptions options;
  int variant;
  void operator()() const {
    if (variant < 0) {
      radial::attention(*plan, q, k, v, out, lse, options);
    } else {
      radial::cuda_detail::attention_cuda_variant(
          *plan, q, k, v, out, lse, options, static_cast<radial::cuda_detail::FwdVariant>(variant));
    }
  }
};

Call make_call(void* plan, int dtype, const int64_t* shape, const void* q, const int64_t* qs,
               const void* k, const int64_t* ks, const void* v, const int64_t* vs, void* out,
               const int64_t* os, float* lse, double scale, int variant, void* stream) {
  Call c{static_cast<const radial::Plan*>(plan), view(q, dtype, shape, qs),
         view(k, dtype, shape, ks), view(v, dtype, shape, vs), view(out, dtype, shape, os), lse,
         {}, variant};
  c.options.scale = scale;
  c.options.stream = stream;
  return c;
}

}  // namespace

extern "C" {

const char* rb_last_error() { return last_error.c_str(); }

// Latent frames and tokens per frame of a model preset (model 0: wan, 1: hunyuan).
int rb_geometry(int model, int64_t video_frames, int64_t height, int64_t width, int64_t* frames,
                int64_t* tokens_per_frame) {
  return guarded([&] {
    const radial::Geometry g = radial::geometry_from_video(static_cast<radial::Model>(model),
                                                           video_frames, height, width);
    *frames = g.frames, *tokens_per_frame = g.tokens_per_frame;
  });
}

void* rb_plan(int model, int64_t frames, int64_t tokens_per_frame, int64_t text_tokens,
              int64_t text_valid, double decay, int block, int dense) {
  radial::Plan* plan = nullptr;
  const int status = guarded([&] {
    radial::Geometry g;
    g.frames = frames, g.tokens_per_frame = tokens_per_frame, g.text_tokens = text_tokens,
    g.text_valid = text_valid;
    radial::PlanSpec spec;
    spec.model = static_cast<radial::Model>(model);
    spec.decay_factor = decay;
    spec.block_size = block;
    plan = new radial::Plan(dense ? radial::make_dense_plan(g, block) : radial::make_plan(g, spec));
  });
  return status == 0 ? plan : nullptr;
}

void rb_plan_free(void* plan) { delete static_cast<radial::Plan*>(plan); }

// seq_len, key_limit, block_rows, kept_blocks, block_size
void rb_plan_info(void* plan, int64_t* info) {
  const auto& p = *static_cast<const radial::Plan*>(plan);
  info[0] = p.seq_len, info[1] = p.key_limit, info[2] = p.block_rows, info[3] = p.kept_blocks();
  info[4] = p.block_size();
}
const int32_t* rb_plan_row_offset(void* plan) {
  return static_cast<const radial::Plan*>(plan)->row_offset.data();
}
const int32_t* rb_plan_col_index(void* plan) {
  return static_cast<const radial::Plan*>(plan)->col_index.data();
}

// shape: batch, seq, heads, dim; strides: batch, seq, head (elements). dtype 1: bf16, 2: fp16.
// variant < 0: the public radial::attention; else cuda_detail::FwdVariant(variant).
int rb_attention(void* plan, int dtype, const int64_t* shape, const void* q, const int64_t* qs,
                 const void* k, const int64_t* ks, const void* v, const int64_t* vs, void* out,
                 const int64_t* os, float* lse, double scale, int variant, void* stream) {
  return guarded([&] {
    make_call(plan, dtype, shape, q, qs, k, ks, v, vs, out, os, lse, scale, variant, stream)();
  });
}

// Times `reps` calls (after `warmup`) with CUDA events on `stream`, each timed on its own;
// writes every time to times_ms and returns the median, or -1 on error.
float rb_time(void* plan, int dtype, const int64_t* shape, const void* q, const int64_t* qs,
              const void* k, const int64_t* ks, const void* v, const int64_t* vs, void* out,
              const int64_t* os, float* lse, double scale, int variant, void* stream, int warmup,
              int reps, float* times_ms) {
  float median = -1.f;
  guarded([&] {
    const Call call =
        make_call(plan, dtype, shape, q, qs, k, ks, v, vs, out, os, lse, scale, variant, stream);
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    for (int i = 0; i < warmup; ++i) call();
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    std::vector<float> times;
    for (int i = 0; i < reps; ++i) {
      cudaEventRecord(start, s);
      call();
      cudaEventRecord(stop, s);
      cudaEventSynchronize(stop);
      float ms = 0;
      cudaEventElapsedTime(&ms, start, stop);
      times.push_back(ms);
      times_ms[i] = ms;
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    const cudaError_t status = cudaGetLastError();
    if (status != cudaSuccess) throw std::runtime_error(cudaGetErrorString(status));
    std::sort(times.begin(), times.end());
    median = times[times.size() / 2];
  });
  return median;
}

}  // extern "C"
