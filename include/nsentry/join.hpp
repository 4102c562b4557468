// nsentry/join.hpp — joining existing namespaces: by path, by fd, or by a process's pid.
//
//   NSENTRY_TRY(join_pid(target, ns_set::of<net_ns, uts_ns>()));
//   NSENTRY_TRY(join_paths({{ns_kind::net, "/run/netns/blue"}}));
//
// The path/fd algorithm (runc's, and what the child side of the executor runs):
//   open every path first (so a mount namespace joined early cannot hide a later path); setns
//   every non-user namespace, skipping EPERM; join the user namespace, then setresgid/setresuid
//   to 0 inside it (the skipped joins may now be allowed); retry the skipped ones; finally
//   compare /proc/thread-self/ns inodes with the opened files and name any kind not joined
//   (errc::not_joined). A user namespace we are already in is left out (the kernel says EINVAL).
//
// By pid: one setns(pidfd, flags) (Linux >= 5.8: atomic, the kernel orders the joins itself),
// or, where the kernel lacks it, the per-fd algorithm on /proc/<pid>/ns/* with the pidfd
// checked afterwards so that a recycled pid cannot redirect us.
//
// Contracts:
//  - They change the calling *thread* (and setresuid/gid: the thread's credentials). Joining
//    user or time needs a single-threaded caller (the kernel refuses otherwise); mnt needs an
//    unshared fs_struct, which these do for the caller (unshare(CLONE_FS)).
//  - pid and time change only what children get (children_only()): fork afterwards.
//  - join_fds() is allocation-free and async-signal-safe (it runs between clone and exec);
//    the result-returning functions allocate for errors (parent side).
#pragma once

#include <array>
#include <span>
#include <string>
#include <vector>

#include "nsentry/child.hpp"
#include "nsentry/error.hpp"
#include "nsentry/fd.hpp"
#include "nsentry/ns.hpp"
#include "nsentry/plan.hpp"
#include "nsentry/probe.hpp"
#include "nsentry/sys.hpp"

