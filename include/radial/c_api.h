/* The C ABI of the radial library: what every binding (Python through ctypes, others later)
 * calls, so that no binding depends on a C++ standard library or a framework build.
 *
 * Conventions:
 *  - Every function that can fail returns a radial_status; RADIAL_OK is 0. On failure the
 *    message (for bad input the library's "radial: ARGUMENT: expected ..., got ..." text) and
 *    the argument's name are kept per thread and read with radial_last_error() and
 *    radial_last_error_argument(). No C++ exception crosses this boundary.
 *  - Structs are plain data with fixed-width fields; radial_abi_version() changes whenever
 *    one of them or a signature changes, so a binding can refuse a library it does not know.
 *  - A radial_plan is immutable once made and may be shared by threads. */
#ifndef RADIAL_C_API_H
#define RADIAL_C_API_H

#include <stdint.h>

#if defined(_WIN32)
#define RADIAL_C_EXPORT __declspec(dllexport)
#else
#define RADIAL_C_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define RADIAL_ABI_VERSION 3

typedef enum radial_status {
  RADIAL_OK = 0,
  RADIAL_ERROR_INVALID_ARGUMENT = 1, /* a radial::Error: bad input, named in the message */
  RADIAL_ERROR_OUT_OF_MEMORY = 2,
  RADIAL_ERROR_RUNTIME = 3,          /* anything else, e.g. a CUDA failure */
} radial_status;

/* Element types and devices; the numbers match the order of the C++ enums. */
enum { RADIAL_DTYPE_F32 = 0, RADIAL_DTYPE_BF16 = 1, RADIAL_DTYPE_F16 = 2 };
enum { RADIAL_DEVICE_CPU = 0, RADIAL_DEVICE_CUDA = 1 };
/* The model presets (radial/model_preset.hpp); new models are appended, never renumbered. */
enum {
  RADIAL_MODEL_WAN = 0,
  RADIAL_MODEL_HUNYUAN = 1,
  RADIAL_MODEL_MOCHI = 2,
  RADIAL_MODEL_LTX_VIDEO = 3,
  RADIAL_MODEL_WAN22_TI2V_5B = 4,
  RADIAL_MODEL_WAN_VACE = 5,
  RADIAL_MODEL_HUNYUAN_I2V = 6,
  RADIAL_MODEL_SKYREELS_V2 = 7,
  RADIAL_MODEL_COUNT = 8
};
enum { RADIAL_PATTERN_RADIAL = 0, RADIAL_PATTERN_DENSE = 1 };
/* The arithmetic of a forward call (radial::Precision): the inputs' dtype, or FP8 e4m3. */
enum { RADIAL_PRECISION_NATIVE = 0, RADIAL_PRECISION_FP8 = 1 };

typedef struct radial_geometry {
  int64_t frames;           /* latent frames F >= 1 */
  int64_t tokens_per_frame; /* T = h * w after patchify */
  int64_t text_tokens;      /* text tokens appended after the video (joint attention) */
  int64_t text_valid;       /* valid text tokens; -1 means all */
} radial_geometry;

typedef struct radial_plan_spec {
  int32_t pattern;        /* RADIAL_PATTERN_* */
  int32_t model;          /* RADIAL_MODEL_* */
  double decay_factor;    /* > 0 and finite */
  int32_t block_size;     /* 128 or 64 */
  int32_t decay_adjacent; /* 0 or 1 */
} radial_plan_spec;

/* One model preset: its name, VAE and patch sizes and default mask rules (docs/models.md). */
typedef struct radial_model_preset {
  const char* name;             /* "wan", "ltx-video", ...: static storage */
  const char* description;      /* the models it covers: static storage */
  int64_t temporal_compression; /* video frames = t * k + 1 -> k + 1 latent frames */
  int64_t spatial_compression;  /* VAE pixels per latent in height and width */
  int64_t patch_size;           /* transformer patch in height and width */
  int32_t attention_sink;       /* 1: every query keeps the first latent frame */
  int32_t dense_layers;         /* default: the first blocks keep dense attention */
  int32_t dense_timesteps;      /* default: the first denoising steps keep it */
  int32_t reserved;
  double decay_factor;          /* default decay */
} radial_model_preset;

