// nsentry/join.hpp — joining existing namespaces on the calling thread: by path, by fd, or by a
// process's pid (parent side: opens, checks and reports; the joins themselves are
// child_side/join.hpp's, the same code the entry sequence runs).
//
//   NSENTRY_TRY(join_pid(target, ns_set::of<net_ns, uts_ns>()));
//   NSENTRY_TRY(join_paths({{ns_kind::net, "/run/netns/blue"}}));
//
// By pid: pidfd_open first (a recycled pid cannot redirect us afterwards), then one
// setns(pidfd, flags) (Linux >= 5.8), which commits all or nothing: nothing is stat'ed before
// or verified after. Where the kernel takes no pidfd in setns (EINVAL; nothing changed), the
// per-file algorithm on /proc/<pid>/ns/*, with the pidfd checked after the opens.
//
// Contracts:
//  - They change the calling *thread* (and, joining user: its credentials, root inside, with
//    no supplementary groups — nsenter's rule; a user namespace that denies setgroups is a
//    step::setgroups error).
//    Joining user or time needs a single-threaded caller: asked of a multi-threaded one they
//    fail up front with errc::multi_threaded and change nothing. mnt and user unshare the
//    thread's fs_struct first.
//  - pid and time change only what children get (children_only()): fork afterwards.
//  - A failure is not rolled back. Everything that can be checked first is (every path opened
//    and found to be a namespace file, kinds distinct, the thread rules): those errors change
//    nothing. A failure after the first setns (a later setns, becoming root in a joined user
//    namespace, the verification) leaves the thread where the joins so far took it: some kinds
//    joined (in join_fds' order: non-user kinds as given, then user, then retries), the rest
//    not, and after a user join its credentials changed. The error names the kind and path
//    that failed, not what was joined. The caller must treat the thread as lost: end it (a
//    thread of a multi-threaded process) or exit/exec (the only thread); it cannot be moved
//    back in general (a thread that joined a user namespace has no capabilities left in its
//    old one). For a visit that must be undone use enter_scoped/ns_home (a partial entry is
//    restored before the error is returned); for the caller to stay put, run_plan. join_pid's
//    one setns(pidfd) commits all or nothing (only becoming root can fail after it).
//  - Parent side: they allocate (paths, errors).
#pragma once

#include <sys/stat.h>
#include <sys/statfs.h>

#include <array>
#include <span>
#include <string>
#include <vector>

#include "nsentry/channel.hpp"
#include "nsentry/child_side/join.hpp"
#include "nsentry/error.hpp"
#include "nsentry/fd.hpp"
#include "nsentry/ns.hpp"
#include "nsentry/plan.hpp"
#include "nsentry/sys.hpp"

namespace nsentry::inline v0 {

using child_side::open_self_ns_dir;

// "/proc/<pid>/ns/<kind>"
inline std::string proc_ns_path(pid_t pid, ns_kind k) {
  return "/proc/" + std::to_string(pid) + "/ns/" + std::string(name_of(k));
}

// Is the calling process multi-threaded? (/proc/self/task counts its threads in st_nlink.)
inline result<bool> multi_threaded() {
  struct stat st {};
  if (sys::calls.fstatat(AT_FDCWD, "/proc/self/task", &st, 0) == -1)
    return posix_error(step::stat, "/proc/self/task");
  return st.st_nlink > 3;  // ".", "..", and one entry per thread
}

// Refuses, before anything changes, kinds a multi-threaded caller cannot enter (`s`: the
// operation asking, for the error).
inline result<void> check_thread_rules(ns_set kinds, nsentry::step s = step::join) {
  ns_set single = not_thread_enterable(kinds);
  if (single.empty()) return success();
  NSENTRY_TRY(auto many, multi_threaded());
  if (many)
    return nsentry_error(errc::multi_threaded, s,
                         single.names() + " cannot be entered by a multi-threaded process");
  return success();
}

// The f_type of namespace files (fstatfs), NSFS_MAGIC in <linux/magic.h>.
inline constexpr unsigned long nsfs_magic = 0x6e736673;

// open_self_ns_dir() for parent-side callers: the error names the path.
inline result<unique_fd> open_self_ns() {
  unique_fd self(open_self_ns_dir());
  if (!self) return posix_error(step::open, "/proc/thread-self/ns");
  return self;
}

// Owned namespace files, opened (all of them) before any is joined; each must be an nsfs file
// (a /proc/*/ns/* entry or a bind mount of one), else EINVAL for setns of that kind and path
// (what the kernel would say) caused by errc::invalid_argument "not a namespace file".
class opened_namespaces {
 public:
  // Opens and identifies each path; errors name the kind and path. Kinds must be distinct.
  static result<opened_namespaces> open(std::span<const ns_join> joins) {
    opened_namespaces o;
    for (const auto& j : joins) {
      NSENTRY_TRY(o.add(j.kind, std::string(j.path)));
    }
    return o;
  }

