// nsentry/child.hpp — the handle on a child process, and its exit status.
//
//   NSENTRY_TRY(auto st, c.wait());   // st.shell_status(): code, or 128+signal
//
// Contract: parent side; move-only; not thread-safe per object; owns the pidfd; wait() reaps;
// a child dropped unwaited is SIGKILLed and reaped, so no zombie is left behind. The
// destructor never throws and keeps errno.
//
// SIGCHLD: nsentry never changes the caller's disposition. A caller whose SIGCHLD is ignored
// (SIG_IGN, or SA_NOCLDWAIT — often inherited from a careless parent) has its children reaped
// by the kernel, so their statuses are lost: wait() then fails with errc::sigchld_ignored
// (instead of a bare ECHILD) telling the caller to restore SIG_DFL. Processes nsentry creates
// that wait themselves (the mirror of child_side/mirror.hpp) reset SIGCHLD to SIG_DFL, so the
// command's status still reaches the caller; the nsentry CLI resets its own, as nsenter does.
#pragma once

#include <signal.h>
#include <sys/wait.h>

#include <utility>

#include "nsentry/error.hpp"
#include "nsentry/fd.hpp"
#include "nsentry/sys.hpp"

namespace nsentry::inline v0 {

struct exit_status {
  int code = 0;    // exit code, when signal == 0
  int signal = 0;  // the terminating signal, or 0
  // What a shell reports: the code, or 128 + the signal.
  constexpr int shell_status() const noexcept { return signal ? 128 + signal : code; }
  constexpr bool success() const noexcept { return signal == 0 && code == 0; }
  bool operator==(const exit_status&) const = default;
};

// Is SIGCHLD ignored in this process (SIG_IGN or SA_NOCLDWAIT: children are reaped unwaited)?
inline bool sigchld_ignored() noexcept {
  struct sigaction sa {};
  if (sys::calls.sigaction(SIGCHLD, nullptr, &sa) == -1) return false;
  return sa.sa_handler == SIG_IGN || (sa.sa_flags & SA_NOCLDWAIT) != 0;
}

// Contract: parent side; not thread-safe per object; the destructor never throws.
class child {
 public:
  child() = default;
  child(pidfd fd, pid_t pid) noexcept : fd_(std::move(fd)), pid_(pid) {}
  child(child&& o) noexcept : fd_(std::move(o.fd_)), pid_(std::exchange(o.pid_, 0)) {}
  child& operator=(child&& o) noexcept {
    if (this != &o) {
      kill_and_reap();
      fd_ = std::move(o.fd_);
      pid_ = std::exchange(o.pid_, 0);
    }
    return *this;
  }
  child(const child&) = delete;
  child& operator=(const child&) = delete;
  ~child() { kill_and_reap(); }

  pid_t pid() const noexcept { return pid_; }
  int fd() const noexcept { return fd_.get(); }  // the pidfd; -1 on kernels without pidfds
  bool running() const noexcept { return pid_ != 0; }

  // Blocks until the child exits and reaps it. The handle is empty afterwards.
  result<exit_status> wait() {
    if (pid_ == 0) return nsentry_error(errc::no_child, step::wait);
    auto info = fd_.valid() ? wait_id(static_cast<idtype_t>(P_PIDFD), fd_.get(), WEXITED)
                            : wait_id(P_PID, static_cast<id_t>(pid_), WEXITED);
    if (!info) {
      if (info.error() == std::errc::no_child_process && sigchld_ignored()) {
        error e = nsentry_error(errc::sigchld_ignored, step::wait);
        e.pid = std::exchange(pid_, 0);  // reaped by the kernel: nothing left to wait for or kill
        fd_ = {};
        e.cause = std::make_shared<const error>(std::move(info).error());
        return e;
      }
      return with_pid(std::move(info).error(), pid_);
    }
    pid_ = 0;
    fd_ = {};
    exit_status st;
    if (info.value().si_code == CLD_EXITED)
      st.code = info.value().si_status;
    else
      st.signal = info.value().si_status;
    return st;
  }

  result<void> kill(int sig = SIGKILL) const {
    if (pid_ == 0) return nsentry_error(errc::no_child, step::kill);
    if (fd_.valid()) return fd_.send_signal(sig);
    if (sys::calls.kill(pid_, sig) == -1) return with_pid(posix_error(step::kill), pid_);
    return success();
  }

 private:
  void kill_and_reap() noexcept {
    if (pid_ == 0) return;
    int saved = errno;
    if (fd_.valid())
      sys::calls.pidfd_send_signal(fd_.get(), SIGKILL, nullptr, 0);
    else
      sys::calls.kill(pid_, SIGKILL);
    siginfo_t info{};
    if (fd_.valid()) {
      while (sys::calls.waitid(static_cast<idtype_t>(P_PIDFD), fd_.get(), &info, WEXITED) == -1 &&
             errno == EINTR) {
      }
    } else {
      while (sys::calls.waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED) == -1 &&
             errno == EINTR) {
      }
    }
    pid_ = 0;
    fd_ = {};
    errno = saved;
  }

  nsentry::pidfd fd_;
  pid_t pid_ = 0;
};

}  // namespace nsentry::inline v0
