// runc's three environment variables: not an init, an init, or an error naming what is wrong.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "nsentry/runc/env.hpp"
#include "tests/alloc_counter.hpp"
#include "tests/testing.hpp"

using namespace nsentry;
using namespace nsentry::runc;

namespace {

struct envp {
  std::vector<std::string> storage;
  std::vector<char*> ptrs;
  explicit envp(std::vector<std::string> vars) : storage(std::move(vars)) {
    for (auto& s : storage) ptrs.push_back(s.data());
    ptrs.push_back(nullptr);
  }
  char* const* get() { return ptrs.data(); }
};

env_scan scan(std::vector<std::string> vars) {
  envp e(std::move(vars));
  long before = allocations.load();
  env_scan s = scan_env(e.get());
  CHECK(allocations.load() == before);
  // bad_value points into the block; copy what tests compare before `e` dies.
  static std::string last_value;
  if (s.bad_value != nullptr) {
    last_value = s.bad_value;
    s.bad_value = last_value.c_str();
  }
  return s;
}

}  // namespace

TEST_CASE("no init pipe, or an empty one, is not an init, whatever else is set") {
  for (auto vars : std::vector<std::vector<std::string>>{
           {},
           {"PATH=/bin"},
           {"_LIBCONTAINER_INITPIPE="},
           {"_LIBCONTAINER_INITPIPE=", "_LIBCONTAINER_LOGPIPE=junk", "_LIBCONTAINER_LOGLEVEL=-9"},
           {"_LIBCONTAINER_LOGPIPE=4", "_LIBCONTAINER_LOGLEVEL=2"},
           {"_LIBCONTAINER_INITPIPEX=3"},  // a longer name is another variable
           {"_LIBCONTAINER_INITPIP=3"},    // so is a shorter one
       }) {
    CAPTURE(vars.size());
    auto s = scan(vars);
    CHECK(s.state == env_scan::status::not_init);
    CHECK(s.bad_variable == nullptr);
    auto r = to_result(s);
    REQUIRE_OK(r);
    CHECK_FALSE(r.value().has_value());
  }
  CHECK(scan_env(nullptr).state == env_scan::status::not_init);
}

TEST_CASE("an init pipe alone: no log pipe, level debug") {
  auto s = scan({"HOME=/", "_LIBCONTAINER_INITPIPE=3"});
  REQUIRE(s.state == env_scan::status::init);
  CHECK(s.env.init_pipe == 3);
  CHECK_FALSE(s.env.log_pipe.has_value());
  CHECK(s.env.level == log_level::debug);
}

TEST_CASE("log pipe and every level 0..6") {
  const char* names[] = {"panic", "fatal", "error", "warning", "info", "debug", "trace"};
  for (int l = 0; l <= 6; ++l) {
    auto s = scan({"_LIBCONTAINER_INITPIPE=17", "_LIBCONTAINER_LOGPIPE=4",
                   "_LIBCONTAINER_LOGLEVEL=" + std::to_string(l)});
    REQUIRE(s.state == env_scan::status::init);
    CHECK(s.env.init_pipe == 17);
    CHECK(s.env.log_pipe == 4);
    CHECK(static_cast<int>(s.env.level) == l);
    CHECK(name_of(s.env.level) == names[l]);
  }
  // Level defaults to debug with a log pipe; an empty level counts as unset.
  auto s = scan({"_LIBCONTAINER_LOGLEVEL=", "_LIBCONTAINER_LOGPIPE=0", "_LIBCONTAINER_INITPIPE=0"});
  REQUIRE(s.state == env_scan::status::init);
  CHECK(s.env.log_pipe == 0);
  CHECK(s.env.init_pipe == 0);
  CHECK(s.env.level == log_level::debug);
}

TEST_CASE("the first definition wins, as with getenv") {
  auto s = scan({"_LIBCONTAINER_INITPIPE=5", "_LIBCONTAINER_INITPIPE=junk"});
  REQUIRE(s.state == env_scan::status::init);
  CHECK(s.env.init_pipe == 5);
}

