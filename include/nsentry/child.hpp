// nsentry/child.hpp — spawning a child process, the child-side error channel, and the handle.
//
//   NSENTRY_TRY(auto cmd, exec_spec::make({"ip", "link"}));
//   NSENTRY_TRY(auto c, spawn_exec(cmd));          // vfork-style: cost independent of our RSS
//   NSENTRY_TRY(auto st, c.wait());                 // st.shell_status(): code, or 128+signal
//
// Between clone and exec the child runs only code that neither allocates nor throws: everything
// it needs (argv, envp, candidate paths, fds) is prepared by the parent first. A child-side
// failure travels to the parent as a fixed-size (step, kind, errno) record over a CLOEXEC
// channel and becomes an ordinary nsentry::error there; exec closing the channel means success.
//
// Contracts:
//  - spawn/spawn_exec: thread-safe (they block all signals in the calling thread only, for the
//    duration of the clone); parent side; Linux >= 5.2 for CLONE_PIDFD through clone(3),
//    >= 5.3 for clone3 (ENOSYS falls back to fork + pidfd_open, and to a bare pid before 5.3).
//  - child_fn: called in the child; must be allocation-free, exception-free, async-signal-safe.
//  - child: move-only; owns the pidfd; wait() reaps; a child dropped unwaited is SIGKILLed and
//    reaped, so no zombie is left behind.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nsentry/error.hpp"
#include "nsentry/fd.hpp"
#include "nsentry/ns_kind.hpp"
#include "nsentry/probe.hpp"
#include "nsentry/sys.hpp"

extern char** environ;

namespace nsentry {

// --- child-side failure records --------------------------------------------------------------

// What a child was doing when it failed. The parent maps it back to a string literal step.
enum class child_step : std::uint8_t {
  none = 0,  // no failure (the child's function finished its job)
  setns,
  unshare,
  setresuid,
  setresgid,
  setgroups,
  chdir,
  cgroup,
  oom_score_adj,
  open_ns,
  verify_ns,
  sync,
  fork,
  prctl,
  exec,
  setsid,
};

constexpr std::string_view step_name(child_step s) noexcept {
  switch (s) {
    case child_step::none: return "child";
    case child_step::setns: return "setns";
    case child_step::unshare: return "unshare";
    case child_step::setresuid: return "setresuid";
    case child_step::setresgid: return "setresgid";
    case child_step::setgroups: return "setgroups";
    case child_step::chdir: return "chdir";
    case child_step::cgroup: return "cgroup.procs";
    case child_step::oom_score_adj: return "oom_score_adj";
    case child_step::open_ns: return "open";
    case child_step::verify_ns: return "verify";
    case child_step::sync: return "sync";
    case child_step::fork: return "fork";
    case child_step::prctl: return "prctl";
    case child_step::exec: return "exec";
    case child_step::setsid: return "setsid";
  }
  return "child";
}

inline constexpr std::uint8_t no_kind = 0xff;

// A child-side failure: plain data, safe to build and copy between clone and exec.
struct child_failure {
  child_step step = child_step::none;
  int err = 0;
  std::uint8_t kind = no_kind;  // an ns_kind, or no_kind
  // Set for errc::not_joined (err == 0): the kinds, as clone flags, that did not take.
  std::uint32_t missing = 0;

