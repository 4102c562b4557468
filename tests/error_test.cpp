// Error rendering and the nsentry category.
#include "nsentry/error.hpp"

#include <doctest/doctest.h>

#include <stdexcept>
#include <type_traits>

using namespace nsentry;

namespace {
result<int> fails_with_eperm() {
  return with_kind(with_path(posix_error(step::setns, EPERM), "/proc/42/ns/net"), ns_kind::net);
}
result<int> adds_one() {
  NSENTRY_TRY(auto v, fails_with_eperm());
  return v + 1;
}
}  // namespace

TEST_CASE("message names step, kind, path and errno") {
  auto r = fails_with_eperm();
  REQUIRE(r.has_error());
  CHECK(r.error().message() == "setns(net) on /proc/42/ns/net: Operation not permitted");
  CHECK(r.error().errno_value() == EPERM);
  CHECK(r.error() == std::errc::operation_not_permitted);
}

TEST_CASE("message with a pid and no path") {
  auto e = with_pid(posix_error(step::pidfd_open, ESRCH), 1234);
  CHECK(e.message() == "pidfd_open on pid 1234: No such process");
}

TEST_CASE("nsentry's own category: detail and name, 0 is never an error") {
  auto e = nsentry_error(errc::invalid_id_map, step::uid_map, "line 2: count is 0");
  CHECK(e.message() == "uid_map: line 2: count is 0: invalid id map");
  CHECK(e.code.category().name() == std::string("nsentry"));
  CHECK(e.errno_value() == 0);
  CHECK(e == errc::invalid_id_map);
  CHECK_FALSE(std::error_code(errc::invalid_plan) == std::errc::invalid_argument);
  CHECK(nsentry_category().message(0) == "unknown nsentry error");
  for (int c = 1; c <= static_cast<int>(errc::invalid_environment); ++c)
    CHECK(nsentry_category().message(c) != "unknown nsentry error");
}

TEST_CASE("TRY propagates the error with its context unchanged") {
  auto r = adds_one();
  REQUIRE(r.has_error());
  CHECK(r.error().path == "/proc/42/ns/net");
  CHECK(r.error().kind == ns_kind::net);
}

TEST_CASE("value() on an error throws a system_error carrying the message") {
  auto r = fails_with_eperm();
  try {
    (void)r.value();
    FAIL("value() did not throw");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::errc::operation_not_permitted);
    CHECK(std::string(e.what()).find("setns(net) on /proc/42/ns/net") != std::string::npos);
  }
}

TEST_CASE("with_step replaces the step") {
  auto e = with_step(posix_error(step::write, EACCES), step::uid_map);
  CHECK(e.message() == "uid_map: Permission denied");
}

TEST_CASE("context is a field rendered as a prefix, not spliced into the detail") {
  auto e = with_context(fails_with_eperm().error(), "join");
  CHECK(e.message() == "join: setns(net) on /proc/42/ns/net: Operation not permitted");
  CHECK(e.detail.empty());
  CHECK(e.step == step::setns);
}

TEST_CASE("a wrapping error keeps its cause and the cause's errno") {
  auto e = wrapping(errc::restore_failed, step::restore,
                    with_kind(posix_error(step::setns, EBADF), ns_kind::net));
  CHECK(e == errc::restore_failed);
  CHECK(e.errno_value() == EBADF);
  CHECK(e.kind == ns_kind::net);
  REQUIRE(e.cause != nullptr);
  CHECK(e.cause->step == step::setns);
  CHECK(e.message() ==
        "restore(net): could not restore the thread's namespace (setns(net): Bad file descriptor)");
}

// The versioned inline namespace: two copies of different versions can live in one program.
static_assert(std::is_same_v<nsentry::error, nsentry::v0::error>);
static_assert(std::is_same_v<nsentry::step, nsentry::v0::step>);

TEST_CASE("every step has its own name") {
  for (std::size_t i = 1; i < step_names.size(); ++i)
    for (std::size_t j = 0; j < i; ++j) CHECK(step_names[i] != step_names[j]);
}