namespace nsentry {

// An opened namespace file and its identity (nsfs dev, inode). The fd is not owned.
struct ns_fd {
  ns_kind kind{};
  int fd = -1;
  dev_t dev = 0;
  ino_t ino = 0;
};

// The entry of /proc/<task>/ns that shows which namespace of `k` a thread (or, for pid and
// time, its future children) is in.
constexpr const char* effective_ns_entry(ns_kind k) noexcept {
  switch (k) {
    case ns_kind::pid: return "pid_for_children";
    case ns_kind::time: return "time_for_children";
    case ns_kind::user: return "user";
    case ns_kind::ipc: return "ipc";
    case ns_kind::uts: return "uts";
    case ns_kind::net: return "net";
    case ns_kind::mnt: return "mnt";
    case ns_kind::cgroup: return "cgroup";
  }
  return "";
}

// Is the thread whose /proc ns directory is `self_ns_dir` in the namespace (dev, ino)?
inline bool in_namespace(int self_ns_dir, ns_kind k, dev_t dev, ino_t ino) noexcept {
  struct stat st {};
  if (sys::calls.fstatat(self_ns_dir, effective_ns_entry(k), &st, 0) == -1) return false;
  return st.st_dev == dev && st.st_ino == ino;
}

// Opens /proc/thread-self/ns as an O_PATH directory. Opened before joining, it still names
// this thread after a mount namespace with a different /proc has been entered.
inline int open_self_ns_dir() noexcept {
  return sys::calls.openat(AT_FDCWD, "/proc/thread-self/ns", O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
}

// The per-fd join algorithm (see the top of this file). `self_ns_dir` comes from
// open_self_ns_dir(). Allocation-free; usable between clone and exec.
inline child_failure join_fds(std::span<const ns_fd> fds, int self_ns_dir) noexcept {
  bool need_fs = false;
  for (const auto& n : fds) need_fs = need_fs || needs_unshared_fs(n.kind);
  if (need_fs && sys::calls.unshare(CLONE_FS) == -1)
    return child_failure::at(child_step::unshare, errno);

  std::uint32_t skipped = 0, wanted = 0;
  const ns_fd* user = nullptr;
  for (const auto& n : fds) {
    if (n.kind == ns_kind::user) {
      if (!in_namespace(self_ns_dir, n.kind, n.dev, n.ino)) {
        user = &n;
        wanted |= static_cast<std::uint32_t>(clone_flag_of(n.kind));
      }
      continue;
    }
    wanted |= static_cast<std::uint32_t>(clone_flag_of(n.kind));
    if (sys::calls.setns(n.fd, clone_flag_of(n.kind)) == 0) continue;
    if (errno != EPERM)
      return child_failure::at(child_step::setns, errno, static_cast<std::uint8_t>(n.kind));
    skipped |= static_cast<std::uint32_t>(clone_flag_of(n.kind));
  }
  if (user) {
    auto u = static_cast<std::uint8_t>(ns_kind::user);
    if (sys::calls.setns(user->fd, CLONE_NEWUSER) == -1)
      return child_failure::at(child_step::setns, errno, u);
    if (sys::calls.setresgid(0, 0, 0) == -1)
      return child_failure::at(child_step::setresgid, errno, u);
    if (sys::calls.setresuid(0, 0, 0) == -1)
      return child_failure::at(child_step::setresuid, errno, u);
  }
  for (const auto& n : fds) {
    if (!(skipped & static_cast<std::uint32_t>(clone_flag_of(n.kind)))) continue;
    if (sys::calls.setns(n.fd, clone_flag_of(n.kind)) == -1)
      return child_failure::at(child_step::setns, errno, static_cast<std::uint8_t>(n.kind));
  }
  child_failure missing{child_step::verify_ns, 0, no_kind, 0};
  for (const auto& n : fds)
    if ((wanted & static_cast<std::uint32_t>(clone_flag_of(n.kind))) &&
        !in_namespace(self_ns_dir, n.kind, n.dev, n.ino))
      missing.missing |= static_cast<std::uint32_t>(clone_flag_of(n.kind));
  if (missing.missing) return missing;
  return {};
}

// Owned namespace files, opened (all of them) before any is joined.
class opened_namespaces {
 public:
  // Opens and identifies each path; errors name the kind and path. Kinds must be distinct.
  static result<opened_namespaces> open(std::span<const ns_join> joins) {
    opened_namespaces o;
    for (const auto& j : joins) {
      NSENTRY_TRY(o.add(j.kind, j.path));
    }
    return o;
  }

  // Adopts an fd the caller opened (any namespace file: /proc/*/ns/*, a bind mount, an nsfs
  // fd from an ioctl); it is duplicated, the caller keeps its own.
  result<void> add_fd(ns_kind k, int fd) {
    int d = sys::calls.dupfd(fd, 0, 1);
    if (d == -1) return with_kind(posix_error("dup"), k);
    return adopt(k, unique_fd(d), {});
  }

  result<void> add(ns_kind k, const std::string& path) {
    auto fd = open_file(path, O_RDONLY);
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

  // Runs join_fds() on the calling thread and turns its failure into an error naming the step,
  // the kind and the path. `self_ns_dir`: from open_self_ns_dir(), opened before any earlier
  // join into another mount namespace (whose /proc may not show us); -1 opens it now.
  result<void> join(int self_ns_dir = -1) const {
    if (count_ == 0) return success();
    unique_fd self;
    if (self_ns_dir == -1) {
      self.reset(open_self_ns_dir());
      if (!self) return posix_error("open", "/proc/thread-self/ns");
      self_ns_dir = self.get();
    }
    return to_result(join_fds(fds(), self_ns_dir));
  }

  error to_error(const child_failure& f) const {
    error e = error_from(f);
    if (e.kind) e.path = path_of(*e.kind);
    return e;
  }
  result<void> to_result(const child_failure& f) const {
    if (f.failed()) return to_error(f);
    return success();
  }

 private:
  result<void> adopt(ns_kind k, unique_fd fd, std::string path) {
    if (kinds().contains(k))
      return with_kind(nsentry_error(errc::usage, "join", "kind given twice"), k);
    struct stat st {};
    if (sys::calls.fstat(fd.get(), &st) == -1) return with_kind(posix_error("fstat", path), k);
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

// Joins namespace files by path (the algorithm at the top of this file).
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

// "/proc/<pid>/ns/<kind>"
inline std::string proc_ns_path(pid_t pid, ns_kind k) {
  return "/proc/" + std::to_string(pid) + "/ns/" + std::string(name_of(k));
}

// Joins `kinds` of process `pid` (the user namespace is left out when we already share it).
inline result<void> join_pid(pid_t pid, ns_set kinds) {
  if (kinds.empty()) return success();
  unique_fd self(open_self_ns_dir());
  if (!self) return posix_error("open", "/proc/thread-self/ns");

  // The target's namespaces, by identity: to leave out a shared user namespace, and to verify.
  std::array<struct stat, ns_kind_count> target{};
  for (ns_kind k : kinds) {
    auto path = proc_ns_path(pid, k);
    if (sys::calls.fstatat(AT_FDCWD, path.c_str(), &target[static_cast<std::size_t>(k)], 0) == -1)
      return with_pid(with_kind(posix_error("stat", path), k), pid);
  }
  auto& tu = target[static_cast<std::size_t>(ns_kind::user)];
  if (kinds.contains(ns_kind::user) && in_namespace(self.get(), ns_kind::user, tu.st_dev, tu.st_ino))
    kinds.erase(ns_kind::user);
  if (kinds.empty()) return success();

  auto pfd = pidfd::open(pid);
  if (pfd && kernel_has(feature::setns_pidfd)) {
    if (kinds.contains(ns_kind::mnt) || kinds.contains(ns_kind::user))
      if (sys::calls.unshare(CLONE_FS) == -1) return posix_error("unshare");
    if (sys::calls.setns(pfd.value().get(), static_cast<int>(kinds.clone_flags())) == 0) {
      if (kinds.contains(ns_kind::user)) {
        if (sys::calls.setresgid(0, 0, 0) == -1)
          return with_kind(posix_error("setresgid"), ns_kind::user);
        if (sys::calls.setresuid(0, 0, 0) == -1)
          return with_kind(posix_error("setresuid"), ns_kind::user);
      }
      ns_set missing;
      for (ns_kind k : kinds) {
        auto& t = target[static_cast<std::size_t>(k)];
        if (!in_namespace(self.get(), k, t.st_dev, t.st_ino)) missing.insert(k);
      }
      if (!missing.empty())
        return with_pid(nsentry_error(errc::not_joined, "setns", "still outside " + missing.names()),
                        pid);
      return success();
    }
    // EINVAL: this kernel takes no pidfd in setns after all; anything else is the answer.
    if (errno != EINVAL) return with_pid(posix_error("setns"), pid);
  } else if (!pfd && pfd.error() != std::errc::function_not_supported) {
    return std::move(pfd).error();  // ESRCH and the like: no such target
  }

  opened_namespaces o;
  for (ns_kind k : kinds) {
    NSENTRY_TRY(o.add(k, proc_ns_path(pid, k)));
  }
  // The files were opened by pid: make sure it still names the process we meant.
  if (pfd) {
    NSENTRY_TRY(pfd.value().send_signal(0));
  }
  for (const auto& n : o.fds()) {
    auto& t = target[static_cast<std::size_t>(n.kind)];
    if (n.dev != t.st_dev || n.ino != t.st_ino)
      return with_pid(with_kind(nsentry_error(errc::not_joined, "open", "target changed"), n.kind),
                      pid);
  }
  auto f = join_fds(o.fds(), self.get());
  if (f.failed()) return with_pid(o.to_error(f), pid);
  return success();
}

}  // namespace nsentry
