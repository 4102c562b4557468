// The runc-style parent harness, validated against a fake init (tests/runc_fake_init.cpp):
// this checks the harness — message transport, pid report, reaping, logs, deadlines — so that
// the end-to-end tests of the real init can trust it.
#include <doctest/doctest.h>

#include <algorithm>
#include <boost/json.hpp>

#include "tests/captures.hpp"
#include "tests/runc_checks.hpp"

using namespace nsentry;
using namespace nsentry::test;

namespace {

const char* fake = "tests/runc_fake_init";

}  // namespace

TEST_CASE("a real runc message, one write, with a log pipe: pids reported, all three reaped") {
  std::string msg = captures::message("h_exec_default.bin");
  auto r = run([&](runc_parent_options& o) {
    o.argv = {fake, "ok"};
    o.log_pipe = true;
    o.message = {msg};
  });
  CAPTURE(r.stderr_text);
  CAPTURE(r.pid_error);
  CHECK(r.stage0.exited_zero());
  REQUIRE(r.pids.has_value());
  CHECK(r.pids->stage1 != r.pids->stage2);
  CHECK(r.pids->stage1 != r.stage0.pid);
  CHECK(r.stage1.exited_zero());  // cloned with CLONE_PARENT: our direct child
  CHECK(r.stage2.exited_zero());  // orphaned by stage-1: ours as subreaper
  CHECK(r.stage1.error.empty());
  CHECK(r.stage2.error.empty());
  CHECK_FALSE(r.timed_out);
  CHECK(r.message_error.empty());
  CHECK(r.stderr_text.empty());
  check_log_lines(r);
  CHECK(has_line(r, "debug", "nsexec[" + std::to_string(r.stage0.pid) + "]: fake init: mode ok"));
  CHECK(has_line(r, "debug",
                 "nsexec-0[" + std::to_string(r.stage0.pid) + "]: message of " +
                     std::to_string(msg.size()) + " bytes"));
  CHECK(has_line(r, "debug",
                 "nsexec-1[" + std::to_string(r.pids->stage1) + "]: stage-1 of parent " +
                     std::to_string(::getpid())));
  CHECK(has_line(r, "debug", "nsexec-2[" + std::to_string(r.pids->stage2) + "]: stage-2 running"));
  CHECK(children_of_self().empty());
}

TEST_CASE("a message split into chunks with pauses arrives whole") {
  std::string msg = captures::message("c_multimap.bin");
  REQUIRE(msg.size() > 20);
  auto r = run([&](runc_parent_options& o) {
    o.argv = {fake};
    o.log_pipe = true;
    o.message = {msg.substr(0, 3), msg.substr(3, 14), msg.substr(17)};
    o.pause = std::chrono::milliseconds(30);
  });
  CHECK(r.stage0.exited_zero());
  REQUIRE(r.pids.has_value());
  CHECK(r.stage1.exited_zero());
  CHECK(r.stage2.exited_zero());
  CHECK(has_line(r, "debug", "message of " + std::to_string(msg.size()) + " bytes"));
  CHECK(children_of_self().empty());
}

TEST_CASE("log level filters the init's lines") {
  auto r = run([&](runc_parent_options& o) {
    o.argv = {fake};
    o.log_pipe = true;
    o.log_level_value = "4";
    o.message = {captures::message("a_default.bin")};
  });
  CHECK(r.stage0.exited_zero());
  CHECK(r.log_lines.empty());
  CHECK(r.stage1.exited_zero());
  CHECK(r.stage2.exited_zero());
}

TEST_CASE("a fatal error without a log pipe: FATAL on stderr, exit 1, no pids, nothing left") {
  auto r = run([&](runc_parent_options& o) {
    o.argv = {fake, "fail"};
    o.message = {captures::message("a_default.bin")};
  });
  CHECK(r.stage0.reaped);
  CHECK(r.stage0.code == 1);
  CHECK_FALSE(r.pids.has_value());
  CHECK(r.pid_error == "end of file before the pid report");
  CHECK(r.stderr_text == "FATAL: failing on purpose: Operation not permitted\n");
  CHECK(r.log_lines.empty());
  CHECK(children_of_self().empty());
}

