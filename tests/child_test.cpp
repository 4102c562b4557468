// spawn / child / exec_spec against the real kernel: statuses, the error channel, the
// fallbacks (clone3 ENOSYS, clone without CLONE_PIDFD, no pidfd_open), no leaks, no zombies.
#include "nsentry/child.hpp"

#include <doctest/doctest.h>

#include <cstring>

#include "nsentry/exec_spec.hpp"
#include "nsentry/spawn.hpp"
#include "tests/exec_test_util.hpp"
#include "tests/testing.hpp"

using namespace nsentry;
using namespace testutil;

namespace {

exec_spec cmd(std::vector<std::string> argv) {
  auto s = exec_spec::make(std::move(argv));
  REQUIRE_OK(s);
  return std::move(s).value();
}

exit_status run(const exec_spec& c, spawn_options o = {}) {
  auto ch = spawn_exec(c, o);
  REQUIRE_OK(ch);
  CHECK(ch.value().fd() >= 0);
  auto st = ch.value().wait();
  REQUIRE_OK(st);
  return st.value();
}

}  // namespace

TEST_CASE("spawn_exec: exit codes and signals come back from wait(), both spawn paths") {
  for (bool share : {true, false}) {
    CAPTURE(share);
    spawn_options o;
    o.share_memory = share;
    CHECK(run(cmd({"true"}), o) == exit_status{0, 0});
    CHECK(run(cmd({"sh", "-c", "exit 42"}), o) == exit_status{42, 0});
    auto killed = run(cmd({"sh", "-c", "kill -TERM $$"}), o);
    CHECK(killed.signal == SIGTERM);
    CHECK(killed.shell_status() == 128 + SIGTERM);
  }
}

TEST_CASE("exec_spec: PATH search, argv passed through, workdir applied") {
  auto s = exec_spec::make({"sh", "-c", "test \"$(pwd)\" = /tmp && test \"$0\" = x", "x"},
                           std::nullopt, std::string("/tmp"));
  REQUIRE_OK(s);
  CHECK(s.value().candidates().size() > 1);
  CHECK(run(s.value()).success());
  CHECK_FALSE(exec_spec::make({}));
  CHECK(exec_spec::make({""}).error() == errc::invalid_argument);
}

namespace {
int pipes_made = 0;
}  // namespace

TEST_CASE("a command that is missing or not executable is an exec error; nothing leaks") {
  int fds = count_fds(), kids = count_children();
  // vfork-style, the failure comes back through the shared memory: no pipe is made. A copying
  // child reports over a pipe.
  sys::scoped_override count_pipes{&sys::table::pipe2, [](int p[2], int flags) {
                                     ++pipes_made;
                                     return sys::real_calls.pipe2(p, flags);
                                   }};
  for (bool share : {true, false}) {
    CAPTURE(share);
    pipes_made = 0;
    spawn_options o;
    o.share_memory = share;
    auto missing = spawn_exec(cmd({"/nonexistent/nsentry-cmd"}), o);
    REQUIRE_FALSE(missing);
    CHECK(missing.error() == std::errc::no_such_file_or_directory);
    CHECK(missing.error().step == step::exec);
    CHECK(missing.error().path == "/nonexistent/nsentry-cmd");
    auto not_exec = spawn_exec(cmd({"/etc/passwd"}), o);
    REQUIRE_FALSE(not_exec);
    CHECK(not_exec.error() == std::errc::permission_denied);
    auto bad_wd = exec_spec::make({"true"}, std::nullopt, std::string("/nonexistent-dir"));
    REQUIRE_OK(bad_wd);
    auto c = spawn_exec(bad_wd.value(), o);
    REQUIRE_FALSE(c);
    CHECK(c.error().step == step::chdir);
    CHECK(c.error() == std::errc::no_such_file_or_directory);
    CHECK(pipes_made == (share ? 0 : 3));
  }
  CHECK(exit_status_for(failure::at(step::exec, ENOENT)) == 127);
  CHECK(exit_status_for(failure::at(step::exec, EACCES)) == 126);
  CHECK(exit_status_for(failure::at(step::setns, EPERM)) == 125);
  CHECK(count_fds() == fds);
  CHECK(count_children() == kids);
}

TEST_CASE("a child dropped without wait() is killed and reaped") {
  int fds = count_fds(), kids = count_children();
  pid_t pid;
  {
    auto c = spawn_exec(cmd({"sleep", "600"}));
    REQUIRE_OK(c);
    pid = c.value().pid();
    CHECK(count_children() == kids + 1);
    child moved = std::move(c).value();
    CHECK(moved.pid() == pid);
  }
  CHECK(count_children() == kids);
  CHECK(::kill(pid, 0) == -1);  // reaped: the pid is gone (not a zombie)
  CHECK(count_fds() == fds);
}

