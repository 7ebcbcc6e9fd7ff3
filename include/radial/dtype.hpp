// Element types of attention inputs, and exact conversions for the 16-bit ones on the CPU.
#pragma once

#include <cstdint>
#include <cstring>

namespace radial {

enum class DType { f32, bf16, f16 };

const char* dtype_name(DType dtype);

// The arithmetic of an attention call: the inputs' own dtype (native), or Q, K, V quantised to
// FP8 e4m3 with scales (fp8: the Hopper FP8 forward, compute capability 9.0, forward only).
enum class Precision { native, fp8 };
const char* precision_name(Precision precision);
inline int dtype_size(DType dtype) { return dtype == DType::f32 ? 4 : 2; }

// bf16 / fp16 as raw bits; conversions round to nearest even.
struct bf16_t { uint16_t bits; };
struct f16_t { uint16_t bits; };

inline float to_float(float x) { return x; }
inline float to_float(bf16_t x) {
  uint32_t u = static_cast<uint32_t>(x.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
float to_float(f16_t x);

template <class T> T from_float(float x);
template <> inline float from_float<float>(float x) { return x; }
template <> inline bf16_t from_float<bf16_t>(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16_t{static_cast<uint16_t>((u >> 16) | 0x40)};  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return bf16_t{static_cast<uint16_t>(u >> 16)};
}
template <> f16_t from_float<f16_t>(float x);

}  // namespace radial
