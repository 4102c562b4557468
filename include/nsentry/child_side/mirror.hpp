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
// Failures: before the fork and in the grandchild, a failure record on the channel; the
// mirror's own after it, one line on stderr (the channel is the grandchild's then); exit 125.
//
// Contracts: noexcept, allocation-free, async-signal-safe; never returns. Linux >= 5.3
// (clone3; fork(2) where clone3 is missing). `final` is `failure() noexcept`.
#pragma once

#include <signal.h>
#include <string.h>  // strerrordesc_np (glibc >= 2.32)
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <string_view>

#include "nsentry/channel.hpp"
#include "nsentry/exec_spec.hpp"
#include "nsentry/sys.hpp"
#include "nsentry/trace.hpp"

namespace nsentry::inline v0::child_side {

// Exits like a process that ended with `info` (the status of a waited child). Never dumps.
[[noreturn]] inline void exit_like(const siginfo_t& info) noexcept {
  if (info.si_code == CLD_EXITED) sys::exit_process(info.si_status);
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
  sys::exit_process(128 + sig);
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

// One line on stderr for a failure the mirror cannot send: once the grandchild exists, the
// channel is the grandchild's alone (its EOF tells the parent that the command exec'd), so the
// mirror's own failures go where the command's stderr goes:
//   nsentry mirror: waitid(pid 42): No child processes (errno 10)
inline void report_on_stderr(step s, int err, long pid) noexcept {
  char line[192];
  std::size_t n = 0;
  auto put = [&](std::string_view part) noexcept {
    for (char c : part)
      if (n < sizeof line - 1) line[n++] = c;
  };
  auto put_number = [&](unsigned long v) noexcept {
    char digits[24];
    std::size_t d = 0;
    do digits[d++] = static_cast<char>('0' + v % 10);
    while ((v /= 10) != 0);
    while (d > 0 && n < sizeof line - 1) line[n++] = digits[--d];
  };
  put("nsentry mirror: ");
  put(name_of(s));
  put("(pid ");
  put_number(static_cast<unsigned long>(pid));
  put("): ");
  const char* desc = ::strerrordesc_np(err);  // glibc >= 2.32: a static table, no locale
  put(desc ? desc : "unknown error");
  put(" (errno ");
  put_number(static_cast<unsigned long>(err));
  put(")");
  line[n++] = '\n';
  (void)sys::calls.write(STDERR_FILENO, line, n);
}

// Forks; the grandchild runs `final` and reports its failure on `channel`; we mirror it. A
// failure before the fork, and the grandchild's, go over `channel` (exit 125 / the
// failure's status); the mirror's own after the fork (waitid) is one line on stderr
// (report_on_stderr) and exit 125.
template <child_function Final>
[[noreturn]] void fork_and_mirror(int channel, Final& final, trace_buffer* tr = nullptr) noexcept {
  auto fail = [channel](failure f) noexcept {
    send(channel, record_type::failure, f);
    sys::exit_process(exit_runner_failed);
  };
  // The grandchild's parent-death signal can be set only after the fork; this pipe (its
  // write end held by us alone) tells it whether we died in between. getppid() cannot: in a
  // new pid namespace it is 0 either way.
  raw_pipe alive;
  if (int e = alive.make(O_CLOEXEC | O_NONBLOCK); e != 0) fail(failure::at(step::pipe, e));
  // We wait for the grandchild: SIGCHLD ignored (inherited from the caller) would have the
  // kernel reap it and lose its status. Default (the command starts with it default too).
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  if (sys::calls.sigaction(SIGCHLD, &dfl, nullptr) == -1) fail(failure::at(step::sigaction, errno));
  const std::uint64_t t0 = tr ? trace_now() : 0;
  sys::clone_args args;
  args.exit_signal = SIGCHLD;
  long pid = sys::calls.clone3(&args, sizeof args);
  if (pid == -1 && errno == ENOSYS) pid = sys::calls.fork();
  if (pid == -1) fail(failure::at(step::fork, errno));
  if (pid == 0) {
    record_step(tr, step::fork, t0);
    alive.write_end.reset();
    failure f{};
    char c;
    if (sys::calls.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) == -1) {
      f = failure::at(step::prctl, errno);
    } else if (ssize_t n = sys::calls.read(alive.read_end.get(), &c, 1); n != -1) {
      // End of file: the mirror died already, nobody waits for us.
      sys::exit_process(exit_runner_failed);
    } else if (errno != EAGAIN) {
      f = failure::at(step::read, errno);
    }
    alive.read_end.reset();
    if (!f.failed()) f = final();
    if (f.failed()) send(channel, record_type::failure, f);
    sys::exit_process(f.failed() ? exit_status_for(f) : 0);
  }
  alive.read_end.reset();
  sys::calls.close(channel);  // the grandchild's copy alone now tells the parent about exec
  sys::calls.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  // Everything but the write end: its being open is how the grandchild knows we are alive.
  close_fds_but(alive.write_end.get());
  siginfo_t info{};
  while (sys::calls.waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED) == -1) {
    if (errno == EINTR) continue;
    report_on_stderr(step::wait, errno, pid);  // the grandchild dies with us (SIGKILL)
    sys::exit_process(exit_runner_failed);
  }
  exit_like(info);
}

}  // namespace nsentry::inline v0::child_side
