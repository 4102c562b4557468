// nsentry/child_side/start.hpp — the first code a spawned child runs: it makes the child a
// clean place for the caller's child function, then runs it and reports its failure.
//
// What nsentry relies on of glibc after a raw clone3 (or clone(3) with CLONE_VM): nothing that
// reads the thread descriptor's cached tid (raise(), pthread_kill(), pthread_self()-based
// calls would signal the *parent's* thread), no malloc, no stdio, no locks a parent thread may
// have held at clone time. getpid goes straight to the kernel (sys::calls.getpid); errno is
// the thread's own TLS slot, which the child inherits and may use. glibc >= 2.25 caches no pid.
//
// Contracts: noexcept, allocation-free, async-signal-safe; never returns (exits with 0, or
// with exit_status_for(failure) after reporting it: in the frame's report slot, the parent's
// memory on the vfork path, or else on its report fd).
#pragma once

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "nsentry/channel.hpp"
#include "nsentry/exec_spec.hpp"
#include "nsentry/sys.hpp"

namespace nsentry::inline v0::child_side {

template <class Fn>
struct start_frame {
  Fn* fn;
  int report_fd;         // where a failure record goes
  int cgroup_fd;         // >= 0: write our pid to its cgroup.procs (clone could not place us)
  const sigset_t* mask;  // the parent's signal mask, restored here
  // The signals that may have a handler in the parent (spawn_options::handled_signals);
  // nullptr: every signal.
  const sigset_t* handled = nullptr;
  // Non-null on the vfork path without a report fd: the failure is stored here instead (the
  // parent shares our memory and resumes only once we have exec'd or exited).
  failure* report_slot = nullptr;
};

// Moves the calling process into the cgroup v2 directory `cgroup_fd`.
inline failure join_cgroup_by_write(int cgroup_fd) noexcept {
  int fd = sys::calls.openat(cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC, 0);
  if (fd == -1) return failure::at(step::cgroup, errno);
  ssize_t n;
  while ((n = sys::calls.write(fd, "0", 1)) == -1 && errno == EINTR) {
  }
  int err = errno;
  sys::calls.close(fd);
  if (n != 1) return failure::at(step::cgroup, err);
  return {};
}

// Handlers inherited from the parent would run in the child before exec (against shared
// memory on the vfork path): default them, as posix_spawn does. Ignored signals stay ignored.
// One rt_sigaction query per signal of `only` (every signal when null), and a second call for
// each that has a handler.
inline void default_signal_handlers(const sigset_t* only) noexcept {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (only != nullptr && sigismember(only, sig) != 1) continue;
    struct sigaction old {};
    if (sys::calls.sigaction(sig, nullptr, &old) == 0 && old.sa_handler != SIG_IGN &&
        old.sa_handler != SIG_DFL)
      sys::calls.sigaction(sig, &dfl, nullptr);
  }
}

template <child_function Fn>
int start(void* arg) noexcept {
  auto* f = static_cast<start_frame<Fn>*>(arg);
  default_signal_handlers(f->handled);
  sys::calls.thread_sigmask(SIG_SETMASK, f->mask, nullptr);
  failure r{};
  if (f->cgroup_fd >= 0) r = join_cgroup_by_write(f->cgroup_fd);
  if (!r.failed()) r = (*f->fn)();
  if (r.failed()) {
    if (f->report_slot != nullptr) {
      // The step last, in one store: failed() reads it, and a SIGKILL between the stores
      // must not leave a record that reads as complete.
      f->report_slot->err = r.err;
      f->report_slot->kind = r.kind;
      f->report_slot->missing = r.missing;
      std::atomic_ref<nsentry::step>(f->report_slot->step).store(r.step, std::memory_order_release);
    } else {
      send(f->report_fd, record_type::failure, r);
    }
    sys::exit_process(exit_status_for(r));
  }
  sys::exit_process(0);
}

}  // namespace nsentry::inline v0::child_side