TEST_CASE("clone3 ENOSYS falls back to fork + pidfd_open; clone without CLONE_PIDFD too") {
  int fds = count_fds(), kids = count_children();
  {
    sys::scoped_override o{&sys::table::clone3, [](sys::clone_args*, size_t) -> long {
                             errno = ENOSYS;
                             return -1;
                           }};
    spawn_options so;
    so.share_memory = false;
    CHECK(run(cmd({"sh", "-c", "exit 5"}), so).code == 5);
    auto bad = spawn_exec(cmd({"/nonexistent"}), so);
    CHECK(bad.error() == std::errc::no_such_file_or_directory);
  }
  {
    static int calls = 0;
    calls = 0;
    sys::scoped_override o{&sys::table::clone,
                           [](int (*fn)(void*), void* stack, int flags, void* arg, int* ptid) {
                             ++calls;
                             if (flags & CLONE_PIDFD) {
                               errno = EINVAL;
                               return -1;
                             }
                             return sys::real_calls.clone(fn, stack, flags, arg, ptid);
                           }};
    CHECK(run(cmd({"sh", "-c", "exit 6"})).code == 6);
    CHECK(calls == 2);
    // The failure of the exec still comes back through the shared memory on this path.
    auto bad = spawn_exec(cmd({"/nonexistent/nsentry-cmd"}));
    REQUIRE_FALSE(bad);
    CHECK(bad.error() == std::errc::no_such_file_or_directory);
    CHECK(bad.error().step == step::exec);
    CHECK(calls == 4);
  }
  {
    // No pidfds at all (Linux < 5.2): the handle falls back to the bare pid.
    sys::scoped_override o{&sys::table::clone,
                           [](int (*fn)(void*), void* stack, int flags, void* arg, int* ptid) {
                             if (flags & CLONE_PIDFD) {
                               errno = EINVAL;
                               return -1;
                             }
                             return sys::real_calls.clone(fn, stack, flags, arg, ptid);
                           }};
    sys::scoped_override p{&sys::table::pidfd_open, [](pid_t, unsigned) {
                             errno = ENOSYS;
                             return -1;
                           }};
    auto c = spawn_exec(cmd({"sh", "-c", "exit 9"}));
    REQUIRE_OK(c);
    CHECK(c.value().fd() == -1);
    auto st = c.value().wait();
    REQUIRE_OK(st);
    CHECK(st.value().code == 9);
    auto dropped = spawn_exec(cmd({"sleep", "600"}));
    REQUIRE_OK(dropped);
  }
  CHECK(count_fds() == fds);
  CHECK(count_children() == kids);
}

TEST_CASE("clone failures are errors and leave nothing behind") {
  int fds = count_fds(), kids = count_children();
  sys::scoped_override o{&sys::table::clone, [](int (*)(void*), void*, int, void*, int*) {
                           errno = EAGAIN;
                           return -1;
                         }};
  sys::scoped_override p{&sys::table::clone3, [](sys::clone_args*, size_t) -> long {
                           errno = ENOMEM;
                           return -1;
                         }};
  auto a = spawn_exec(cmd({"true"}));
  REQUIRE_FALSE(a);
  CHECK(a.error().step == step::clone);
  CHECK(a.error() == std::errc::resource_unavailable_try_again);
  spawn_options so;
  so.share_memory = false;
  auto b = spawn_exec(cmd({"true"}), so);
  REQUIRE_FALSE(b);
  CHECK(b.error().step == step::clone3);
  CHECK(count_fds() == fds);
  CHECK(count_children() == kids);
}

TEST_CASE("the child gets the caller's signal mask back, not spawn's all-blocked mask") {
  // If the child kept the mask spawn sets around the clone, SIGUSR1 would stay pending and sh
  // would exit 0 instead of dying of it.
  for (bool share : {true, false}) {
    spawn_options o;
    o.share_memory = share;
    auto st = run(cmd({"sh", "-c", "kill -USR1 $$; exit 0"}), o);
    CHECK(st.signal == SIGUSR1);
  }
}

namespace {
int sigaction_calls = 0;
void noop_handler(int) {}
}  // namespace

