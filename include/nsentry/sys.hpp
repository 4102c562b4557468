// nsentry/sys.hpp — the one way into the kernel.
//
// Every syscall nsentry makes goes through `sys::calls`, a table of plain function pointers with
// the kernel's own contract (return -1 and set errno). Tests swap an entry with
// `sys::scoped_override` to inject EPERM, EINVAL, ENOSYS, EINTR, ENOMEM, ... into any path,
// including the fast paths (clone3, pidfd) and their fallbacks, which live here too.
//
// Contracts:
//  - Entries are async-signal-safe and allocation-free (they are called between clone and
//    exec); an override used on a child-side path must be too.
//  - The table is process-global. Overriding it is for tests: do it while no other thread
//    makes nsentry calls. The overrides are inherited by forked children.
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#ifndef SYS_clone3
#define SYS_clone3 435  // Linux >= 5.3
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434  // Linux >= 5.3
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424  // Linux >= 5.1
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL  // Linux >= 5.7
#endif
#ifndef SYS_execveat
#define SYS_execveat 322  // x86-64; Linux >= 3.19
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U  // Linux >= 6.3 (vm.memfd_noexec); EINVAL before
#endif
#ifndef SYS_close_range
#define SYS_close_range 436  // Linux >= 5.9
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace nsentry::inline v0::sys {

// The kernel's struct clone_args, version 2 (Linux >= 5.7, with cgroup). Declared here so that
// nsentry does not depend on <linux/sched.h> agreeing with glibc's <sched.h>.
struct clone_args {
  std::uint64_t flags = 0;
  std::uint64_t pidfd = 0;
  std::uint64_t child_tid = 0;
  std::uint64_t parent_tid = 0;
  std::uint64_t exit_signal = 0;
  std::uint64_t stack = 0;
  std::uint64_t stack_size = 0;
  std::uint64_t tls = 0;
  std::uint64_t set_tid = 0;
  std::uint64_t set_tid_size = 0;
  std::uint64_t cgroup = 0;
};

struct table {
  int (*openat)(int dirfd, const char* path, int flags, mode_t mode);
  int (*close)(int fd);
  ssize_t (*read)(int fd, void* buf, size_t n);
  ssize_t (*write)(int fd, const void* buf, size_t n);
  int (*dupfd)(int fd, int min_fd, int cloexec);  // fcntl(F_DUPFD[_CLOEXEC])
  int (*fstat)(int fd, struct stat* st);
  int (*pipe2)(int fds[2], int flags);
  int (*socketpair)(int domain, int type, int protocol, int fds[2]);
  int (*setns)(int fd, int nstype);
  int (*unshare)(int flags);
  long (*clone3)(clone_args* args, size_t size);  // returns the child's pid, 0 in the child
  pid_t (*fork)();
  int (*pidfd_open)(pid_t pid, unsigned flags);
  int (*pidfd_send_signal)(int pidfd, int sig, siginfo_t* info, unsigned flags);
  int (*kill)(pid_t pid, int sig);
  int (*waitid)(idtype_t type, id_t id, siginfo_t* info, int options);
  int (*setresuid)(uid_t r, uid_t e, uid_t s);
  int (*setresgid)(gid_t r, gid_t e, gid_t s);
  int (*setgroups)(size_t n, const gid_t* groups);
  pid_t (*setsid)();
  int (*chdir)(const char* path);
  int (*prctl)(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5);
  int (*execve)(const char* path, char* const argv[], char* const envp[]);
  pid_t (*getpid)();  // the caller's pid in its own pid namespace, never cached
  int (*memfd_create)(const char* name, unsigned flags);
  int (*add_seals)(int fd, int seals);  // fcntl(F_ADD_SEALS)
  int (*get_seals)(int fd);             // fcntl(F_GET_SEALS)
  ssize_t (*sendfile)(int out_fd, int in_fd, off_t* offset, size_t n);
  int (*execveat)(int dirfd, const char* path, char* const argv[], char* const envp[], int flags);
  // glibc clone(3): runs fn on `stack` in the child. The one way to clone with CLONE_VM and a
  // separate stack from C++ (the raw syscall would return into the parent's frames).
  int (*clone)(int (*fn)(void*), void* stack, int flags, void* arg, int* parent_tid);
  int (*fstatat)(int dirfd, const char* path, struct stat* st, int flags);
  int (*sigaction)(int sig, const struct sigaction* act, struct sigaction* old);
  int (*thread_sigmask)(int how, const sigset_t* set, sigset_t* old);  // this thread; -1 + errno
  int (*fchdir)(int fd);
  int (*poll)(struct pollfd* fds, nfds_t n, int timeout_ms);
  ssize_t (*sendmsg)(int fd, const struct msghdr* msg, int flags);
  ssize_t (*recvmsg)(int fd, struct msghdr* msg, int flags);
  int (*dup3)(int fd, int target, int flags);
  int (*setfd)(int fd, int fd_flags);  // fcntl(F_SETFD)
  int (*fstatfs)(int fd, struct statfs* st);
  int (*close_range)(unsigned first, unsigned last, unsigned flags);  // Linux >= 5.9
};

namespace detail {
inline int real_openat(int d, const char* p, int f, mode_t m) { return ::openat(d, p, f, m); }
inline int real_close(int fd) { return ::close(fd); }
inline ssize_t real_read(int fd, void* b, size_t n) { return ::read(fd, b, n); }
inline ssize_t real_write(int fd, const void* b, size_t n) { return ::write(fd, b, n); }
inline int real_dupfd(int fd, int min, int cloexec) {
  return ::fcntl(fd, cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, min);
}
inline int real_fstat(int fd, struct stat* st) { return ::fstat(fd, st); }
inline int real_pipe2(int fds[2], int f) { return ::pipe2(fds, f); }
inline int real_socketpair(int d, int t, int p, int fds[2]) { return ::socketpair(d, t, p, fds); }
inline int real_setns(int fd, int t) { return ::setns(fd, t); }
inline int real_unshare(int f) { return ::unshare(f); }
inline long real_clone3(clone_args* a, size_t s) { return ::syscall(SYS_clone3, a, s); }
inline pid_t real_fork() { return ::fork(); }
inline int real_pidfd_open(pid_t p, unsigned f) {
  return static_cast<int>(::syscall(SYS_pidfd_open, p, f));
}
inline int real_pidfd_send_signal(int fd, int sig, siginfo_t* i, unsigned f) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, fd, sig, i, f));
}
inline int real_kill(pid_t p, int s) { return ::kill(p, s); }
inline int real_waitid(idtype_t t, id_t id, siginfo_t* i, int o) { return ::waitid(t, id, i, o); }
inline int real_setresuid(uid_t r, uid_t e, uid_t s) {
  return static_cast<int>(::syscall(SYS_setresuid, r, e, s));  // this thread only, like the kernel
}
inline int real_setresgid(gid_t r, gid_t e, gid_t s) {
  return static_cast<int>(::syscall(SYS_setresgid, r, e, s));
}
inline int real_setgroups(size_t n, const gid_t* g) {
  return static_cast<int>(::syscall(SYS_setgroups, n, g));
}
inline pid_t real_setsid() { return ::setsid(); }
inline int real_chdir(const char* p) { return ::chdir(p); }
inline int real_prctl(int o, unsigned long a, unsigned long b, unsigned long c, unsigned long d) {
  return ::prctl(o, a, b, c, d);
}
inline int real_execve(const char* p, char* const a[], char* const e[]) {
  return ::execve(p, a, e);
}
inline pid_t real_getpid() { return static_cast<pid_t>(::syscall(SYS_getpid)); }
inline int real_memfd_create(const char* n, unsigned f) {
  return static_cast<int>(::syscall(SYS_memfd_create, n, f));
}
inline int real_add_seals(int fd, int s) { return ::fcntl(fd, F_ADD_SEALS, s); }
inline int real_get_seals(int fd) { return ::fcntl(fd, F_GET_SEALS); }
inline ssize_t real_sendfile(int o, int i, off_t* off, size_t n) {
  return ::sendfile(o, i, off, n);
}
inline int real_execveat(int d, const char* p, char* const a[], char* const e[], int f) {
  return static_cast<int>(::syscall(SYS_execveat, d, p, a, e, f));
}
inline int real_clone(int (*fn)(void*), void* stack, int flags, void* arg, int* ptid) {
  return ::clone(fn, stack, flags, arg, ptid);
}
inline int real_fstatat(int d, const char* p, struct stat* st, int f) {
  return ::fstatat(d, p, st, f);
}
inline int real_sigaction(int sig, const struct sigaction* a, struct sigaction* o) {
  return ::sigaction(sig, a, o);
}
inline int real_thread_sigmask(int how, const sigset_t* set, sigset_t* old) {
  int e = ::pthread_sigmask(how, set, old);
  if (e == 0) return 0;
  errno = e;
  return -1;
}
inline int real_fchdir(int fd) { return ::fchdir(fd); }
inline int real_poll(struct pollfd* f, nfds_t n, int t) { return ::poll(f, n, t); }
inline ssize_t real_sendmsg(int fd, const struct msghdr* m, int f) { return ::sendmsg(fd, m, f); }
inline ssize_t real_recvmsg(int fd, struct msghdr* m, int f) { return ::recvmsg(fd, m, f); }
inline int real_dup3(int fd, int target, int f) { return ::dup3(fd, target, f); }
inline int real_setfd(int fd, int f) { return ::fcntl(fd, F_SETFD, f); }
inline int real_fstatfs(int fd, struct statfs* st) { return ::fstatfs(fd, st); }
inline int real_close_range(unsigned a, unsigned b, unsigned f) {
  return static_cast<int>(::syscall(SYS_close_range, a, b, f));
}
}  // namespace detail