  constexpr bool failed() const noexcept { return step != child_step::none; }
  static constexpr child_failure at(child_step s, int e, std::uint8_t k = no_kind) noexcept {
    return {s, e, k, 0};
  }
};

// The wire record: fixed size, written with one write(2) (atomic on a pipe below PIPE_BUF).
struct child_record {
  std::uint8_t type = 0;  // record_type
  std::uint8_t step = 0;
  std::uint8_t kind = no_kind;
  std::uint8_t pad = 0;
  std::int32_t err = 0;
  std::uint32_t missing = 0;
};
static_assert(sizeof(child_record) == 12);

// child_pid carries a pid (in `err`) and finished means "done, no failure": used by the runc
// init's stages (runc/init.hpp), whose last stage reports its pid and its completion.
enum class record_type : std::uint8_t {
  failure = 1,
  maps_please = 2,
  time_please = 3,
  child_pid = 4,
  finished = 5,
};

// Child side: one write, no allocation. Errors are ignored: the exit status still says failure.
inline void send_record(int fd, record_type t, const child_failure& f = {}) noexcept {
  child_record r;
  r.type = static_cast<std::uint8_t>(t);
  r.step = static_cast<std::uint8_t>(f.step);
  r.kind = f.kind;
  r.err = f.err;
  r.missing = f.missing;
  while (sys::calls.write(fd, &r, sizeof r) == -1 && errno == EINTR) {
  }
}

// Parent side: the nsentry::error a child record stands for.
inline error error_from(const child_failure& f) {
  error e = f.err != 0 ? posix_error(step_name(f.step), f.err)
                       : nsentry_error(errc::not_joined, step_name(f.step));
  if (f.kind < ns_kind_count) e.kind = static_cast<ns_kind>(f.kind);
  if (f.missing != 0) {
    std::string names;
    for (ns_kind k : all_ns_kinds)
      if (f.missing & static_cast<std::uint32_t>(clone_flag_of(k))) {
        if (!names.empty()) names += ',';
        names += name_of(k);
      }
    e.detail = "still outside " + names;
  }
  return e;
}

inline child_failure failure_from(const child_record& r) noexcept {
  return {static_cast<child_step>(r.step), r.err, r.kind, r.missing};
}

// Reads one record; nullopt at end of file (the other side exec'd or exited).
inline result<std::optional<child_record>> read_record(int fd) {
  child_record r;
  NSENTRY_TRY(auto n, read_full(fd, std::as_writable_bytes(std::span(&r, 1))));
  if (n == 0) return std::optional<child_record>{};
  if (n != sizeof r) return nsentry_error(errc::child_failed, "read", "short record from child");
  return std::optional<child_record>{r};
}

// The exit status nsentry's child uses for its own failures (before exec), like a shell's.
constexpr int child_exit_code(const child_failure& f) noexcept {
  if (f.step != child_step::exec) return 125;
  return f.err == ENOENT || f.err == ENOTDIR ? 127 : 126;
}

// --- exec, prepared ----------------------------------------------------------------------------

// A command ready to exec without allocating: argv/envp arrays and every PATH candidate are
// built in the parent. Contract: make() allocates (parent side); exec() is async-signal-safe.
class exec_spec {
 public:
  // `env` nullopt: the caller's environment at make() time. PATH search as execvp(3) does it
  // when argv[0] has no '/', using the PATH of `env` (or the default shell search path).
  static result<exec_spec> make(std::vector<std::string> argv,
                                std::optional<std::vector<std::string>> env = std::nullopt,
                                std::optional<std::string> workdir = std::nullopt) {
    if (argv.empty() || argv[0].empty())
      return nsentry_error(errc::usage, "exec", "empty command");
    exec_spec s;
    s.args_ = std::move(argv);
    if (env) {
      s.env_ = std::move(*env);
    } else {
      for (char** e = environ; e && *e; ++e) s.env_.emplace_back(*e);
    }
    s.workdir_ = std::move(workdir);
    const std::string& name = s.args_[0];
    if (name.find('/') != std::string::npos) {
      s.candidates_.push_back(name);
    } else {
      std::string_view path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
      for (const auto& e : s.env_)
        if (e.rfind("PATH=", 0) == 0) path = std::string_view(e).substr(5);
      while (true) {
        auto colon = path.find(':');
        std::string_view dir = path.substr(0, colon);
        s.candidates_.push_back((dir.empty() ? std::string(".") : std::string(dir)) + "/" + name);
        if (colon == std::string_view::npos) break;
        path = path.substr(colon + 1);
      }
    }
    s.link();
    return s;
  }

  exec_spec(exec_spec&& o) noexcept { *this = std::move(o); }
  exec_spec& operator=(exec_spec&& o) noexcept {
    args_ = std::move(o.args_);
    env_ = std::move(o.env_);
    candidates_ = std::move(o.candidates_);
    workdir_ = std::move(o.workdir_);
    link();
    return *this;
  }
  exec_spec(const exec_spec&) = delete;
  exec_spec& operator=(const exec_spec&) = delete;