TEST_CASE("handled_signals: the child defaults only the named handlers and asks about no other") {
  // Handlers for SIGUSR1 and SIGUSR2 here; the child (vfork-style, so the call counter is
  // shared) reports which of the two it sees at SIG_DFL in its exit code: 1 for SIGUSR1,
  // 2 for SIGUSR2.
  struct sigaction h {
  }, old1{}, old2{};
  h.sa_handler = noop_handler;
  REQUIRE(::sigaction(SIGUSR1, &h, &old1) == 0);
  REQUIRE(::sigaction(SIGUSR2, &h, &old2) == 0);
  sys::scoped_override o{&sys::table::sigaction,
                         [](int sig, const struct sigaction* a, struct sigaction* old) {
                           ++sigaction_calls;
                           return sys::real_calls.sigaction(sig, a, old);
                         }};
  auto child_sees = [](std::optional<sigset_t> handled) {
    sigaction_calls = 0;
    spawn_options so;
    so.handled_signals = handled;
    auto c = spawn(so, []() noexcept {
      struct sigaction a {
      }, b{};
      ::sigaction(SIGUSR1, nullptr, &a);  // not through sys::calls: not counted
      ::sigaction(SIGUSR2, nullptr, &b);
      ::_exit((a.sa_handler == SIG_DFL ? 1 : 0) | (b.sa_handler == SIG_DFL ? 2 : 0));
      return failure{};
    });
    REQUIRE_OK(c);
    auto st = c.value().wait();
    REQUIRE_OK(st);
    return st.value().code;
  };
  // Default: every signal asked about (as posix_spawn does), both handlers defaulted.
  CHECK(child_sees(std::nullopt) == 3);
  CHECK(sigaction_calls >= NSIG - 8);
  // Only SIGUSR1 named: one query and one reset; SIGUSR2 keeps its handler (the caller's
  // declaration is trusted, which is why naming too few breaks the contract).
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, SIGUSR1);
  CHECK(child_sees(one) == 1);
  CHECK(sigaction_calls == 2);
  // An empty set (what the CLI passes): no call at all.
  sigset_t none;
  sigemptyset(&none);
  CHECK(child_sees(none) == 0);
  CHECK(sigaction_calls == 0);
  REQUIRE(::sigaction(SIGUSR1, &old1, nullptr) == 0);
  REQUIRE(::sigaction(SIGUSR2, &old2, nullptr) == 0);
}

TEST_CASE("CLONE_INTO_CGROUP (and the cgroup.procs write on the vfork path) place the child") {
  // The cgroup v2 hierarchy (unified or hybrid): our "0::" line and the cgroup2 mount.
  std::string cg = slurp("/proc/self/cgroup"), mount;
  auto at = cg.find("0::");
  REQUIRE_MESSAGE(at != std::string::npos, "no cgroup v2 hierarchy: " << cg);
  std::string self = cg.substr(at + 3, cg.find('\n', at) - at - 3);
  std::istringstream mi(slurp("/proc/self/mountinfo"));
  for (std::string line; std::getline(mi, line);) {
    std::istringstream f(line);
    std::vector<std::string> w;
    for (std::string x; f >> x;) w.push_back(x);
    for (std::size_t i = 0; i + 1 < w.size(); ++i)
      if (w[i] == "-" && w[i + 1] == "cgroup2") mount = w[4];
  }
  REQUIRE_MESSAGE(!mount.empty(), "cgroup2 is not mounted");
  std::string sub = (self == "/" ? std::string() : self) + "/nsentry-child-test";
  std::string dir = mount + sub;
  ::rmdir(dir.c_str());
  REQUIRE_MESSAGE(::mkdir(dir.c_str(), 0755) == 0, "mkdir " << dir << ": " << std::strerror(errno));
  int fd = ::open(dir.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  int fds = count_fds();
  for (bool share : {true, false}) {
    CAPTURE(share);
    spawn_options o;
    o.share_memory = share;
    o.cgroup_fd = fd;
    auto st = run(cmd({"sh", "-c", "grep -qx '0::" + sub + "' /proc/self/cgroup"}), o);
    CHECK(st.success());
  }
  {
    // A directory that is not a cgroup: vfork-style the child fails its cgroup.procs write
    // and says so through the shared memory; the copying clone3 refuses it itself.
    int notcg = ::open("/tmp", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    REQUIRE(notcg >= 0);
    for (bool share : {true, false}) {
      CAPTURE(share);
      spawn_options o;
      o.share_memory = share;
      o.cgroup_fd = notcg;
      auto c = spawn_exec(cmd({"true"}), o);
      REQUIRE_FALSE(c);
      CHECK(c.error().step == (share ? step::cgroup : step::clone3));
    }
    ::close(notcg);
  }
  {
    // No clone3: fork, then the child writes its own cgroup.procs.
    sys::scoped_override o3{&sys::table::clone3, [](sys::clone_args*, size_t) -> long {
                              errno = ENOSYS;
                              return -1;
                            }};
    spawn_options o;
    o.share_memory = false;
    o.cgroup_fd = fd;
    CHECK(run(cmd({"sh", "-c", "grep -qx '0::" + sub + "' /proc/self/cgroup"}), o).success());
  }
  CHECK(count_fds() == fds);
  ::close(fd);
  CHECK(::rmdir(dir.c_str()) == 0);
}
