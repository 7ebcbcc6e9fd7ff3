// Integer arithmetic on sizes that reports overflow instead of wrapping. Every product or sum
// of user-given sizes (tokens, batch x heads x seq x dim, byte counts, strides) goes through
// these, so a huge value becomes a clear Error rather than a small wrapped one.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>

namespace radial::checked {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

// a * b and a + b, or nullopt when the exact result does not fit in int64_t.
inline std::optional<int64_t> mul(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}
inline std::optional<int64_t> add(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// The product of all the values, or nullopt when it (or any partial product) overflows.
inline std::optional<int64_t> product(std::initializer_list<int64_t> values) {
  int64_t r = 1;
  for (int64_t v : values) {
    if (__builtin_mul_overflow(r, v, &r)) return std::nullopt;
  }
  return r;
}

// For bounds on non-negative sizes: the result, or kMax when it does not fit (so a bound that
// saturates still compares as "too large").
inline int64_t mul_or_max(int64_t a, int64_t b) { return mul(a, b).value_or(kMax); }
inline int64_t add_or_max(int64_t a, int64_t b) { return add(a, b).value_or(kMax); }

}  // namespace radial::checked