typedef struct radial_plan_info {
  int64_t seq_len;
  int64_t key_limit;
  int32_t block_rows;
  int32_t block_cols;
  int32_t block_size;
  int32_t reserved;
  int64_t kept_blocks;
  int64_t total_blocks;
  int64_t rows_given_diagonal;
  double density;
  double flops_per_head_dim;
  double dense_flops_per_head_dim;
} radial_plan_info;

/* A [batch, seq, heads, dim] view with element strides (the head dimension contiguous). */
typedef struct radial_tensor {
  void* data;
  int32_t dtype;        /* RADIAL_DTYPE_* */
  int32_t device;       /* RADIAL_DEVICE_* */
  int32_t device_index;
  int32_t reserved;
  int64_t batch, seq, heads, dim;
  int64_t stride_batch, stride_seq, stride_head;
} radial_tensor;

typedef struct radial_plan radial_plan; /* opaque */

RADIAL_C_EXPORT int32_t radial_abi_version(void);
RADIAL_C_EXPORT const char* radial_version(void);
/* 1 when the library was built with CUDA, 0 otherwise. */
RADIAL_C_EXPORT int32_t radial_built_with_cuda(void);
/* 1 when built with CUDA and a device is visible. */
RADIAL_C_EXPORT int32_t radial_cuda_available(void);

/* The last failure on this thread: its message, and the argument it names ("" when none).
 * Valid until the next failing call on the same thread. */
RADIAL_C_EXPORT const char* radial_last_error(void);
RADIAL_C_EXPORT const char* radial_last_error_argument(void);

/* Latent geometry from video frames and pixel sizes (the model presets). */
RADIAL_C_EXPORT radial_status radial_geometry_from_video(int32_t model, int64_t video_frames,
                                                         int64_t height, int64_t width,
                                                         int64_t text_tokens, int64_t text_valid,
                                                         radial_geometry* out);

/* The preset of a RADIAL_MODEL_* code (0 .. RADIAL_MODEL_COUNT - 1). */
RADIAL_C_EXPORT radial_status radial_model_preset_get(int32_t model, radial_model_preset* out);

/* Plans one attention; *out is owned by the caller and released with radial_plan_destroy. */
RADIAL_C_EXPORT radial_status radial_plan_create(const radial_geometry* geometry,
                                                 const radial_plan_spec* spec, radial_plan** out);
RADIAL_C_EXPORT radial_status radial_plan_create_dense(const radial_geometry* geometry,
                                                       int32_t block_size, radial_plan** out);
RADIAL_C_EXPORT void radial_plan_destroy(radial_plan* plan);

RADIAL_C_EXPORT radial_status radial_plan_get_info(const radial_plan* plan, radial_plan_info* out);
/* The plan's CSR (block_rows + 1 offsets, kept_blocks column indices) and CSC (block_cols + 1
 * offsets, kept_blocks row indices); the pointers live as long as the plan. */
RADIAL_C_EXPORT radial_status radial_plan_csr(const radial_plan* plan, const int32_t** row_offset,
                                              const int32_t** col_index);
RADIAL_C_EXPORT radial_status radial_plan_csc(const radial_plan* plan, const int32_t** col_offset,
                                              const int32_t** row_index);

/* out = block-sparse attention of q, k, v under the plan (radial::attention: validates, then
 * runs the backend of the tensors' device). lse: float32 [batch, heads, seq] contiguous on the
 * same device, or NULL. scale: > 0, or 0 for 1 / sqrt(dim). threads: CPU threads, 0 for all;
 * counts above the machine's hardware threads are capped to them (radial::hardware_threads).
 * stream: a cudaStream_t for CUDA tensors (NULL: the default stream). */
