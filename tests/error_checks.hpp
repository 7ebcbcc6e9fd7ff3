// Checks of the radial::Error a call throws: which argument it names and what its message
// says ("radial: ARGUMENT: expected ...").
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "radial/error.hpp"

namespace radial {
namespace {

// The Error call() throws: the argument it names and its message; "(nothing thrown)" and an
// empty message when it throws none.
struct Thrown {
  std::string argument, message;
};
Thrown thrown_by(const std::function<void()>& call) {
  try {
    call();
  } catch (const Error& e) {
    return {e.argument(), e.what()};
  }
  return {"(nothing thrown)", ""};
}

// call() must throw an Error for `argument` whose message names it and contains `fragment`
// (what was expected or what came).
void expect_error_from(const std::function<void()>& call, const std::string& argument,
                       const std::string& fragment = "") {
  const Thrown thrown = thrown_by(call);
  const std::string& message = thrown.message;
  EXPECT_EQ(thrown.argument, argument) << message;
  EXPECT_NE(message.find("radial: " + argument + ": expected "), std::string::npos) << message;
  EXPECT_NE(message.find(fragment), std::string::npos) << message << " lacks " << fragment;
}

}  // namespace
}  // namespace radial
