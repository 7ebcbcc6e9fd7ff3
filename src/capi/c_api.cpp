// The C ABI over the C++ API: converts plain structs to the C++ types, and every exception to
// a status code plus a per-thread message, so nothing C++ crosses the boundary.
#include "radial/c_api.h"

#include <cmath>
#include <exception>
#include <new>
#include <string>

#include "radial/attention.hpp"
#include "radial/error.hpp"
#include "radial/model_preset.hpp"
#include "radial/plan.hpp"
#include "radial/tensor.hpp"
#include "api/kernel_choice.hpp"
#ifdef RADIAL_WITH_CUDA
#include "cuda/backend.hpp"
#include "radial/cuda.hpp"
#endif

struct radial_plan {
  radial::Plan plan;
};

namespace {

thread_local std::string last_error;
thread_local std::string last_argument;

radial_status fail(radial_status status, const std::string& message, const std::string& argument) {
  // Assigning may itself throw bad_alloc; keep a static text then rather than escape.
  try {
    last_error = message;
    last_argument = argument;
  } catch (...) {
    last_error.clear();
    last_argument.clear();
  }
  return status;
}

// Runs `body`, turning whatever it throws into a status.
template <class F>
radial_status guarded(F&& body) noexcept {
  try {
    body();
    return RADIAL_OK;
  } catch (const radial::Error& e) {
    return fail(RADIAL_ERROR_INVALID_ARGUMENT, e.what(), e.argument());
  } catch (const std::bad_alloc&) {
    return fail(RADIAL_ERROR_OUT_OF_MEMORY, "radial: out of memory", "");
  } catch (const std::exception& e) {
    return fail(RADIAL_ERROR_RUNTIME, e.what(), "");
  } catch (...) {
    return fail(RADIAL_ERROR_RUNTIME, "radial: unknown C++ exception", "");
  }
}

template <class T>
void require_pointer(const T* pointer, const char* argument) {
  radial::require(pointer != nullptr, argument, "a non-null pointer", "NULL");
}

// The C codes are the C++ enum's order, as the preset table is.
static_assert(RADIAL_MODEL_COUNT == static_cast<int>(radial::Model::skyreels_v2) + 1,
              "every radial::Model needs its RADIAL_MODEL_* code");

radial::Model to_model(int32_t model, const char* argument) {
  radial::require(model >= 0 && model < RADIAL_MODEL_COUNT, argument,
                  "a RADIAL_MODEL_* code 0.." + std::to_string(RADIAL_MODEL_COUNT - 1) + " (" +
                      radial::model_names() + ")",
                  model);
  return static_cast<radial::Model>(model);
}

radial::Geometry to_geometry(const radial_geometry* g) {
  require_pointer(g, "geometry");
  radial::Geometry geometry;
  geometry.frames = g->frames;
  geometry.tokens_per_frame = g->tokens_per_frame;
  geometry.text_tokens = g->text_tokens;
  geometry.text_valid = g->text_valid;
  return geometry;
}

radial::TensorView to_view(const radial_tensor* t, const char* argument) {
  require_pointer(t, argument);
  const std::string name(argument);
  radial::require(t->dtype >= RADIAL_DTYPE_F32 && t->dtype <= RADIAL_DTYPE_F16, name + ".dtype",
                  "float32 (0), bfloat16 (1) or float16 (2)", t->dtype);
  radial::require(t->device == RADIAL_DEVICE_CPU || t->device == RADIAL_DEVICE_CUDA,
                  name + ".device", "cpu (0) or cuda (1)", t->device);
  radial::TensorView view;
  view.data = t->data;
  view.dtype = static_cast<radial::DType>(t->dtype);
  view.device = t->device == RADIAL_DEVICE_CPU ? radial::Device::cpu : radial::Device::cuda;
  view.device_index = t->device_index;
  view.batch = t->batch, view.seq = t->seq, view.heads = t->heads, view.dim = t->dim;
  view.stride_batch = t->stride_batch, view.stride_seq = t->stride_seq,
  view.stride_head = t->stride_head;
  return view;
}

radial_plan* own(radial::Plan&& plan) { return new radial_plan{std::move(plan)}; }

}  // namespace