TEST_CASE("bad values are errors naming the variable and the value") {
  struct bad {
    std::vector<std::string> vars;
    const char* variable;
    const char* value;
    const char* reason;
  };
  const char* nonint = "not a non-negative decimal integer";
  for (const auto& b : std::vector<bad>{
           {{"_LIBCONTAINER_INITPIPE=abc"}, init_pipe_var, "abc", nonint},
           {{"_LIBCONTAINER_INITPIPE=-1"}, init_pipe_var, "-1", nonint},
           {{"_LIBCONTAINER_INITPIPE=+3"}, init_pipe_var, "+3", nonint},
           {{"_LIBCONTAINER_INITPIPE= 3"}, init_pipe_var, " 3", nonint},
           {{"_LIBCONTAINER_INITPIPE=3 "}, init_pipe_var, "3 ", nonint},
           {{"_LIBCONTAINER_INITPIPE=0x3"}, init_pipe_var, "0x3", nonint},
           {{"_LIBCONTAINER_INITPIPE=2147483648"}, init_pipe_var, "2147483648", "out of range"},
           {{"_LIBCONTAINER_INITPIPE=99999999999999999999999"},
            init_pipe_var,
            "99999999999999999999999",
            "out of range"},
           {{"_LIBCONTAINER_INITPIPE=3", "_LIBCONTAINER_LOGPIPE=-4"}, log_pipe_var, "-4", nonint},
           {{"_LIBCONTAINER_INITPIPE=3", "_LIBCONTAINER_LOGPIPE=four"},
            log_pipe_var,
            "four",
            nonint},
           {{"_LIBCONTAINER_INITPIPE=3", "_LIBCONTAINER_LOGLEVEL=7"},
            log_level_var,
            "7",
            "out of range (0..6)"},
           {{"_LIBCONTAINER_INITPIPE=3", "_LIBCONTAINER_LOGLEVEL=debug"},
            log_level_var,
            "debug",
            nonint},
           {{"_LIBCONTAINER_INITPIPE=3", "_LIBCONTAINER_LOGLEVEL=-1"}, log_level_var, "-1", nonint},
       }) {
    CAPTURE(b.value);
    auto s = scan(b.vars);
    REQUIRE(s.state == env_scan::status::invalid);
    CHECK(std::string(s.bad_variable) == b.variable);
    CHECK(std::string(s.bad_value) == b.value);
    CHECK(std::string(s.reason) == b.reason);
    auto r = to_result(s);
    REQUIRE(r.has_error());
    CHECK(r.error() == errc::invalid_environment);
    CHECK(r.error().message() == std::string("environment: ") + b.variable + "=" + b.value + ": " +
                                     b.reason + ": invalid environment");
  }
}

TEST_CASE("a bad init pipe still reports the log settings that parsed, for the fatal line") {
  auto s =
      scan({"_LIBCONTAINER_INITPIPE=x", "_LIBCONTAINER_LOGPIPE=9", "_LIBCONTAINER_LOGLEVEL=1"});
  REQUIRE(s.state == env_scan::status::invalid);
  CHECK(std::string(s.bad_variable) == init_pipe_var);
  CHECK(s.env.log_pipe == 9);
  CHECK(s.env.level == log_level::fatal);
}

TEST_CASE("scan_environ reads the live process environment") {
  REQUIRE(::setenv("_LIBCONTAINER_INITPIPE", "12", 1) == 0);
  REQUIRE(::setenv("_LIBCONTAINER_LOGPIPE", "13", 1) == 0);
  REQUIRE(::setenv("_LIBCONTAINER_LOGLEVEL", "4", 1) == 0);
  long before = allocations.load();
  auto s = scan_environ();
  CHECK(allocations.load() == before);
  REQUIRE(s.state == env_scan::status::init);
  CHECK(s.env.init_pipe == 12);
  CHECK(s.env.log_pipe == 13);
  CHECK(s.env.level == log_level::info);
  REQUIRE(::unsetenv("_LIBCONTAINER_INITPIPE") == 0);
  CHECK(scan_environ().state == env_scan::status::not_init);
  ::unsetenv("_LIBCONTAINER_LOGPIPE");
  ::unsetenv("_LIBCONTAINER_LOGLEVEL");
}
