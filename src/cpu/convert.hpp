// Element conversions for the CPU kernels' tile loads and stores. Branch-free so that the
// compiler vectorises the row loops; the f16 load avoids the exact but slow out-of-line
// radial::to_float(f16_t) (tests compare the two on all 65536 bit patterns).
#pragma once

#include <bit>
#include <cstdint>

#include "radial/dtype.hpp"

namespace radial::cpu {

inline float load_float(float x) { return x; }
inline float load_float(bf16_t x) { return to_float(x); }
inline float load_float(f16_t x) {
  const uint32_t sign = (static_cast<uint32_t>(x.bits) & 0x8000u) << 16;
  const uint32_t magnitude = static_cast<uint32_t>(x.bits) & 0x7fffu;
  // Normal: shift exponent and mantissa into float position and rebias (127 - 15).
  const float normal = std::bit_cast<float>((magnitude << 13) + (112u << 23));
  // Subnormal: mantissa * 2^-24, exact in float (no reliance on float denormals, so a
  // process running with DAZ/FTZ still converts correctly).
  const float subnormal = static_cast<float>(static_cast<int32_t>(magnitude)) * 0x1p-24f;
  // Inf and NaN keep their payload.
  const float special = std::bit_cast<float>(0x7f800000u | ((magnitude & 0x3ffu) << 13));
  const float value = magnitude < 0x400u ? subnormal : (magnitude >= 0x7c00u ? special : normal);
  return std::bit_cast<float>(std::bit_cast<uint32_t>(value) | sign);
}

template <class T>
inline T store_float(float x) {
  return from_float<T>(x);
}

}  // namespace radial::cpu
