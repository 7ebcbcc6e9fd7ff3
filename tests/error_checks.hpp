// The check every bad-argument test of the attention entry points makes: a radial::Error
// naming the argument, its message in the form "radial: ARGUMENT: expected ...".
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "radial/error.hpp"

namespace radial {
namespace {

// call() must throw an Error for `argument` whose message names it and contains `fragment`
// (what was expected or what came).
void expect_error_from(const std::function<void()>& call, const std::string& argument,
                       const std::string& fragment = "") {
  try {
    call();
    ADD_FAILURE() << "no radial::Error; expected one naming " << argument;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(e.argument(), argument) << message;
    EXPECT_NE(message.find("radial: " + argument + ": expected "), std::string::npos) << message;
    EXPECT_NE(message.find(fragment), std::string::npos) << message << " lacks " << fragment;
  }
}

}  // namespace
}  // namespace radial
