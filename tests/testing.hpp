// tests/testing.hpp — matchers every test uses: a failing check on a result prints the error's
// message (what failed, on what, why), not just "false".
//
//   REQUIRE_OK(r);                                   // r holds a value; else prints r's error
//   CHECK_ERROR(r, std::errc::permission_denied, step::setns);
//   CHECK_ERROR_KIND(r, errc::not_joined, step::verify, ns_kind::net);
#pragma once

#include <doctest/doctest.h>

#include <string>

#include "nsentry/error.hpp"

namespace testing {

// "ok", or the error's message.
template <class R>
std::string describe(const R& r) {
  if (r) return "ok";
  return r.error().message();
}

template <class R, class Code>
bool is_error(const R& r, Code code, nsentry::step s) {
  return !r && r.error() == code && r.error().step == s;
}

}  // namespace testing

#define REQUIRE_OK(r) REQUIRE_MESSAGE(static_cast<bool>(r), ::testing::describe(r))
#define CHECK_OK(r) CHECK_MESSAGE(static_cast<bool>(r), ::testing::describe(r))
#define CHECK_ERROR(r, code, s) CHECK_MESSAGE(::testing::is_error((r), (code), (s)), ::testing::describe(r))
#define CHECK_ERROR_KIND(r, code, s, k)                                                    \
  CHECK_MESSAGE((::testing::is_error((r), (code), (s)) && (r).error().kind == (k)),       \
                ::testing::describe(r))
