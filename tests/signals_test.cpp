// Signals and dispositions (issue 9, "Then prove it" 2): a caller with SIGCHLD ignored, with
// every signal blocked, with a SIGPIPE handler still gets the command's status (or a clear
// error) from run_plan and spawn_exec; a command killed by SIGKILL/SIGSEGV/SIGQUIT/SIGTERM is
// 128+n, nsentry's own processes (the mirror) dump no core even with RLIMIT_CORE unlimited,
// and nothing is left behind.
#include <doctest/doctest.h>
#include <sys/resource.h>

#include <cstdlib>

#include "nsentry/executor.hpp"
#include "nsentry/spawn.hpp"
#include "tests/exec_test_util.hpp"

using namespace nsentry;
using namespace testutil;

namespace {

enum class how { spawn, plan_uts, plan_pid };
const char* name_of(how h) {
  return h == how::spawn ? "spawn_exec" : h == how::plan_uts ? "run_plan(uts)" : "run_plan(pid)";
}

result<child> start(how h, const exec_spec& cmd) {
  if (h == how::spawn) return spawn_exec(cmd);
  plan p;
  p.create = h == how::plan_pid ? ns_set::of<pid_ns, uts_ns>() : ns_set::of<uts_ns>();
  return run_plan(p, cmd);
}

// In a child: the command's status through `h`, or -1 - (the error's errc value) on an error
// that names nothing.
int status_of(how h, const exec_spec& cmd, std::string* err = nullptr) {
  auto c = start(h, cmd);
  if (!c) {
    if (err) *err = c.error().message();
    return -1;
  }
  auto s = c.value().wait();
  if (!s) {
    if (err) *err = s.error().message();
    return -2;
  }
  return s.value().shell_status();
}

}  // namespace

TEST_CASE("hostile dispositions: SIGCHLD ignored, all signals blocked, a SIGPIPE handler") {
  auto cmd = exec_spec::make({"/bin/sh", "-c", "exit 3"});
  REQUIRE_OK(cmd);
  for (how h : {how::spawn, how::plan_uts, how::plan_pid}) {
    INFO(name_of(h));
    int kids = count_children();
    // SIGCHLD ignored: the kernel reaps the direct child; either its status or a clear error.
    int rc = in_child([&] {
      ::signal(SIGCHLD, SIG_IGN);
      std::string err;
      int st = status_of(h, cmd.value(), &err);
      if (st == -2) {
        EXPECT_C(err.find("SIGCHLD") != std::string::npos);
      } else {
        EXPECT_C(st == 3);
      }
      struct sigaction now {};
      ::sigaction(SIGCHLD, nullptr, &now);
      EXPECT_C(now.sa_handler == SIG_IGN);  // left as the caller set it
      return 0;
    });
    CHECK(rc == 0);
    // Every signal blocked in the caller (and SIGCHLD among them).
    rc = in_child([&] {
      sigset_t all;
      sigfillset(&all);
      EXPECT_C(::sigprocmask(SIG_BLOCK, &all, nullptr) == 0);
      EXPECT_C(status_of(h, cmd.value()) == 3);
      sigset_t now;
      ::sigprocmask(SIG_BLOCK, nullptr, &now);
      EXPECT_C(sigismember(&now, SIGTERM) && sigismember(&now, SIGCHLD));  // mask untouched
      return 0;
    });
    CHECK(rc == 0);
    // A SIGPIPE handler (and a SIGCHLD handler that counts).
    rc = in_child([&] {
      static volatile sig_atomic_t pipes = 0;
      struct sigaction sa {};
      sa.sa_handler = [](int) { pipes = pipes + 1; };
      ::sigaction(SIGPIPE, &sa, nullptr);
      ::sigaction(SIGCHLD, &sa, nullptr);
      EXPECT_C(status_of(h, cmd.value()) == 3);
      // The command does not inherit the handler (exec resets it): a write to a closed pipe
      // kills it with SIGPIPE, 128+13.
      auto pipe_cmd = exec_spec::make({"/bin/sh", "-c", "trap - PIPE; yes | true; exit 0"});
      EXPECT_C(pipe_cmd.has_value());
      EXPECT_C(status_of(h, pipe_cmd.value()) == 0);
      return 0;
    });
    CHECK(rc == 0);
    CHECK(count_children() == kids);
  }
}

