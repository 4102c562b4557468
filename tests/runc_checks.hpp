// tests/runc_checks.hpp — what the runc-style tests check of one init run (doctest asserts).
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <string>
#include <string_view>
#include <utility>

#include "tests/runc_parent.hpp"

namespace nsentry::test {

// Runs the init with options set by `set` (GCC 12 warns about designated initializers that skip
// defaulted members, so the options are set field by field); the harness itself must not fail.
template <class Set>
runc_run run(Set set) {
  runc_parent_options o;
  set(o);
  auto r = run_runc_init(o);
  REQUIRE_MESSAGE(r.has_value(), r.error().message());
  return std::move(r).value();
}

// Every log line is JSON with exactly the non-empty string fields level and msg (runc §8.4).
inline void check_log_lines(const runc_run& r) {
  for (const auto& l : r.log_lines) {
    CAPTURE(l);
    boost::json::error_code ec;
    auto v = boost::json::parse(l, ec);
    REQUIRE(!ec);
    REQUIRE(v.is_object());
    CHECK(v.as_object().size() == 2);
    CHECK(!v.at("level").as_string().empty());
    CHECK(!v.at("msg").as_string().empty());
  }
}

// Some line at `level` whose msg contains `needle`.
inline bool has_line(const runc_run& r, std::string_view level, std::string_view needle) {
  return std::any_of(r.log_lines.begin(), r.log_lines.end(), [&](const std::string& l) {
    auto v = boost::json::parse(l).as_object();
    return v.at("level").as_string() == level &&
           std::string_view(v.at("msg").as_string()).find(needle) != std::string_view::npos;
  });
}

}  // namespace nsentry::test
