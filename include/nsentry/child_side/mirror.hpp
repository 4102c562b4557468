// nsentry/child_side/mirror.hpp — the fork an entry sequence needs for pid and time.
//
// setns/unshare of pid and time change only what *children* get, so a sequence that joined or
// created either must fork: the grandchild runs the final step (usually exec) in the new
// namespaces, and the process that forked it stays behind as its "mirror": it waits and
// exits with the grandchild's status, or dies of the grandchild's signal, so that whoever
// waits for the mirror sees the command's own status.
//
// The mirror never dumps core (it is a copy of the caller that never exec'd, possibly with its
// cwd in the container's root): it turns non-dumpable before re-raising a signal. The
// grandchild's parent-death signal is SIGKILL, so killing the mirror kills the command.
//
// The mirror holds nothing of the caller's: once the grandchild exists it closes every fd
// above 2 but the pipe that tells the grandchild it lives (close_range; a close loop before
// Linux 5.9), so a pipe or socket the caller closes
// reaches EOF while the command runs; it waits by pid, which needs no fd.
//
// Contracts: noexcept, allocation-free, async-signal-safe; never returns. Linux >= 5.3
// (clone3; fork(2) where clone3 is missing). `final` is `failure() noexcept`.
#pragma once

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>

#include "nsentry/channel.hpp"
#include "nsentry/exec_spec.hpp"
#include "nsentry/sys.hpp"
#include "nsentry/trace.hpp"

namespace nsentry::inline v0::child_side {

// Exits like a process that ended with `info` (the status of a waited child). Never dumps.
[[noreturn]] inline void exit_like(const siginfo_t& info) noexcept {
  if (info.si_code == CLD_EXITED) ::_exit(info.si_status);
  int sig = info.si_status;
  sys::calls.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);  // a core-dumping signal then dumps nothing
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sys::calls.sigaction(sig, &dfl, nullptr);
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, sig);
  sys::calls.thread_sigmask(SIG_UNBLOCK, &one, nullptr);
  sys::calls.kill(sys::calls.getpid(), sig);
  ::_exit(128 + sig);
}

// Closes every fd from 3 up but `keep` (nothing else is needed to wait by pid).
inline void close_fds_but(int keep) noexcept {
  const unsigned k = static_cast<unsigned>(keep);
  bool done = (k <= 3 || sys::calls.close_range(3, k - 1, 0) == 0) &&
              sys::calls.close_range(k + 1, ~0U, 0) == 0;
  if (done) return;
  struct rlimit rl {};
  rlim_t top =
      ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? rl.rlim_cur : 65536;
  for (rlim_t fd = 3; fd < top; ++fd)
    if (static_cast<int>(fd) != keep) sys::calls.close(static_cast<int>(fd));
}

// Forks; the grandchild runs `final` and reports its failure on `channel`; we mirror it.
template <child_function Final>
[[noreturn]] void fork_and_mirror(int channel, Final& final, trace_buffer* tr = nullptr) noexcept {
  // The grandchild's parent-death signal can be set only after the fork; this pipe (its
  // write end held by us alone) tells it whether we died in between. getppid() cannot: in a
  // new pid namespace it is 0 either way.
  int alive[2];
  if (sys::calls.pipe2(alive, O_CLOEXEC | O_NONBLOCK) == -1) {
    send(channel, record_type::failure, failure::at(step::fork, errno));
    ::_exit(exit_runner_failed);
  }
  // We wait for the grandchild: SIGCHLD ignored (inherited from the caller) would have the
  // kernel reap it and lose its status. Default (the command starts with it default too).
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sys::calls.sigaction(SIGCHLD, &dfl, nullptr);
  const std::uint64_t t0 = tr ? trace_now() : 0;
  sys::clone_args args;
  args.exit_signal = SIGCHLD;
  long pid = sys::calls.clone3(&args, sizeof args);
  if (pid == -1 && errno == ENOSYS) pid = sys::calls.fork();
  if (pid == -1) {
    send(channel, record_type::failure, failure::at(step::fork, errno));
    ::_exit(exit_runner_failed);
  }
  if (pid == 0) {
    record_step(tr, step::fork, t0);
    sys::calls.close(alive[1]);
    failure f{};
    char c;
    if (sys::calls.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) == -1)
      f = failure::at(step::prctl, errno);
    else if (sys::calls.read(alive[0], &c, 1) != -1 || errno != EAGAIN)
      ::_exit(exit_runner_failed);  // the mirror died already: nobody is waiting for us
    sys::calls.close(alive[0]);
    if (!f.failed()) f = final();
    if (f.failed()) send(channel, record_type::failure, f);
    ::_exit(f.failed() ? exit_status_for(f) : 0);
  }
  sys::calls.close(alive[0]);
  sys::calls.close(channel);  // the grandchild's copy alone now tells the parent about exec
  sys::calls.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  // Everything but alive[1]: its write end open is how the grandchild knows we are alive.
  close_fds_but(alive[1]);
  siginfo_t info{};
  while (sys::calls.waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED) == -1) {
    if (errno != EINTR) ::_exit(exit_runner_failed);
  }
  exit_like(info);
}

}  // namespace nsentry::inline v0::child_side
