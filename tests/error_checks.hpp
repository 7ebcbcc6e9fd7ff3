// Checks of the radial::Error a call throws: which argument it names and what its message
// says ("radial: ARGUMENT: expected ...").
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <initializer_list>
#include <string>

#include "radial/error.hpp"

namespace radial {
namespace {

// What thrown_by reports as the argument when call() throws nothing.
constexpr const char* kNothingThrown = "(nothing thrown)";

// The Error call() throws: the argument it names and its message; kNothingThrown and an empty
// message when it throws none.
struct Thrown {
  std::string argument, message;
};
Thrown thrown_by(const std::function<void()>& call) {
  try {
    call();
  } catch (const Error& e) {
    return {e.argument(), e.what()};
  }
  return {kNothingThrown, ""};
}

// call() must throw an Error whose message holds every fragment and which names `argument`
// (any argument when it is empty).
void expect_error(const std::function<void()>& call, const std::string& argument,
                  std::initializer_list<std::string> fragments) {
  const Thrown thrown = thrown_by(call);
  if (argument.empty())
    EXPECT_NE(thrown.argument, kNothingThrown);
  else
    EXPECT_EQ(thrown.argument, argument) << thrown.message;
  for (const std::string& fragment : fragments)
    EXPECT_NE(thrown.message.find(fragment), std::string::npos)
        << thrown.message << " lacks " << fragment;
}
void expect_error(const std::function<void()>& call, std::initializer_list<std::string> fragments) {
  expect_error(call, "", fragments);
}

// The attention entry points' form: an Error for `argument` whose message reads "radial:
// ARGUMENT: expected ..." and contains `fragment` (what was expected or what came).
void expect_error_from(const std::function<void()>& call, const std::string& argument,
                       const std::string& fragment = "") {
  expect_error(call, argument, {"radial: " + argument + ": expected ", fragment});
}

}  // namespace
}  // namespace radial