extern "C" {

int32_t radial_abi_version(void) { return RADIAL_ABI_VERSION; }

const char* radial_version(void) { return "0.1.0"; }

int32_t radial_built_with_cuda(void) {
#ifdef RADIAL_WITH_CUDA
  return 1;
#else
  return 0;
#endif
}

int32_t radial_cuda_available(void) {
#ifdef RADIAL_WITH_CUDA
  try {
    return radial::cuda_available() ? 1 : 0;
  } catch (...) {
    return 0;
  }
#else
  return 0;
#endif
}

const char* radial_last_error(void) { return last_error.c_str(); }
const char* radial_last_error_argument(void) { return last_argument.c_str(); }

radial_status radial_geometry_from_video(int32_t model, int64_t video_frames, int64_t height,
                                         int64_t width, int64_t text_tokens, int64_t text_valid,
                                         radial_geometry* out) {
  return guarded([&] {
    require_pointer(out, "out");
    const radial::Geometry g = radial::geometry_from_video(
        to_model(model, "model"), video_frames, height, width, text_tokens, text_valid);
    *out = radial_geometry{g.frames, g.tokens_per_frame, g.text_tokens, g.text_valid};
  });
}

radial_status radial_model_preset_get(int32_t model, radial_model_preset* out) {
  return guarded([&] {
    require_pointer(out, "out");
    const radial::ModelPreset& p = radial::model_preset(to_model(model, "model"));
    *out = radial_model_preset{p.name, p.description, p.temporal_compression,
                               p.spatial_compression, p.patch_size, p.attention_sink ? 1 : 0,
                               p.dense_layers, p.dense_timesteps, 0, p.decay_factor};
  });
}

radial_status radial_plan_create(const radial_geometry* geometry, const radial_plan_spec* spec,
                                 radial_plan** out) {
  return guarded([&] {
    require_pointer(out, "out");
    *out = nullptr;
    require_pointer(spec, "spec");
    radial::PlanSpec s;
    radial::require(spec->pattern == RADIAL_PATTERN_RADIAL || spec->pattern == RADIAL_PATTERN_DENSE,
                    "pattern", "RADIAL_PATTERN_RADIAL (0) or RADIAL_PATTERN_DENSE (1)",
                    spec->pattern);
    s.pattern = spec->pattern == RADIAL_PATTERN_RADIAL ? radial::Pattern::radial
                                                       : radial::Pattern::dense;
    s.model = to_model(spec->model, "model");
    s.decay_factor = spec->decay_factor;
    s.block_size = spec->block_size;
    s.decay_adjacent = spec->decay_adjacent != 0;
    *out = own(radial::make_plan(to_geometry(geometry), s));
  });
}

radial_status radial_plan_create_dense(const radial_geometry* geometry, int32_t block_size,
                                       radial_plan** out) {
  return guarded([&] {
    require_pointer(out, "out");
    *out = nullptr;
    *out = own(radial::make_dense_plan(to_geometry(geometry), block_size));
  });
}

void radial_plan_destroy(radial_plan* plan) { delete plan; }

radial_status radial_plan_get_info(const radial_plan* plan, radial_plan_info* out) {
  return guarded([&] {
    require_pointer(plan, "plan");
    require_pointer(out, "out");
    const radial::Plan& p = plan->plan;
    const radial::PlanStats stats = p.stats();
    radial_plan_info info{};
    info.seq_len = p.seq_len;
    info.key_limit = p.key_limit;
    info.block_rows = p.block_rows;
    info.block_cols = p.block_cols;
    info.block_size = p.block_size();
    info.kept_blocks = stats.kept_blocks;
    info.total_blocks = stats.total_blocks;
    info.rows_given_diagonal = p.rows_given_diagonal;
    info.density = stats.density;
    info.flops_per_head_dim = stats.flops_per_head_dim;
    info.dense_flops_per_head_dim = stats.dense_flops_per_head_dim;
    *out = info;
  });
}

radial_status radial_plan_csr(const radial_plan* plan, const int32_t** row_offset,
                              const int32_t** col_index) {
  return guarded([&] {
    require_pointer(plan, "plan");
    require_pointer(row_offset, "row_offset");
    require_pointer(col_index, "col_index");
    *row_offset = plan->plan.row_offset.data();
    *col_index = plan->plan.col_index.data();
  });
}

radial_status radial_plan_csc(const radial_plan* plan, const int32_t** col_offset,
                              const int32_t** row_index) {
  return guarded([&] {
    require_pointer(plan, "plan");
    require_pointer(col_offset, "col_offset");
    require_pointer(row_index, "row_index");
    *col_offset = plan->plan.col_offset.data();
    *row_index = plan->plan.row_index.data();
  });
}

namespace {

// The options every attention entry takes from its C arguments.
radial::AttentionOptions to_options(double scale, int32_t threads, void* stream) {
  radial::AttentionOptions options;
  radial::require(std::isfinite(scale) && scale >= 0, "scale",
                  "a finite number > 0 (0 means 1 / sqrt(head_dim))", scale);
  options.scale = scale;
  radial::require(threads >= 0, "threads", "0 (all) or a positive count", threads);
  options.threads = threads;
  options.stream = stream;
  return options;
}

// The backward's eight tensors as views, checked one at a time in argument order (so that the
// first bad one is the one named, as in radial_attention).
struct BackwardViews {
  radial::TensorView q, k, v, out, d_out, d_q, d_k, d_v;
  BackwardViews(const radial_tensor* q_, const radial_tensor* k_, const radial_tensor* v_,
                const radial_tensor* out_, const radial_tensor* d_out_, const radial_tensor* d_q_,
                const radial_tensor* d_k_, const radial_tensor* d_v_)
      : q(to_view(q_, "q")),
        k(to_view(k_, "k")),
        v(to_view(v_, "v")),
        out(to_view(out_, "out")),
        d_out(to_view(d_out_, "d_out")),
        d_q(to_view(d_q_, "d_q")),
        d_k(to_view(d_k_, "d_k")),
        d_v(to_view(d_v_, "d_v")) {}
};

// q, k, v, out as views. One statement each: the order of argument evaluation is unspecified,
// and the first bad tensor must be the one named.
struct Views {
  radial::TensorView q, k, v, out;
};
Views to_views(const radial_tensor* q, const radial_tensor* k, const radial_tensor* v,
               const radial_tensor* out) {
  Views views;
  views.q = to_view(q, "q");
  views.k = to_view(k, "k");
  views.v = to_view(v, "v");
  views.out = to_view(out, "out");
  return views;
}

}  // namespace

radial_status radial_attention(const radial_plan* plan, const radial_tensor* q,
                               const radial_tensor* k, const radial_tensor* v,
                               const radial_tensor* out, float* lse, double scale,
                               int32_t threads, void* stream) {
  return guarded([&] {
    require_pointer(plan, "plan");
    const radial::AttentionOptions options = to_options(scale, threads, stream);
    const Views t = to_views(q, k, v, out);
    radial::attention(plan->plan, t.q, t.k, t.v, t.out, lse, options);
  });
}

radial_status radial_attention_with_precision(const radial_plan* plan, const radial_tensor* q,
                                              const radial_tensor* k, const radial_tensor* v,
                                              const radial_tensor* out, float* lse, double scale,
                                              int32_t threads, void* stream, int32_t precision) {
  return guarded([&] {
    require_pointer(plan, "plan");
    radial::AttentionOptions options = to_options(scale, threads, stream);
    radial::require(precision == RADIAL_PRECISION_NATIVE || precision == RADIAL_PRECISION_FP8,
                    "precision", "RADIAL_PRECISION_NATIVE (0) or RADIAL_PRECISION_FP8 (1)",
                    precision);
    options.precision =
        precision == RADIAL_PRECISION_FP8 ? radial::Precision::fp8 : radial::Precision::native;
    const Views t = to_views(q, k, v, out);
    radial::attention(plan->plan, t.q, t.k, t.v, t.out, lse, options);
  });
}

radial_status radial_attention_with_choice(const radial_plan* plan, const radial_tensor* q,
                                           const radial_tensor* k, const radial_tensor* v,
                                           const radial_tensor* out, float* lse, double scale,
                                           int32_t threads, void* stream, const char* choice) {
  return guarded([&] {
    require_pointer(plan, "plan");
    const radial::AttentionOptions options = to_options(scale, threads, stream);
    const Views t = to_views(q, k, v, out);
    if (choice == nullptr || choice[0] == '\0') {
      radial::attention(plan->plan, t.q, t.k, t.v, t.out, lse, options);
      return;
    }
    // Parsed first, so that a bad choice is named whatever the build.
    const radial::KernelChoice parsed = radial::parse_choice(choice);
    radial::require(t.q.device == radial::Device::cuda, "choice",
                    "NULL or \"\" for CPU tensors (a kernel choice names a CUDA kernel)",
                    std::string("\"") + choice + "\"");
#ifdef RADIAL_WITH_CUDA
    radial::cuda_detail::attention_cuda_with(plan->plan, t.q, t.k, t.v, t.out, lse, options,
                                             parsed);
#else
    (void)parsed;
    radial::validate_attention_args(plan->plan, t.q, t.k, t.v, t.out);
    throw radial::Error("q.device", "cpu (this build has no CUDA)", "cuda");
#endif
  });
}

radial_status radial_kernel_choice(const radial_plan* plan, const radial_tensor* q, char* text,
                                   int32_t size) {
  return guarded([&] {
    require_pointer(plan, "plan");
    require_pointer(text, "text");
    const radial::TensorView qv = to_view(q, "q");
    std::string chosen;
    if (qv.device == radial::Device::cpu) {
      chosen = "cpu";
    } else {
#ifdef RADIAL_WITH_CUDA
      chosen = radial::format_choice(radial::cuda_detail::choose_kernel_for(plan->plan, qv));
#else
      throw radial::Error("q.device", "cpu (this build has no CUDA)", "cuda");
#endif
    }
    radial::require(size > static_cast<int32_t>(chosen.size()), "size",
                    "at least " + std::to_string(chosen.size() + 1) + " bytes", size);
    chosen.copy(text, chosen.size());
    text[chosen.size()] = '\0';
  });
}

radial_status radial_attention_backward(const radial_plan* plan, const radial_tensor* q,
                                        const radial_tensor* k, const radial_tensor* v,
                                        const radial_tensor* out, const radial_tensor* d_out,
                                        const float* lse, const radial_tensor* d_q,
                                        const radial_tensor* d_k, const radial_tensor* d_v,
                                        double scale, int32_t threads, int32_t deterministic,
                                        void* stream) {
  return guarded([&] {
    require_pointer(plan, "plan");
    radial::AttentionOptions options = to_options(scale, threads, stream);
    radial::require(deterministic == 0 || deterministic == 1, "deterministic", "0 or 1",
                    deterministic);
    options.deterministic = deterministic != 0;
    const BackwardViews t(q, k, v, out, d_out, d_q, d_k, d_v);
    radial::attention_backward(plan->plan, t.q, t.k, t.v, t.out, t.d_out, lse, t.d_q, t.d_k,
                               t.d_v, options);
  });
}

radial_status radial_attention_backward_with_choice(
    const radial_plan* plan, const radial_tensor* q, const radial_tensor* k,
    const radial_tensor* v, const radial_tensor* out, const radial_tensor* d_out,
    const float* lse, const radial_tensor* d_q, const radial_tensor* d_k,
    const radial_tensor* d_v, double scale, int32_t threads, void* stream, const char* choice) {
  if (choice == nullptr || choice[0] == '\0') {
    return radial_attention_backward(plan, q, k, v, out, d_out, lse, d_q, d_k, d_v, scale,
                                     threads, 0, stream);
  }
  return guarded([&] {
    require_pointer(plan, "plan");
    const radial::AttentionOptions options = to_options(scale, threads, stream);
    const BackwardViews t(q, k, v, out, d_out, d_q, d_k, d_v);
    // Parsed first, so that a bad choice is named whatever the build.
    const radial::KernelChoice parsed = radial::parse_choice(choice);
    radial::require(t.q.device == radial::Device::cuda, "choice",
                    "NULL or \"\" for CPU tensors (a kernel choice names a CUDA kernel)",
                    std::string("\"") + choice + "\"");
#ifdef RADIAL_WITH_CUDA
    radial::cuda_detail::attention_backward_cuda_with(plan->plan, t.q, t.k, t.v, t.out, t.d_out,
                                                      lse, t.d_q, t.d_k, t.d_v, options, parsed);
#else
    (void)parsed, (void)options;
    throw radial::Error("q.device", "cpu (this build has no CUDA)", "cuda");
#endif
  });
}

}  // extern "C"
