// nsentry/spawn.hpp — starting a child process that runs a child function (parent side).
//
//   NSENTRY_TRY(auto cmd, exec_spec::make({"ip", "link"}));
//   NSENTRY_TRY(auto c, spawn_exec(cmd));          // vfork-style: cost independent of our RSS
//   NSENTRY_TRY(auto st, c.wait());
//
// The child runs only child-side code (child_side/, async-signal-safe, no allocation): the
// function given to spawn must be `failure() noexcept` (a throwing lambda does not compile).
// Its failure travels back and becomes an ordinary nsentry::error here: vfork-style, the child
// stores it in our memory (we resume only after its exec or exit); a copying child sends it as
// a record over a CLOEXEC pipe, whose closing by exec means success.
//
// Contracts: thread-safe (all signals are blocked in the calling thread only, for the
// duration of the clone); Linux >= 5.2 for CLONE_PIDFD through clone(3), >= 5.3 for clone3
// (ENOSYS falls back to fork + pidfd_open, and to a bare pid before 5.3).
#pragma once

#include <signal.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "nsentry/channel.hpp"
#include "nsentry/child.hpp"
#include "nsentry/child_side/start.hpp"
#include "nsentry/error.hpp"
#include "nsentry/exec_spec.hpp"
#include "nsentry/fd.hpp"
#include "nsentry/sys.hpp"

