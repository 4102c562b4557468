// Regression tests of the hardening defects (issue 9), one TEST_CASE group per defect: each
// failed on the code before its fix.
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grp.h>
#include <poll.h>
#include <sched.h>

#include <cstdlib>
#include <thread>
#include <string>

#include "nsentry/executor.hpp"
#include "nsentry/join.hpp"
#include "nsentry/probe.hpp"
#include "tests/exec_test_util.hpp"

using namespace nsentry;
using namespace testutil;

namespace {

// A fresh temporary directory, removed (with its contents) at scope exit.
struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/nsentry-hardening-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~temp_dir() { (void)sh("rm -rf '" + path + "'"); }
};

}  // namespace

// --- defect 9: a FIFO (or any non-namespace file) as a join path ---------------------------

TEST_CASE("a FIFO or regular file as a join path is refused before any setns, naming it") {
  temp_dir d;
  const std::string fifo = d.path + "/fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const std::string file = d.path + "/file";
  REQUIRE(sh("touch '" + file + "'").status == 0);
  int fds = count_fds();
  int st = in_child([&] {
    ::alarm(10);  // the bug: open(FIFO, O_RDONLY) blocks for ever
    for (const auto& p : {fifo, file}) {
      std::vector<ns_join> joins{{ns_kind::net, p}};
      auto r = opened_namespaces::open(joins);
      EXPECT_C(!r);
      EXPECT_C(r.error() == std::errc::invalid_argument);
      EXPECT_C(r.error().step == step::setns);
      EXPECT_C(r.error().path == p);
      EXPECT_C(r.error().kind == ns_kind::net);
      EXPECT_C(r.error().message().find("not a namespace file") != std::string::npos);
      auto j = join_paths(joins);
      EXPECT_C(!j && j.error() == std::errc::invalid_argument && j.error().path == p);
      plan pl;
      pl.join.push_back({ns_kind::net, p});
      auto cmd = exec_spec::make({"/bin/true"});
      EXPECT_C(cmd.has_value());
      auto c = run_plan(pl, cmd.value());
      EXPECT_C(!c && c.error() == std::errc::invalid_argument && c.error().path == p);
    }
    return 0;
  });
  CHECK(st == 0);
  CHECK(count_fds() == fds);
  auto r = sh("timeout 10 " + nsentry_bin() + " enter --ns net=" + fifo + " -- /bin/true 2>&1");
  CAPTURE(r.out);
  CHECK(r.status == 125);
  CHECK(r.out.find(fifo) != std::string::npos);
  CHECK(r.out.find("not a namespace file") != std::string::npos);
}

// --- defect 14: a chdir failure names the working directory --------------------------------

TEST_CASE("a workdir that cannot be entered is named by the error, not the command or pid") {
  const std::string wd = "/nonexistent-nsentry-wd";
  auto cmd = exec_spec::make({"/bin/true"}, std::nullopt, wd);
  REQUIRE_OK(cmd);
  {
    auto c = spawn_exec(cmd.value());
    CHECK_ERROR(c, std::errc::no_such_file_or_directory, step::chdir);
    if (!c) CHECK(c.error().path == wd);
  }
  {
    plan pl;
    pl.create = ns_set::of<uts_ns>();
    auto c = run_plan(pl, cmd.value());
    CHECK_ERROR(c, std::errc::no_such_file_or_directory, step::chdir);
    if (!c) CHECK(c.error().path == wd);
  }
  target t({"--uts", "--pid"});
  for (const char* kinds : {"--uts", "--uts --pid"}) {
    auto r = sh(nsentry_bin() + " enter -t " + std::to_string(t.pid()) + " " + kinds +
                " --wd " + wd + " -- /bin/true 2>&1");
    CAPTURE(r.out);
    CHECK(r.status == 125);
    CHECK(r.out.find("chdir on " + wd) != std::string::npos);
  }
}