  const std::vector<std::string>& argv() const noexcept { return args_; }
  const std::vector<std::string>& candidates() const noexcept { return candidates_; }

  // chdir (if asked) and exec the first candidate that runs. Returns only on failure: ENOENT
  // when no candidate exists, EACCES if one existed but was not executable, else the error.
  child_failure exec() const noexcept {
    if (workdir_ && sys::calls.chdir(workdir_->c_str()) == -1)
      return child_failure::at(child_step::chdir, errno);
    int err = ENOENT;
    bool denied = false;
    for (const auto& c : candidates_) {
      sys::calls.execve(c.c_str(), argv_.data(), envp_.data());
      err = errno;
      if (err == EACCES) {
        denied = true;
      } else if (err != ENOENT && err != ENOTDIR && err != ELOOP && err != ENAMETOOLONG) {
        return child_failure::at(child_step::exec, err);
      }
    }
    return child_failure::at(child_step::exec, denied ? EACCES : err);
  }

 private:
  exec_spec() = default;
  void link() {
    argv_.clear();
    envp_.clear();
    for (auto& a : args_) argv_.push_back(a.data());
    argv_.push_back(nullptr);
    for (auto& e : env_) envp_.push_back(e.data());
    envp_.push_back(nullptr);
  }

  std::vector<std::string> args_, env_, candidates_;
  std::optional<std::string> workdir_;
  std::vector<char*> argv_, envp_;
};

// --- the child handle ----------------------------------------------------------------------------

struct exit_status {
  int code = 0;    // exit code, when signal == 0
  int signal = 0;  // the terminating signal, or 0
  // What a shell reports: the code, or 128 + the signal.
  constexpr int shell_status() const noexcept { return signal ? 128 + signal : code; }
  constexpr bool success() const noexcept { return signal == 0 && code == 0; }
  bool operator==(const exit_status&) const = default;
};

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
    if (pid_ == 0) return nsentry_error(errc::usage, "wait", "no child");
    auto info = fd_.valid() ? wait_id(static_cast<idtype_t>(P_PIDFD), fd_.get(), WEXITED)
                            : wait_id(P_PID, static_cast<id_t>(pid_), WEXITED);
    if (!info) return with_pid(std::move(info).error(), pid_);
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
    if (pid_ == 0) return nsentry_error(errc::usage, "kill", "no child");
    if (fd_.valid()) return fd_.send_signal(sig);
    if (sys::calls.kill(pid_, sig) == -1) return with_pid(posix_error("kill"), pid_);
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

// --- spawning ------------------------------------------------------------------------------------

struct spawn_options {
  // vfork-style: the child borrows our memory (CLONE_VM|CLONE_VFORK on its own stack) and we
  // resume once it has exec'd or exited, so the cost does not grow with our RSS. Only for
  // children that go straight to exec; a child that must wait for us needs a copy. Pass false
  // after joining or creating a time namespace for children: the kernel keeps a CLONE_VM child
  // in the parent's time namespace (exec moves it over only since Linux 6.0).
  bool share_memory = true;
  // A cgroup v2 directory fd: the child starts there (CLONE_INTO_CGROUP, Linux >= 5.7; on the
  // vfork path and without clone3 the child writes "0" to its cgroup.procs instead).
  int cgroup_fd = -1;
  // Where the child reports failures. -1: spawn makes a CLOEXEC pipe and waits for exec
  // (so the returned child has exec'd). Otherwise the caller owns the protocol on this fd
  // (the child's end), and spawn returns as soon as the child exists.
  int report_fd = -1;
  std::size_t stack_size = 64 * 1024;  // for the vfork-style child
};

namespace detail {

template <class Fn>
struct spawn_frame {
  Fn* fn;
  int report_fd;
  int cgroup_fd;       // child writes cgroup.procs when clone could not place it
  const sigset_t* mask;  // the parent's signal mask, restored in the child
};

inline child_failure join_cgroup_by_write(int cgroup_fd) noexcept {
  int fd = sys::calls.openat(cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC, 0);
  if (fd == -1) return child_failure::at(child_step::cgroup, errno);
  ssize_t n;
  while ((n = sys::calls.write(fd, "0", 1)) == -1 && errno == EINTR) {
  }
  int err = errno;
  sys::calls.close(fd);
  if (n != 1) return child_failure::at(child_step::cgroup, err);
  return {};
}

template <class Fn>
int child_main(void* arg) noexcept {
  auto* f = static_cast<spawn_frame<Fn>*>(arg);
  // Handlers inherited from the parent would run in the child before exec (against shared
  // memory on the vfork path): default them, as posix_spawn does.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction old {};
    if (sys::calls.sigaction(sig, nullptr, &old) == 0 && old.sa_handler != SIG_IGN &&
        old.sa_handler != SIG_DFL)
      sys::calls.sigaction(sig, &dfl, nullptr);
  }
  sys::calls.thread_sigmask(SIG_SETMASK, f->mask, nullptr);
  child_failure r{};
  if (f->cgroup_fd >= 0) r = join_cgroup_by_write(f->cgroup_fd);
  if (!r.failed()) r = (*f->fn)();
  if (r.failed()) {
    send_record(f->report_fd, record_type::failure, r);
    ::_exit(child_exit_code(r));
  }
  ::_exit(0);
}

}  // namespace detail