TEST_CASE("a command killed by SIGKILL/SIGSEGV/SIGQUIT/SIGTERM: 128+n, no core, nothing left") {
  temp_dir cwd;     // the command's
  temp_dir caller;  // the caller's: where a mirror would dump
  int kids = count_children();
  int fds = count_fds();
  for (how h : {how::spawn, how::plan_uts, how::plan_pid}) {
    for (int sig : {SIGKILL, SIGSEGV, SIGQUIT, SIGTERM}) {
      // The init of a pid namespace cannot be killed by SIGQUIT/SIGTERM it has no handler
      // for, neither from inside nor from an ancestor namespace (the kernel drops them): only
      // SIGKILL from outside and a real fault (SIGSEGV) end it.
      if (h == how::plan_pid && (sig == SIGQUIT || sig == SIGTERM)) continue;
      INFO(name_of(h), " signal ", sig);
      int rc = in_child([&] {
        // A core would be written if anything of ours dumped: the limit is lifted in the
        // caller, and only the command itself (ulimit -c 0) may not dump.
        rlimit lim{RLIM_INFINITY, RLIM_INFINITY};
        EXPECT_C(::setrlimit(RLIMIT_CORE, &lim) == 0);
        EXPECT_C(::chdir(caller.path.c_str()) == 0);
        std::vector<std::string> argv;
        bool from_outside = false;
        if (h != how::plan_pid) {
          argv = {"/bin/sh", "-c", "ulimit -c 0; kill -" + std::to_string(sig) + " $$"};
        } else if (sig == SIGSEGV) {
          // pid 1 of its namespace: only a real fault kills it from inside.
          argv = {"/usr/bin/python3", "-c",
                  "import resource, ctypes; resource.setrlimit(resource.RLIMIT_CORE, (0, 0)); "
                  "ctypes.string_at(0)"};
        } else {
          // The namespace's init ignores its own signals: SIGKILL from outside (child::kill
          // kills the mirror, whose parent-death signal takes the command).
          argv = {"/bin/sh", "-c", "ulimit -c 0; exec sleep 30"};
          from_outside = true;
        }
        auto cmd = exec_spec::make(argv, std::nullopt, cwd.path);
        EXPECT_C(cmd.has_value());
        auto c = start(h, cmd.value());
        EXPECT_C(c.has_value());
        if (from_outside) {
          if (sig == SIGKILL) {
            EXPECT_C(c.value().kill().has_value());
          } else {
            // The command is the mirror's only child: signal it by its pid.
            std::string kids_of = slurp("/proc/" + std::to_string(c.value().pid()) + "/task/" +
                                        std::to_string(c.value().pid()) + "/children");
            for (int i = 0; i < 200 && kids_of.empty(); ++i) {
              ::usleep(10000);
              kids_of = slurp("/proc/" + std::to_string(c.value().pid()) + "/task/" +
                              std::to_string(c.value().pid()) + "/children");
            }
            EXPECT_C(!kids_of.empty());
            ::usleep(100000);  // let sh exec sleep
            EXPECT_C(::kill(std::stoi(kids_of), sig) == 0);
          }
        }
        auto s = c.value().wait();
        EXPECT_C(s.has_value());
        if (s.value().shell_status() != 128 + sig)
          std::fprintf(stderr, "%s sig %d: status %d\n", name_of(h), sig, s.value().shell_status());
        EXPECT_C(s.value().shell_status() == 128 + sig);
        return 0;
      });
      CHECK(rc == 0);
      CHECK(cwd.empty());
      CHECK(caller.empty());
      CHECK(count_children() == kids);
    }
  }
  CHECK(count_fds() == fds);
}