RADIAL_C_EXPORT radial_status radial_attention(const radial_plan* plan, const radial_tensor* q,
                                               const radial_tensor* k, const radial_tensor* v,
                                               const radial_tensor* out, float* lse, double scale,
                                               int32_t threads, void* stream);

/* radial_attention with a precision (RADIAL_PRECISION_*): RADIAL_PRECISION_FP8 runs the FP8
 * forward (Q and K in e4m3 with per-block scales, K smoothed, V with per-channel scales; the
 * quantisation pass runs inside the call) on CUDA devices of compute capability 9.0, head dim
 * 64 or 128, block 128; elsewhere it is refused with RADIAL_ERROR_INVALID_ARGUMENT naming
 * "precision" or "options.precision". RADIAL_PRECISION_NATIVE is radial_attention. */
RADIAL_C_EXPORT radial_status radial_attention_with_precision(
    const radial_plan* plan, const radial_tensor* q, const radial_tensor* k,
    const radial_tensor* v, const radial_tensor* out, float* lse, double scale, int32_t threads,
    void* stream, int32_t precision);

/* Gradients of radial_attention (radial::attention_backward) for the same plan and tensors:
 * out and lse are the forward's (lse required: float32 [batch, heads, seq] contiguous on the
 * tensors' device), d_out the gradient of out; d_q, d_k, d_v are overwritten. Key blocks no
 * query keeps, and padded keys, get exact zeros. deterministic: 1 for bit-identical gradients
 * run to run on CUDA (the CPU backward always is), else 0. */
RADIAL_C_EXPORT radial_status radial_attention_backward(
    const radial_plan* plan, const radial_tensor* q, const radial_tensor* k,
    const radial_tensor* v, const radial_tensor* out, const radial_tensor* d_out,
    const float* lse, const radial_tensor* d_q, const radial_tensor* d_k,
    const radial_tensor* d_v, double scale, int32_t threads, int32_t deterministic,
    void* stream);

/* For benchmarks and tests that compare kernels on one card: radial_attention with an explicit
 * kernel choice for CUDA tensors, named by its fields, e.g. "family=hopper,schedule=serial" or
 * "family=portable,row_order=natural" (fields and values: docs/dispatch.md). NULL or "": what
 * radial_attention runs. A choice that is malformed, not built into this library (the
 * comparison-only kernels need RADIAL_ABLATION_KERNELS=ON) or not covering the call is refused
 * with RADIAL_ERROR_INVALID_ARGUMENT naming the field ("choice.schedule"). Applications call
 * radial_attention. */
RADIAL_C_EXPORT radial_status radial_attention_with_choice(
    const radial_plan* plan, const radial_tensor* q, const radial_tensor* k,
    const radial_tensor* v, const radial_tensor* out, float* lse, double scale, int32_t threads,
    void* stream, const char* choice);

/* For benchmarks and tests, likewise: radial_attention_backward (dQ by float32 adds, not
 * deterministic) with an explicit kernel choice for CUDA tensors, e.g.
 * "family=hopper,direction=backward,variant=bwd_rs_dv" or
 * "family=portable,direction=backward,deterministic=on"; NULL or "": what
 * radial_attention_backward runs with deterministic 0. Refused like radial_attention_with_choice
 * (a forward choice names "choice.direction"). */
RADIAL_C_EXPORT radial_status radial_attention_backward_with_choice(
    const radial_plan* plan, const radial_tensor* q, const radial_tensor* k,
    const radial_tensor* v, const radial_tensor* out, const radial_tensor* d_out,
    const float* lse, const radial_tensor* d_q, const radial_tensor* d_k,
    const radial_tensor* d_v, double scale, int32_t threads, void* stream, const char* choice);

/* The kernel radial_attention runs for tensors like q under the plan, as choice text ("cpu"
 * for CPU tensors), into text (size bytes, NUL-terminated). */
RADIAL_C_EXPORT radial_status radial_kernel_choice(const radial_plan* plan, const radial_tensor* q,
                                                   char* text, int32_t size);

#ifdef __cplusplus
}
#endif

#endif /* RADIAL_C_API_H */