  // Adopts an fd the caller opened (any namespace file: /proc/*/ns/*, a bind mount, an nsfs
  // fd from an ioctl); it is duplicated, the caller keeps its own.
  result<void> add_fd(ns_kind k, int fd) {
    int d = sys::calls.dupfd(fd, 0, 1);
    if (d == -1) return with_kind(posix_error(step::dup), k);
    return adopt(k, unique_fd(d), {});
  }

  // O_NONBLOCK: a FIFO (or any file whose open can block) given by mistake is refused below
  // instead of hanging the caller; namespace files ignore the flag.
  result<void> add(ns_kind k, const std::string& path) {
    auto fd = open_file(path, O_RDONLY | O_NONBLOCK);
    if (!fd) return with_kind(std::move(fd).error(), k);
    return adopt(k, std::move(fd).value(), path);
  }

  std::span<const ns_fd> fds() const noexcept { return {fds_.data(), count_}; }
  ns_set kinds() const noexcept {
    ns_set s;
    for (const auto& n : fds()) s.insert(n.kind);
    return s;
  }
  // The path a kind was opened from (for error messages), or "".
  const std::string& path_of(ns_kind k) const noexcept {
    return paths_[static_cast<std::size_t>(k)];
  }

  // Runs the per-file join on the calling thread. `self_ns_dir`: from open_self_ns_dir(),
  // opened before any earlier join into another mount namespace (whose /proc may not show
  // us); -1 opens it now.
  result<void> join(int self_ns_dir = -1) const {
    if (count_ == 0) return success();
    NSENTRY_TRY(check_thread_rules(kinds()));
    unique_fd self;
    if (self_ns_dir == -1) {
      NSENTRY_TRY(self, open_self_ns());
      self_ns_dir = self.get();
    }
    return to_result(child_side::join_fds(fds(), self_ns_dir, nullptr, /*drop_groups=*/true));
  }

  // The error a child-side failure of these files stands for: "join: setns(net) on PATH: ...".
  error to_error(const failure& f) const {
    error e = error_from(f);
    if (e.kind && e.path.empty()) e.path = path_of(*e.kind);
    if (e.step == step::setns || e.step == step::verify || e.step == step::setresuid ||
        e.step == step::setresgid || e.step == step::setgroups)
      e.context = "join";
    return e;
  }
  result<void> to_result(const failure& f) const {
    if (f.failed()) return to_error(f);
    return success();
  }

 private:
  result<void> adopt(ns_kind k, unique_fd fd, std::string path) {
    if (kinds().contains(k))
      return with_kind(nsentry_error(errc::invalid_argument, step::join, "kind given twice"), k);
    // Only nsfs files can be joined: anything else is refused before any setns, naming it.
    struct statfs sfs {};
    if (sys::calls.fstatfs(fd.get(), &sfs) == -1)
      return with_kind(posix_error(step::fstat, path), k);
    if (static_cast<unsigned long>(sfs.f_type) != nsfs_magic) {
      // What setns would say (EINVAL, as runc and nsenter report it), said before any setns,
      // with the reason as the cause: "join: setns(net) on /tmp/f: Invalid argument (open: not
      // a namespace file: invalid argument)".
      error e = posix_error(step::setns, path, EINVAL);
      e.context = "join";
      e.cause = std::make_shared<const error>(
          nsentry_error(errc::invalid_argument, step::open, "not a namespace file"));
      return with_kind(std::move(e), k);
    }
    struct stat st {};
    if (sys::calls.fstat(fd.get(), &st) == -1) return with_kind(posix_error(step::fstat, path), k);
    fds_[count_++] = ns_fd{k, fd.get(), st.st_dev, st.st_ino};
    owned_[static_cast<std::size_t>(k)] = std::move(fd);
    paths_[static_cast<std::size_t>(k)] = std::move(path);
    return success();
  }

