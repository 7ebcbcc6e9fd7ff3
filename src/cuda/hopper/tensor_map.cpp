// TMA descriptors (tensor_map.hpp), encoded through the driver entry point that the runtime
// hands out, so that nothing links libcuda directly.
#include "cuda/hopper/tensor_map.hpp"

#include <cudaTypedefs.h>
#include <cuda_runtime_api.h>

#include <mutex>

#include "cuda/check.hpp"

namespace radial::cuda_detail::hopper {
namespace {

PFN_cuTensorMapEncodeTiled_v12000 encode_function() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = nullptr;
  static std::once_flag once;
  std::call_once(once, [] {
    void* ptr = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &ptr, 12000,
                                         cudaEnableDefault, &found) == cudaSuccess &&
        found == cudaDriverEntryPointSuccess) {
      fn = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(ptr);
    }
  });
  if (fn == nullptr) {
    check_cuda(cudaErrorNotSupported, "cuTensorMapEncodeTiled (driver entry point)");
  }
  return fn;
}

}  // namespace

// A stride of an extent-1 dimension may be anything (the argument checks allow it); it is
// never stepped, so the map gets the packed value, a multiple of 16 bytes as TMA requires.
CUtensorMap make_rows_map(const void* data, int head_dim, bool f16, int rows, int heads,
                          int64_t batch, int64_t ss, int64_t sh, int64_t sb, int box_rows) {
  const auto stride = [](int64_t given, int64_t extent, int64_t packed) {
    return extent == 1 ? packed : given;
  };
  const int64_t s_rows = stride(ss, rows, head_dim);
  const int64_t s_heads = stride(sh, heads, s_rows * rows);
  const int64_t s_batch = stride(sb, batch, s_heads * heads);
  const cuuint64_t dims[4] = {static_cast<cuuint64_t>(head_dim), static_cast<cuuint64_t>(rows),
                              static_cast<cuuint64_t>(heads), static_cast<cuuint64_t>(batch)};
  const cuuint64_t strides[3] = {static_cast<cuuint64_t>(2 * s_rows),
                                 static_cast<cuuint64_t>(2 * s_heads),
                                 static_cast<cuuint64_t>(2 * s_batch)};
  const cuuint32_t box[4] = {64, static_cast<cuuint32_t>(box_rows), 1, 1};
  const cuuint32_t element_strides[4] = {1, 1, 1, 1};
  CUtensorMap map;
  const CUresult r = encode_function()(
      &map, f16 ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 4,
      const_cast<void*>(data), dims, strides, box, element_strides,
      CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
      CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    check_cuda(cudaErrorInvalidValue, "cuTensorMapEncodeTiled (tensor map)");
  }
  return map;
}

TensorMaps make_tensor_maps(const FwdParams& p, int head_dim, bool f16) {
  const int64_t batch = p.batch_heads / p.heads;
  const int key_rows = p.key_limit > 0 ? p.key_limit : 1;
  return {make_rows_map(p.q, head_dim, f16, p.seq, p.heads, batch, p.q_ss, p.q_sh, p.q_sb, 128),
          make_rows_map(p.k, head_dim, f16, key_rows, p.heads, batch, p.k_ss, p.k_sh, p.k_sb,
                        128),
          make_rows_map(p.v, head_dim, f16, key_rows, p.heads, batch, p.v_ss, p.v_sh, p.v_sb,
                        128)};
}

CUtensorMap make_accum_map(float* data, int head_dim, int rows, int64_t batch_heads,
                           int box_rows) {
  const cuuint64_t dims[3] = {static_cast<cuuint64_t>(head_dim), static_cast<cuuint64_t>(rows),
                              static_cast<cuuint64_t>(batch_heads)};
  const cuuint64_t strides[2] = {static_cast<cuuint64_t>(4 * head_dim),
                                 static_cast<cuuint64_t>(4 * int64_t{head_dim} * rows)};
  const cuuint32_t box[3] = {32, static_cast<cuuint32_t>(box_rows), 1};
  const cuuint32_t element_strides[3] = {1, 1, 1};
  CUtensorMap map;
  const CUresult r = encode_function()(
      &map, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 3, data, dims, strides, box, element_strides,
      CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
      CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    check_cuda(cudaErrorInvalidValue, "cuTensorMapEncodeTiled (dQ accumulator map)");
  }
  return map;
}

namespace {

// A packed [batch, heads, rows, cols] byte tensor in boxes of box_rows x cols bytes.
CUtensorMap packed_bytes_map(const void* data, int cols, int rows, int heads, int64_t batch,
                             int box_cols, int box_rows) {
  const cuuint64_t dims[4] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(rows),
                              static_cast<cuuint64_t>(heads), static_cast<cuuint64_t>(batch)};
  const cuuint64_t strides[3] = {static_cast<cuuint64_t>(cols),
                                 static_cast<cuuint64_t>(cols) * rows,
                                 static_cast<cuuint64_t>(cols) * rows * heads};
  const cuuint32_t box[4] = {static_cast<cuuint32_t>(box_cols), static_cast<cuuint32_t>(box_rows),
                             1, 1};
  const cuuint32_t element_strides[4] = {1, 1, 1, 1};
  CUtensorMap map;
  const CUresult r = encode_function()(
      &map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 4, const_cast<void*>(data), dims, strides, box,
      element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
      box_cols == 128 ? CU_TENSOR_MAP_SWIZZLE_128B : CU_TENSOR_MAP_SWIZZLE_64B,
      CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    check_cuda(cudaErrorInvalidValue, "cuTensorMapEncodeTiled (FP8 tensor map)");
  }
  return map;
}

}  // namespace

TensorMaps make_fp8_tensor_maps(const FwdParams& p, int head_dim, int vt_rows, int q_box_rows) {
  const int64_t batch = p.batch_heads / p.heads;
  const int rows = p.fp8.padded_seq;
  return {packed_bytes_map(p.fp8.q, head_dim, rows, p.heads, batch, head_dim, q_box_rows),
          packed_bytes_map(p.fp8.k, head_dim, rows, p.heads, batch, head_dim, 128),
          packed_bytes_map(p.fp8.vt, rows, vt_rows, p.heads, batch, 128, vt_rows)};
}

}  // namespace radial::cuda_detail::hopper