namespace nsentry::inline v0 {

struct spawn_options {
  // vfork-style: the child borrows our memory (CLONE_VM|CLONE_VFORK on its own stack) and we
  // resume once it has exec'd or exited, so the cost does not grow with our RSS. Only for
  // children that go straight to exec; a child that must wait for us needs a copy. Pass false
  // after joining or creating a time namespace for children: the kernel keeps a CLONE_VM child
  // in the parent's time namespace (exec moves it over only since Linux 6.0:
  // kernel_has(feature::exec_enters_time_namespace)).
  bool share_memory = true;
  // A cgroup v2 directory fd: the child starts there (CLONE_INTO_CGROUP, Linux >= 5.7; on the
  // vfork path and without clone3 the child writes "0" to its cgroup.procs instead).
  int cgroup_fd = -1;
  // Where the child reports failures. -1: spawn waits for the exec (so the returned child has
  // exec'd) and gets the failure through our shared memory on the vfork path, through a
  // CLOEXEC pipe it makes for a copying child. Otherwise the caller owns the exchange on this
  // fd (the child's end of a channel, see serve()), and spawn returns as soon as the child
  // exists.
  int report_fd = -1;
  std::size_t stack_size = 64 * 1024;  // for the vfork-style child
  // The signals for which this process may have a handler installed. The child sets them back
  // to SIG_DFL before it unblocks signals: a handler would otherwise run in the child, on our
  // memory on the vfork path. nullopt (the default): every signal, found by asking the kernel
  // about each (62 rt_sigaction calls, about 20 us on the development machine; posix_spawn
  // does the same). A program that knows which handlers it installs names those: the nsentry
  // CLI installs none and passes an empty set (dispositions that are handlers do not survive
  // exec, so a freshly exec'd program has none until it installs one; sanitizer builds, whose
  // runtimes install some, pass nullopt). Naming too few breaks the contract: a signal
  // arriving between the child's unmask and its exec could run a handler in the child.
  std::optional<sigset_t> handled_signals;
};

// Starts a child running `fn`, which normally ends in exec_spec::exec(). Returns once the
// child has exec'd (or failed: the error names the child's step) when report_fd is -1. On the
// vfork path with report_fd -1, a process that `fn` forks cannot report through spawn (its
// failure would land in its own copy of memory): such an `fn` passes a report_fd.
template <class Fn>
requires child_function<std::remove_reference_t<Fn>> result<child> spawn(const spawn_options& opt,
                                                                         Fn&& fn) {
  using F = std::remove_reference_t<Fn>;
  const bool share = opt.share_memory;
  // vfork-style with no caller channel: the child stores its failure in `reported` (it shares
  // our memory, and CLONE_VFORK resumes us only after its exec or exit), so no pipe is needed.
  const bool report_in_memory = share && opt.report_fd == -1;
  failure reported{};
  pipe_pair report;
  int report_fd = opt.report_fd;
  if (report_fd == -1 && !report_in_memory) {
    NSENTRY_TRY(report, pipe_pair::make());
    report_fd = report.write_end.get();
  }
  std::unique_ptr<char[]> stack;
  if (share) stack.reset(new char[opt.stack_size]);  // not zero-filled: the child writes first

  sigset_t all, old;
  sigfillset(&all);
  if (sys::calls.thread_sigmask(SIG_BLOCK, &all, &old) == -1) return posix_error(step::sigprocmask);
  child_side::start_frame<F> frame{&fn,
                                   report_fd,
                                   -1,
                                   &old,
                                   opt.handled_signals ? &*opt.handled_signals : nullptr,
                                   report_in_memory ? &reported : nullptr};

  pid_t pid = -1;
  int pfd = -1;
  int err = 0;
  if (share) {
    frame.cgroup_fd = opt.cgroup_fd;
    int flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD;
    pid =
        sys::calls.clone(&child_side::start<F>, stack.get() + opt.stack_size, flags, &frame, &pfd);
    if (pid == -1 && errno == EINVAL) {  // before Linux 5.2: no CLONE_PIDFD
      pfd = -1;
      pid = sys::calls.clone(&child_side::start<F>, stack.get() + opt.stack_size,
                             flags & ~CLONE_PIDFD, &frame, nullptr);
    }
    err = errno;
  } else {
    sys::clone_args args;
    args.flags = CLONE_PIDFD;
    args.pidfd = reinterpret_cast<std::uint64_t>(&pfd);
    args.exit_signal = SIGCHLD;
    if (opt.cgroup_fd >= 0) {
      args.flags |= CLONE_INTO_CGROUP;
      args.cgroup = static_cast<std::uint64_t>(opt.cgroup_fd);
    }
    long r = sys::calls.clone3(&args, sizeof args);
    if (r == -1 && (errno == ENOSYS || (errno == E2BIG && opt.cgroup_fd >= 0))) {
      // No clone3 (Linux < 5.3), or no clone_args v2 (< 5.7): fork, and place the child by hand.
      frame.cgroup_fd = opt.cgroup_fd;
      pfd = -1;
      r = sys::calls.fork();
    }
    if (r == 0) child_side::start<F>(&frame);
    pid = static_cast<pid_t>(r);
    err = errno;
  }
  sys::calls.thread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid == -1) return posix_error(share ? step::clone : step::clone3, err);

  nsentry::pidfd handle;
  if (pfd >= 0) {
    handle = nsentry::pidfd(unique_fd(pfd), pid);
  } else if (auto p = nsentry::pidfd::open(pid)) {
    handle = std::move(p).value();  // only a fallback path gets here; ENOSYS leaves a bare pid
  }
  child c(std::move(handle), pid);
  if (opt.report_fd != -1) return c;
  if (report_in_memory) {
    if (reported.failed()) {
      (void)c.wait();  // the child has exited after storing its failure
      return with_pid(error_from(reported), pid);
    }
    return c;
  }

  report.write_end.reset();
  NSENTRY_TRY(auto rec, read_record(report.read_end.get()));
  if (rec) {
    (void)c.wait();  // the child has exited (or is exiting) after reporting
    return with_pid(error_from(rec->as_failure()), pid);
  }
  return c;
}

// spawn() for the common case: a child that only execs `cmd`. An exec error names the command,
// a chdir error the working directory.
inline result<child> spawn_exec(const exec_spec& cmd, spawn_options opt = {}) {
  auto c = spawn(opt, [&cmd]() noexcept { return cmd.exec(); });
  if (!c) return cmd.name_failure(std::move(c).error());
  return c;
}

}  // namespace nsentry::inline v0