// Starts a child running `fn` (signature `child_failure() noexcept`, allocation-free), which
// normally ends in exec_spec::exec(). Returns once the child has exec'd (or failed: the error
// names the child's step) when options.report_fd is -1.
template <class Fn>
result<child> spawn(const spawn_options& opt, Fn&& fn) {
  using F = std::remove_reference_t<Fn>;
  unique_fd report_read, report_write;
  int report_fd = opt.report_fd;
  if (report_fd == -1) {
    int p[2];
    if (sys::calls.pipe2(p, O_CLOEXEC) == -1) return posix_error("pipe2");
    report_read.reset(p[0]);
    report_write.reset(p[1]);
    report_fd = p[1];
  }
  const bool share = opt.share_memory;
  std::unique_ptr<char[]> stack;
  if (share) stack = std::make_unique<char[]>(opt.stack_size);

  sigset_t all, old;
  sigfillset(&all);
  if (sys::calls.thread_sigmask(SIG_BLOCK, &all, &old) == -1) return posix_error("sigprocmask");
  detail::spawn_frame<F> frame{&fn, report_fd, -1, &old};

  pid_t pid = -1;
  int pfd = -1;
  int err = 0;
  if (share) {
    frame.cgroup_fd = opt.cgroup_fd;
    int flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD;
    pid = sys::calls.clone(&detail::child_main<F>, stack.get() + opt.stack_size, flags, &frame,
                           &pfd);
    if (pid == -1 && errno == EINVAL) {  // before Linux 5.2: no CLONE_PIDFD
      pfd = -1;
      pid = sys::calls.clone(&detail::child_main<F>, stack.get() + opt.stack_size,
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
    if (r == 0) detail::child_main<F>(&frame);
    pid = static_cast<pid_t>(r);
    err = errno;
  }
  sys::calls.thread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid == -1) return posix_error(share ? "clone" : "clone3", err);

  nsentry::pidfd handle;
  if (pfd >= 0) {
    handle = nsentry::pidfd(unique_fd(pfd), pid);
  } else if (auto p = nsentry::pidfd::open(pid)) {
    handle = std::move(p).value();  // only a fallback path gets here; ENOSYS leaves a bare pid
  }
  child c(std::move(handle), pid);
  if (opt.report_fd != -1) return c;

  report_write.reset();
  NSENTRY_TRY(auto rec, read_record(report_read.get()));
  if (rec) {
    (void)c.wait();  // the child has exited (or is exiting) after reporting
    return with_pid(error_from(failure_from(*rec)), pid);
  }
  return c;
}

// spawn() for the common case: a child that only execs `cmd`.
inline result<child> spawn_exec(const exec_spec& cmd, spawn_options opt = {}) {
  auto c = spawn(opt, [&cmd]() noexcept { return cmd.exec(); });
  if (!c && c.error().step == "exec") return with_path(std::move(c).error(), cmd.argv().front());
  return c;
}

}  // namespace nsentry