  std::array<ns_fd, ns_kind_count> fds_{};
  std::size_t count_ = 0;
  std::array<unique_fd, ns_kind_count> owned_{};
  std::array<std::string, ns_kind_count> paths_{};
};

// Joins namespace files by path (child_side/join.hpp's algorithm).
inline result<void> join_paths(std::span<const ns_join> joins) {
  NSENTRY_TRY(auto o, opened_namespaces::open(joins));
  return o.join();
}

// Joins the namespace an open fd refers to.
inline result<void> join_fd(ns_kind k, int fd) {
  opened_namespaces o;
  NSENTRY_TRY(o.add_fd(k, fd));
  return o.join();
}

// Are we (this thread) in the same namespace of kind `k` as process `pid`?
inline result<bool> shares_namespace(pid_t pid, ns_kind k) {
  struct stat theirs {
  }, ours{};
  auto path = proc_ns_path(pid, k);
  if (sys::calls.fstatat(AT_FDCWD, path.c_str(), &theirs, 0) == -1)
    return with_pid(with_kind(posix_error(step::stat, path), k), pid);
  std::string self = "/proc/thread-self/ns/" + std::string(row_of(k).effective_entry);
  if (sys::calls.fstatat(AT_FDCWD, self.c_str(), &ours, 0) == -1)
    return with_kind(posix_error(step::stat, self), k);
  return theirs.st_ino == ours.st_ino && theirs.st_dev == ours.st_dev;
}

// Every namespace of `pid` that differs from ours, as util-linux `nsenter -a` chooses them
// (time only where the kernel has time namespaces).
inline result<ns_set> differing_namespaces(pid_t pid) {
  ns_set out;
  for (const auto& r : ns_kinds) {
    struct stat theirs {
    }, ours{};
    auto path = proc_ns_path(pid, r.kind);
    if (sys::calls.fstatat(AT_FDCWD, path.c_str(), &theirs, 0) == -1) {
      if (errno == ENOENT && r.kind == ns_kind::time) continue;  // Linux < 5.6
      return with_kind(with_pid(posix_error(step::stat, path), pid), r.kind);
    }
    auto self = "/proc/self/ns/" + std::string(r.name);
    if (sys::calls.fstatat(AT_FDCWD, self.c_str(), &ours, 0) == -1)
      return with_kind(posix_error(step::stat, self), r.kind);
    if (theirs.st_ino != ours.st_ino || theirs.st_dev != ours.st_dev) out.insert(r.kind);
  }
  return out;
}

// A process whose namespaces are to be joined: its pidfd (opened first, so that a recycled
// pid cannot redirect us afterwards) and the kinds, less a user namespace we already share.
class pid_target {
 public:
  static result<pid_target> open(pid_t pid, ns_set kinds) {
    pid_target t;
    t.pid_ = pid;
    if (kinds.empty()) return t;
    auto pfd = pidfd::open(pid);
    if (!pfd && pfd.error() != std::errc::function_not_supported) return std::move(pfd).error();
    if (pfd) t.pidfd_ = std::move(pfd).value();
    t.kinds_ = kinds;
    return t;
  }

  // Leaves out a user namespace we already share with the target (the kernel refuses to
  // "enter" it: EINVAL). True when it did. Two stats: only when that question comes up.
  result<bool> leave_out_shared_user() {
    if (!kinds_.contains(ns_kind::user)) return false;
    NSENTRY_TRY(auto same, shares_namespace(pid_, ns_kind::user));
    if (same) kinds_.erase(ns_kind::user);
    return same;
  }

  ns_set kinds() const noexcept { return kinds_; }
  pid_t pid() const noexcept { return pid_; }
  int pidfd() const noexcept { return pidfd_.get(); }  // -1 before Linux 5.3

  // The per-file way (no pidfd in setns before Linux 5.8): /proc/<pid>/ns/* added to `files`,
  // then the pidfd checked, if there is one, so that a pid recycled in between is noticed.
  result<void> open_files_into(opened_namespaces& files) const {
    for (ns_kind k : kinds_) {
      NSENTRY_TRY(files.add(k, proc_ns_path(pid_, k)));
    }
    if (pidfd_.valid()) {
      NSENTRY_TRY(pidfd_.send_signal(0));
    }
    return success();
  }

  // The error for a failure of join_pidfd on this target.
  error to_error(const failure& f) const {
    error e = error_from(f);
    e.context = "join";
    if (e.step == step::setns && !e.kind) e.detail = kinds_.names();
    return with_pid(std::move(e), pid_);
  }

 private:
  pid_t pid_ = 0;
  ns_set kinds_;
  nsentry::pidfd pidfd_;
};

// Joins `kinds` of process `pid` (the user namespace is left out when we already share it).
//
// The fast path is pidfd_open + one setns(pidfd, flags) and nothing else. That call commits all
// or nothing, so its EINVAL/EUSERS is examined only afterwards, with nothing changed: user or
// time asked of a multi-threaded caller (errc::multi_threaded), a user namespace we already
// share (left out, one more try), or a kernel without pidfd in setns (< 5.8: the per-file way).
inline result<void> join_pid(pid_t pid, ns_set kinds) {
  if (kinds.empty()) return success();
  NSENTRY_TRY(auto t, pid_target::open(pid, kinds));
  if (t.pidfd() >= 0) {
    auto f = child_side::join_pidfd(t.pidfd(), t.kinds(), /*drop_groups=*/true);
    if (!f.failed()) return success();
    if (f.step != step::setns || (f.err != EINVAL && f.err != EUSERS)) return t.to_error(f);
    NSENTRY_TRY(check_thread_rules(t.kinds()));
    NSENTRY_TRY(auto left_out, t.leave_out_shared_user());
    if (left_out) {
      if (t.kinds().empty()) return success();
      f = child_side::join_pidfd(t.pidfd(), t.kinds());
      if (!f.failed()) return success();
      if (f.step != step::setns || f.err != EINVAL) return t.to_error(f);
    }
  } else {
    NSENTRY_TRY(check_thread_rules(t.kinds()));
    NSENTRY_TRY(t.leave_out_shared_user());
  }
  opened_namespaces files;
  NSENTRY_TRY(t.open_files_into(files));
  auto r = files.join();
  if (!r) return with_pid(std::move(r).error(), pid);
  return success();
}

}  // namespace nsentry::inline v0
