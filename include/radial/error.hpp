// The one error type of the public API, and the check helper that builds its message.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace radial {

// Thrown for every bad input. The message names the argument, what was expected and what
// came, e.g. "radial: block_size: expected 64 or 128, got 96".
class Error : public std::invalid_argument {
 public:
  Error(const std::string& argument, const std::string& expected, const std::string& got)
      : std::invalid_argument("radial: " + argument + ": expected " + expected + ", got " + got),
        argument_(argument) {}
  const std::string& argument() const noexcept { return argument_; }

 private:
  std::string argument_;
};

namespace detail {
template <class T>
std::string to_text(const T& value) {
  std::ostringstream out;
  out << value;
  return out.str();
}
}  // namespace detail

// Throws Error(argument, expected, got) when `ok` is false.
template <class T>
inline void require(bool ok, const std::string& argument, const std::string& expected,
                    const T& got) {
  if (!ok) throw Error(argument, expected, detail::to_text(got));
}

}  // namespace radial
