// Regression tests of the hardening defects (issue 9), one TEST_CASE group per defect: each
// failed on the code before its fix.
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>

#include "nsentry/executor.hpp"
#include "nsentry/join.hpp"
#include "nsentry/probe.hpp"
#include "tests/exec_test_util.hpp"

using namespace nsentry;
using namespace testutil;

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
    // detect_leaks=0: LeakSanitizer's exit-time tracer hangs after entering a pid namespace
    // (see enter_cli_test's bin_for_pid).
    auto r = sh("ASAN_OPTIONS=detect_leaks=0 " + nsentry_bin() + " enter -t " +
                std::to_string(t.pid()) + " " + kinds + " --wd " + wd + " -- /bin/true 2>&1");
    CAPTURE(r.out);
    CHECK(r.status == 125);
    CHECK(r.out.find("chdir on " + wd) != std::string::npos);
  }
}

// --- defects 10 and 16: the uid/gid map helper ---------------------------------------------

namespace {

// The direct write of a map refused (as for an unprivileged writer): the helper runs.
int refuse_map_open(int dirfd, const char* path, int flags, mode_t mode) {
  std::string_view p(path);
  if ((flags & O_ACCMODE) == O_WRONLY && p.size() > 4 && p.substr(p.size() - 4) == "_map") {
    errno = EPERM;
    return -1;
  }
  return sys::real_calls.openat(dirfd, path, flags, mode);
}

// A stand-in for newuidmap/newgidmap: `tool PID inside outside count...` writing `file`.
std::string map_tool(const temp_dir& d, const std::string& name, const std::string& file) {
  std::string path = d.path + "/" + name;
  {
    std::ofstream out(path);
    out << "#!/bin/sh\npid=$1; shift\nprintf '%s %s %s\\n' \"$@\" > /proc/$pid/" << file << "\n";
  }
  REQUIRE(::chmod(path.c_str(), 0755) == 0);
  return path;
}

std::size_t occurrences(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (auto at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("a map helper that cannot be run is the map's error (exit 125), said once") {
  user_ns_child c;
  id_map_request req;
  req.uid_map = id_map::from_ranges({{0, 100000, 10}}).value();
  req.uidmap_tool = "/nonexistent/newuidmap";
  sys::scoped_override o{&sys::table::openat, &refuse_map_open};
  auto r = write_id_maps(c.pid(), req);
  REQUIRE(!r);
  CAPTURE(r.error().message());
  CHECK(r.error().step == step::uid_map);
  CHECK(r.error().path == "/nonexistent/newuidmap");
  CHECK(exit_status_for(r.error()) == exit_runner_failed);
  CHECK(occurrences(r.error().message(), "/nonexistent/newuidmap") == 1);
}

TEST_CASE("a map helper that exits 0 without writing the map is noticed, naming it") {
  temp_dir d;
  user_ns_child c;
  id_map_request req;
  req.uid_map = id_map::from_ranges({{0, 100000, 10}}).value();
  req.gid_map = id_map::from_ranges({{0, 100000, 10}}).value();
  sys::scoped_override o{&sys::table::openat, &refuse_map_open};
  SUBCASE("uid helper does nothing") {
    req.uidmap_tool = "/bin/true";
    auto r = write_id_maps(c.pid(), req);
    REQUIRE(!r);
    CAPTURE(r.error().message());
    CHECK(r.error() == errc::child_failed);
    CHECK(r.error().step == step::uid_map);
    CHECK(r.error().path == "/bin/true");
    CHECK(exit_status_for(r.error()) == exit_runner_failed);
  }
  SUBCASE("uid helper writes, gid helper does nothing") {
    req.uidmap_tool = map_tool(d, "uidtool", "uid_map");
    req.gidmap_tool = "/bin/true";
    auto r = write_id_maps(c.pid(), req);
    REQUIRE(!r);
    CAPTURE(r.error().message());
    CHECK(r.error().step == step::gid_map);
    CHECK(r.error().path == "/bin/true");
  }
  SUBCASE("both helpers write: success") {
    req.uidmap_tool = map_tool(d, "uidtool", "uid_map");
    req.gidmap_tool = map_tool(d, "gidtool", "gid_map");
    CHECK_OK(write_id_maps(c.pid(), req));
  }
}

// --- defect 2: a probe must never move the calling thread ----------------------------------

TEST_CASE("a thread in its own uts namespace stays there through every probe and a join") {
  int st = in_child([] {
    int result = 0;
    std::thread th([&] {
      result = [] {
        if (::unshare(CLONE_NEWUTS) != 0) return 1;
        ino_t mine = ns_ino("/proc/thread-self/ns/uts");
        reset_probe_cache();
        for (int i = 0; i < detail::feature_count; ++i) (void)kernel_has(static_cast<feature>(i));
        EXPECT_C(ns_ino("/proc/thread-self/ns/uts") == mine);
        // And an nsentry call that probes on its way: run_plan.
        plan pl;
        pl.create = ns_set::of<net_ns>();
        auto cmd = exec_spec::make({"/bin/true"});
        EXPECT_C(cmd.has_value());
        auto c = run_plan(pl, cmd.value());
        EXPECT_C(c.has_value());
        EXPECT_C(c.value().wait().has_value());
        EXPECT_C(ns_ino("/proc/thread-self/ns/uts") == mine);
        return 0;
      }();
    });
    th.join();
    return result;
  });
  CHECK(st == 0);
}

// --- defects 1 and 8: no dumpable pre-exec process, no core from the mirror -----------------

TEST_CASE("every process of the entry sequence is non-dumpable before exec") {
  auto not_dumpable = []() noexcept -> failure {
    if (::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0) return failure::at(step::prctl, EEXIST);
    return {};
  };
  for (bool fork_for_children : {false, true}) {
    CAPTURE(fork_for_children);
    child_side::entry_program prog;
    prog.create = fork_for_children ? ns_set::of<pid_ns, uts_ns>() : ns_set::of<uts_ns>();
    prog.fork_for_children = fork_for_children;
    auto c = spawn_entry(prog, not_dumpable, {});
    REQUIRE_OK(c);
    auto s = c.value().wait();
    REQUIRE_OK(s);
    CHECK(s.value() == exit_status{});
  }
}

TEST_CASE("run_plan: a command killed by SIGSEGV/SIGQUIT is 128+n, with no core in its cwd") {
  temp_dir d;
  // Without a pid namespace the command signals itself; with one it is that namespace's init,
  // which only a real fault (or SIGKILL from outside) kills: python3 dereferences NULL.
  struct shape {
    int sig;
    bool pid_ns;
    std::vector<std::string> argv;
  };
  std::vector<shape> shapes;
  for (int sig : {SIGSEGV, SIGQUIT, SIGKILL, SIGTERM})
    shapes.push_back({sig, false, {"/bin/sh", "-c", "kill -" + std::to_string(sig) + " $$"}});
  shapes.push_back(
      {SIGSEGV, true, {"/usr/bin/python3", "-c", "import ctypes; ctypes.string_at(0)"}});
  for (const auto& sh_ : shapes) {
    INFO("sig ", sh_.sig, " pid_ns ", sh_.pid_ns);
    plan pl;
    pl.create = sh_.pid_ns ? ns_set::of<pid_ns, uts_ns>() : ns_set::of<uts_ns>();
    auto cmd = exec_spec::make(sh_.argv, std::nullopt, d.path);
    REQUIRE_OK(cmd);
    auto c = run_plan(pl, cmd.value());
    REQUIRE_OK(c);
    auto s = c.value().wait();
    REQUIRE_OK(s);
    CHECK(s.value().shell_status() == 128 + sh_.sig);
    CHECK(sh("ls -A '" + d.path + "'").out.empty());
  }
}

// --- defect 7: the mirror holds only what it needs -----------------------------------------

TEST_CASE("a pipe the caller closed reaches EOF while the command (behind a mirror) runs") {
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  plan pl;
  pl.create = ns_set::of<pid_ns>();
  auto cmd = exec_spec::make({"/bin/sleep", "5"});
  REQUIRE_OK(cmd);
  auto c = run_plan(pl, cmd.value());
  REQUIRE_OK(c);
  ::close(p[1]);
  pollfd pf{p[0], POLLIN, 0};
  int n = ::poll(&pf, 1, 2000);
  CHECK(n == 1);
  CHECK((pf.revents & POLLHUP) != 0);
  ::close(p[0]);
  CHECK(c.value().running());
  REQUIRE_OK(c.value().kill());
  auto s = c.value().wait();
  REQUIRE_OK(s);
  CHECK(s.value().signal == SIGKILL);
}

// The mirror's own failure after the fork cannot travel over the channel (the grandchild holds
// it): it is one line on the mirror's stderr and exit 125, never a silent 125.
namespace {
pid_t mirror_test_caller = 0;
int waitid_fails_outside_caller(idtype_t t, id_t id, siginfo_t* info, int options) {
  if (sys::real_calls.getpid() != mirror_test_caller) {
    errno = ECHILD;
    return -1;
  }
  return sys::real_calls.waitid(t, id, info, options);
}
}  // namespace

TEST_CASE("the mirror's failed waitid is one line on stderr naming it, and exit 125") {
  temp_dir d;
  const std::string err_file = d.path + "/stderr";
  int st = in_child([&] {
    int fd = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    EXPECT_C(fd >= 0 && ::dup2(fd, 2) == 2);
    ::close(fd);
    int fds = count_fds();
    int kids = count_children();
    mirror_test_caller = ::getpid();
    sys::scoped_override o{&sys::table::waitid, &waitid_fails_outside_caller};
    plan pl;
    pl.create = ns_set::of<pid_ns, uts_ns>();
    auto cmd = exec_spec::make({"/bin/sleep", "5"});
    EXPECT_C(cmd.has_value());
    auto c = run_plan(pl, cmd.value());
    EXPECT_C(c.has_value());  // the command exec'd; the mirror fails while waiting for it
    auto s = c.value().wait();
    EXPECT_C(s.has_value());
    EXPECT_C(s.value().signal == 0 && s.value().code == exit_runner_failed);
    EXPECT_C(count_fds() == fds);
    EXPECT_C(count_children() == kids);
    return 0;
  });
  CHECK(st == 0);
  const std::string text = slurp(err_file);
  CAPTURE(text);
  // "nsentry mirror: waitid(pid 4242): No child processes (errno 10)\n"
  CHECK(text.rfind("nsentry mirror: waitid(pid ", 0) == 0);
  CHECK(text.find("): No child processes (errno 10)\n") != std::string::npos);
  CHECK(std::count(text.begin(), text.end(), '\n') == 1);
}

// --- defect 5: SIGCHLD ignored by the caller's parent --------------------------------------

TEST_CASE("SIGCHLD ignored: a clear error for the lost status, the disposition untouched") {
  int st = in_child([] {
    ::signal(SIGCHLD, SIG_IGN);
    auto cmd = exec_spec::make({"/bin/sh", "-c", "exit 3"});
    EXPECT_C(cmd.has_value());
    auto c = spawn_exec(cmd.value());
    EXPECT_C(c.has_value());
    auto s = c.value().wait();
    EXPECT_C(!s);
    EXPECT_C(s.error() == errc::sigchld_ignored);
    EXPECT_C(s.error().message().find("SIGCHLD") != std::string::npos);
    struct sigaction now {};
    ::sigaction(SIGCHLD, nullptr, &now);
    EXPECT_C(now.sa_handler == SIG_IGN);
    return 0;
  });
  CHECK(st == 0);
}

TEST_CASE("SIGCHLD ignored: the map helper path still works (the map is read back)") {
  temp_dir d;
  auto uid_tool = map_tool(d, "uidtool", "uid_map");
  int st = in_child([&] {
    user_ns_child c;
    ::signal(SIGCHLD, SIG_IGN);
    id_map_request req;
    req.uid_map = id_map::from_ranges({{0, 100000, 10}}).value();
    req.uidmap_tool = uid_tool;
    sys::scoped_override o{&sys::table::openat, &refuse_map_open};
    auto r = write_id_maps(c.pid(), req);
    if (!r) std::fprintf(stderr, "%s\n", r.error().message().c_str());
    EXPECT_C(r.has_value());
    return 0;
  });
  CHECK(st == 0);
}

TEST_CASE("SIGCHLD ignored: nsentry enter with a pid namespace reports the command's status") {
  target t({"--pid"});
  const std::string bin = nsentry_bin(), pid = std::to_string(t.pid());
  std::fflush(nullptr);
  pid_t c = ::fork();
  REQUIRE(c >= 0);
  if (c == 0) {
    ::signal(SIGCHLD, SIG_IGN);                     // what a careless parent leaves; exec keeps it
    ::setenv("ASAN_OPTIONS", "detect_leaks=0", 1);  // see enter_cli_test's bin_for_pid
    ::execl(bin.c_str(), "nsentry", "enter", "-t", pid.c_str(), "--pid", "--", "/bin/sh", "-c",
            "exit 3", static_cast<char*>(nullptr));
    ::_exit(99);
  }
  int st = 0;
  REQUIRE(::waitpid(c, &st, 0) == c);
  CHECK(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 3);
}

// --- defect 3: host supplementary groups do not survive joining a user namespace -----------

namespace {
// A process in a new user namespace mapping every id to itself (setgroups allowed).
struct identity_user_target {
  target t{{"--user", "--uts"}};
  identity_user_target() {
    auto proc = "/proc/" + std::to_string(t.pid()) + "/";
    REQUIRE_OK(write_file(proc + "uid_map", "0 0 4294967295"));
    REQUIRE_OK(write_file(proc + "gid_map", "0 0 4294967295"));
  }
};
}  // namespace

TEST_CASE("joining a user namespace drops the supplementary groups (enter, run_plan)") {
  identity_user_target ut;
  const std::string pid = std::to_string(ut.t.pid());
  auto r = sh("setpriv --groups 4,27 " + nsentry_bin() + " enter -t " + pid +
              " --user -- grep Groups: /proc/self/status 2>&1");
  CAPTURE(r.out);
  CHECK(r.status == 0);
  CHECK(r.out.rfind("Groups:", 0) == 0);
  CHECK(r.out.find_first_of("0123456789") == std::string::npos);
  temp_dir d;
  int st = in_child([&] {
    gid_t groups[] = {4, 27};
    EXPECT_C(::setgroups(2, groups) == 0);
    plan pl;
    pl.join.push_back({ns_kind::user, "/proc/" + pid + "/ns/user"});
    pl.join.push_back({ns_kind::uts, "/proc/" + pid + "/ns/uts"});
    auto cmd = exec_spec::make({"/bin/sh", "-c", "grep Groups: /proc/self/status > out"},
                               std::nullopt, d.path);
    EXPECT_C(cmd.has_value());
    auto c = run_plan(pl, cmd.value());
    EXPECT_C(c.has_value());
    auto s = c.value().wait();
    EXPECT_C(s.has_value() && s.value().success());
    return 0;
  });
  CHECK(st == 0);
  auto out = slurp(d.path + "/out");
  CAPTURE(out);
  CHECK(out.rfind("Groups:", 0) == 0);
  CHECK(out.find_first_of("0123456789") == std::string::npos);
}

TEST_CASE("joining a user namespace whose setgroups is denied fails clearly") {
  target t({"--user", "--map-root-user"});
  auto r = sh(nsentry_bin() + " enter -t " + std::to_string(t.pid()) + " --user -- /bin/true 2>&1");
  CAPTURE(r.out);
  CHECK(r.status == 125);
  CHECK(r.out.find("setgroups") != std::string::npos);
}
