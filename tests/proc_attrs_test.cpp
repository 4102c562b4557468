// write_oom_score_adj and write_time_offsets against real processes, read back through /proc.
#include "nsentry/proc_attrs.hpp"

#include <doctest/doctest.h>
#include <sched.h>

#include <sstream>

#include "tests/exec_test_util.hpp"

using namespace nsentry;
using namespace testutil;

namespace {

using waiting_child = held_child;

// "monotonic 5 0\n..." however the kernel pads it.
std::string normalized(const std::string& text) {
  std::istringstream in(text);
  std::string out;
  for (std::string name, secs, nsecs; in >> name >> secs >> nsecs;)
    out += name + ' ' + secs + ' ' + nsecs + '\n';
  return out;
}

}  // namespace

TEST_CASE("write_oom_score_adj raises a child's score") {
  waiting_child c(0);
  REQUIRE(c.file("oom_score_adj") == slurp("/proc/self/oom_score_adj"));
  for (int v : {500, 1000, 999}) {
    CAPTURE(v);
    auto r = write_oom_score_adj(c.pid(), v);
    REQUIRE_OK(r);
    CHECK(c.file("oom_score_adj") == std::to_string(v) + "\n");
  }
}

TEST_CASE("write_oom_score_adj for the calling process (pid 0)") {
  int rc = in_child([] {
    EXPECT_C(write_oom_score_adj(0, 321));
    EXPECT_C(slurp("/proc/self/oom_score_adj") == "321\n");
    return 0;
  });
  CHECK(rc == 0);
}

TEST_CASE("lowering below the minimum without CAP_SYS_RESOURCE: the kernel's EACCES") {
  // This machine's root lacks CAP_SYS_RESOURCE (bit 24 of CapEff); with it the write succeeds.
  std::string caps = slurp("/proc/self/status");
  auto at = caps.find("CapEff:");
  REQUIRE(at != std::string::npos);
  unsigned long long eff = std::stoull(caps.substr(at + 7), nullptr, 16);
  waiting_child c(0);
  auto before = c.file("oom_score_adj");
  auto r = write_oom_score_adj(c.pid(), -1000);
  if (eff & (1ULL << 24)) {
    CHECK_OK(r);
    CHECK(c.file("oom_score_adj") == "-1000\n");
  } else {
    CHECK_ERROR(r, std::errc::permission_denied, step::oom_score_adj);
    REQUIRE(!r);
    CHECK(r.error().path == "/proc/" + std::to_string(c.pid()) + "/oom_score_adj");
    CHECK(c.file("oom_score_adj") == before);
  }
}

TEST_CASE("write_oom_score_adj out of range: errc::invalid_argument, nothing written") {
  waiting_child c(0);
  auto before = c.file("oom_score_adj");
  for (int v : {-1001, 1001}) {
    CAPTURE(v);
    auto r = write_oom_score_adj(c.pid(), v);
    CHECK_ERROR(r, errc::invalid_argument, step::oom_score_adj);
    CHECK(c.file("oom_score_adj") == before);
  }
}

TEST_CASE("write_oom_score_adj to a process that is gone names the file") {
  pid_t gone;
  {
    waiting_child c(0);
    gone = c.pid();
  }
  auto r = write_oom_score_adj(gone, 10);
  CHECK_ERROR(r, std::errc::no_such_file_or_directory, step::oom_score_adj);
}

TEST_CASE("write_time_offsets to a process that unshared a time namespace") {
  waiting_child c(CLONE_NEWTIME);
  CHECK(ns_ino(c.pid(), "time_for_children") != ns_ino(c.pid(), "time"));
  std::vector<time_offset> o{{time_clock::monotonic, 86400, 5},
                             {time_clock::boottime, -7, 999'999'999}};
  auto r = write_time_offsets(c.pid(), o);
  REQUIRE_OK(r);
  CHECK(normalized(c.file("timens_offsets")) == "monotonic 86400 5\nboottime -7 999999999\n");
}

TEST_CASE("write_time_offsets: one clock leaves the other at zero") {
  waiting_child c(CLONE_NEWTIME);
  std::vector<time_offset> o{{time_clock::boottime, 3600, 0}};
  REQUIRE_OK(write_time_offsets(c.pid(), o));
  CHECK(normalized(c.file("timens_offsets")) == "monotonic 0 0\nboottime 3600 0\n");
}

TEST_CASE("write_time_offsets with nothing to write touches nothing") {
  CHECK_OK(write_time_offsets(999999999, {}));
}

TEST_CASE("write_time_offsets where no new time namespace is pending: EACCES, kind time") {
  waiting_child c(0);
  std::vector<time_offset> o{{time_clock::monotonic, 1, 0}};
  auto r = write_time_offsets(c.pid(), o);
  CHECK_ERROR(r, std::errc::permission_denied, step::timens_offsets);
  REQUIRE(!r);
  CHECK(r.error().kind == ns_kind::time);
  CHECK(normalized(c.file("timens_offsets")) == "monotonic 0 0\nboottime 0 0\n");
}