inline constexpr table real_calls{
    detail::real_openat,         detail::real_close,
    detail::real_read,           detail::real_write,
    detail::real_dupfd,          detail::real_fstat,
    detail::real_pipe2,          detail::real_socketpair,
    detail::real_setns,          detail::real_unshare,
    detail::real_clone3,         detail::real_fork,
    detail::real_pidfd_open,     detail::real_pidfd_send_signal,
    detail::real_kill,           detail::real_waitid,
    detail::real_setresuid,      detail::real_setresgid,
    detail::real_setgroups,      detail::real_setsid,
    detail::real_chdir,          detail::real_prctl,
    detail::real_execve,         detail::real_getpid,
    detail::real_memfd_create,   detail::real_add_seals,
    detail::real_get_seals,      detail::real_sendfile,
    detail::real_execveat,       detail::real_clone,
    detail::real_fstatat,        detail::real_sigaction,
    detail::real_thread_sigmask, detail::real_fchdir,
    detail::real_poll,           detail::real_sendmsg,
    detail::real_recvmsg,        detail::real_dup3,
    detail::real_setfd,          detail::real_fstatfs,
    detail::real_close_range,
};

// The live table. Constant-initialised: usable from constructors and before main.
inline constinit table calls = real_calls;

// Ends the calling process now: exit_group(2), as _exit(2) does, but straight to the kernel.
// For children nsentry clones from a caller that may have other threads: a sanitizer's _exit
// hook (TSan's) takes a runtime lock that one of those threads may have held at the clone, and
// in the child nobody ever releases it. Async-signal-safe; not in the table (not injectable).
[[noreturn]] inline void exit_process(int status) noexcept {
  for (;;) ::syscall(SYS_exit_group, status);
}

// Replaces one entry for the lifetime of the guard:
//   sys::scoped_override o{&sys::table::setns, [](int, int) { errno = EPERM; return -1; }};
template <class Fn>
class scoped_override {
 public:
  scoped_override(Fn table::*member, Fn replacement) noexcept
      : member_(member), saved_(calls.*member) {
    calls.*member = replacement;
  }
  ~scoped_override() { calls.*member_ = saved_; }
  scoped_override(const scoped_override&) = delete;
  scoped_override& operator=(const scoped_override&) = delete;

 private:
  Fn table::*member_;
  Fn saved_;
};

template <class Fn, class R>
scoped_override(Fn table::*, R) -> scoped_override<Fn>;

}  // namespace nsentry::inline v0::sys