TEST_CASE("a fatal error with a log pipe is a fatal line") {
  auto r = run([&](runc_parent_options& o) {
    o.argv = {fake, "fail"};
    o.log_pipe = true;
    o.message = {captures::message("a_default.bin")};
  });
  CHECK(r.stage0.code == 1);
  CHECK(r.stderr_text.empty());
  check_log_lines(r);
  CHECK(has_line(r, "fatal",
                 "nsexec-0[" + std::to_string(r.stage0.pid) +
                     "]: failing on purpose: Operation not permitted"));
}

TEST_CASE("a truncated message: the init reports it and the harness still collects") {
  std::string msg = captures::message("c_multimap.bin");
  auto r = run([&](runc_parent_options& o) {
    o.argv = {fake};
    o.log_pipe = true;
    o.message = {msg.substr(0, msg.size() - 5)};
    o.shutdown_after_message = true;
  });
  CHECK(r.stage0.code == 1);
  CHECK(has_line(r, "fatal",
                 "short message: " + std::to_string(msg.size() - 5) + " of " +
                     std::to_string(msg.size()) + " bytes"));
  CHECK(!r.pid_error.empty());
}

TEST_CASE("a pid report with an unknown field is rejected, naming it") {
  auto r = run([&](runc_parent_options& o) {
    o.argv = {fake, "bad-json"};
    o.message = {captures::message("a_default.bin")};
  });
  CHECK(r.stage0.exited_zero());
  CHECK_FALSE(r.pids.has_value());
  CHECK(r.pid_error ==
        "pid report: offset 31: unknown field \"extra\": malformed bootstrap message");
}

TEST_CASE("no init pipe: the init returns at once; the harness sees end of file") {
  auto r = run([&](runc_parent_options& o) {
    o.argv = {fake};
    o.init_pipe_value = "";
    o.message = {captures::message("a_default.bin")};
  });
  CHECK(r.stage0.exited_zero());
  CHECK(r.pid_error == "end of file before the pid report");
}

TEST_CASE("a bad environment value is fatal and named, on the log pipe that did parse") {
  auto r = run([&](runc_parent_options& o) {
    o.argv = {fake};
    o.log_pipe = true;
    o.log_level_value = "loud";
    o.message = {captures::message("a_default.bin")};
  });
  CHECK(r.stage0.code == 1);
  CHECK(r.stderr_text.empty());
  check_log_lines(r);
  CHECK(has_line(r, "fatal",
                 "nsexec[" + std::to_string(r.stage0.pid) +
                     "]: bad environment: _LIBCONTAINER_LOGLEVEL=loud: not a "
                     "non-negative decimal integer"));
}

TEST_CASE("a bad init pipe value without a log pipe goes to stderr") {
  auto r = run([&](runc_parent_options& o) {
    o.argv = {fake};
    o.init_pipe_value = "three";
    o.message = {captures::message("a_default.bin")};
  });
  CHECK(r.stage0.code == 1);
  CHECK(
      r.stderr_text ==
      "FATAL: bad environment: _LIBCONTAINER_INITPIPE=three: not a non-negative decimal integer\n");
  CHECK(r.message_error.empty());  // the socket accepted it; nobody read it
}

TEST_CASE("a hanging init is killed at the deadline and reaped") {
  auto start = std::chrono::steady_clock::now();
  auto r = run([&](runc_parent_options& o) {
    o.argv = {fake, "hang"};
    o.message = {captures::message("a_default.bin")};
    o.timeout = std::chrono::milliseconds(300);
  });
  CHECK(r.timed_out);
  CHECK(r.stage0.reaped);
  CHECK(r.stage0.signal == SIGKILL);
  CHECK(r.pid_error == "no pid report before the deadline");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  CHECK(children_of_self().empty());
}

TEST_CASE("an executable that does not exist: exit 127, no pids") {
  auto r = run([&](runc_parent_options& o) {
    o.argv = {"/nonexistent/init"};
    o.message = {captures::message("a_default.bin")};
  });
  CHECK(r.stage0.code == 127);
  CHECK_FALSE(r.pids.has_value());
  CHECK(children_of_self().empty());
}
