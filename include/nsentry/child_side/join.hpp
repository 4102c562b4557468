// nsentry/child_side/join.hpp — joining namespaces from open descriptors, child side.
//
// Two ways in, both allocation-free:
//  - join_pidfd(pidfd, kinds): one setns(pidfd, flags) (Linux >= 5.8). The kernel commits all
//    or nothing and orders the joins itself, so nothing is checked before or after.
//  - join_fds(fds, self): runc's algorithm for namespace files. Every file was opened first (so
//    a mount namespace joined early cannot hide a later path); setns every non-user namespace,
//    skipping EPERM; join the user namespace, then become root in it (the skipped joins may now
//    be allowed); retry the skipped ones; finally compare /proc/thread-self/ns inodes with the
//    files and name any kind not joined (errc::not_joined). A user namespace we are already in
//    is left out (the kernel says EINVAL).
// Joining a user namespace, both can drop the supplementary groups (become_root's
// drop_groups): every nsentry join does (nsenter's rule), runc's stage-1 does not.
//
// Contracts: every function here is noexcept, allocation-free and async-signal-safe (it runs
// between clone and exec, or on the calling thread). They change the calling thread; user and
// time need a single-threaded caller; mnt and user need an unshared fs_struct, done here.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <span>

#include "nsentry/channel.hpp"
#include "nsentry/ns.hpp"
#include "nsentry/sys.hpp"
#include "nsentry/trace.hpp"

namespace nsentry::inline v0 {

// An opened namespace file and its identity (nsfs dev, inode). The fd is not owned.
struct ns_fd {
  ns_kind kind{};
  int fd = -1;
  dev_t dev = 0;
  ino_t ino = 0;
};

namespace child_side {

// Is the thread whose /proc ns directory is `self_ns_dir` in the namespace (dev, ino)? For pid
// and time this asks about the thread's future children (the row's effective entry).
// Returns 1 (in it), 0 (not), or -1 with errno when the thread's entry cannot be read.
inline int in_namespace(int self_ns_dir, ns_kind k, dev_t dev, ino_t ino) noexcept {
  struct stat st {};
  if (sys::calls.fstatat(self_ns_dir, row_of(k).effective_entry.data(), &st, 0) == -1) return -1;
  return st.st_dev == dev && st.st_ino == ino ? 1 : 0;
}

// /proc/thread-self/ns as an O_PATH directory. Opened before joining, it still names this
// thread after a mount namespace with a different /proc has been entered. -1 + errno.
inline int open_self_ns_dir() noexcept {
  return sys::calls.openat(AT_FDCWD, "/proc/thread-self/ns", O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
}

// After joining a user namespace: become its root (gid first, while we may still change it).
// `drop_groups`: and drop the supplementary groups in between, as nsenter does (the host's
// groups would otherwise go with us into the container); refused (a namespace whose
// /proc/<pid>/setgroups is "deny") is a failure of step::setgroups, not silently kept groups.
// runc's stage-1 does not (its stage-2 drops them by its own rule).
inline failure become_root(bool drop_groups = false) noexcept {
  if (sys::calls.setresgid(0, 0, 0) == -1)
    return failure::at(step::setresgid, errno, ns_kind::user);
  if (drop_groups && sys::calls.setgroups(0, nullptr) == -1)
    return failure::at(step::setgroups, errno, ns_kind::user);
  if (sys::calls.setresuid(0, 0, 0) == -1)
    return failure::at(step::setresuid, errno, ns_kind::user);
  return {};
}

inline failure unshare_fs_for(ns_set kinds) noexcept {
  if (!unshared_fs_kinds(kinds).empty() && sys::calls.unshare(CLONE_FS) == -1)
    return failure::at(step::unshare, errno);
  return {};
}

// One setns(pidfd, flags); then root in a joined user namespace. `kinds` must not hold a user
// namespace the caller is already in (the kernel refuses it with EINVAL).
// `drop_groups`: see become_root.
inline failure join_pidfd(int pidfd, ns_set kinds, bool drop_groups = false) noexcept {
  if (kinds.empty()) return {};
  if (auto f = unshare_fs_for(kinds); f.failed()) return f;
  if (sys::calls.setns(pidfd, static_cast<int>(kinds.clone_flags())) == -1)
    return failure::at(step::setns, errno);
  if (kinds.contains(ns_kind::user)) return become_root(drop_groups);
  return {};
}

// setns on one file, recorded in `tr` when tracing.
inline int traced_setns(trace_buffer* tr, int fd, ns_kind k) noexcept {
  std::uint64_t t0 = tr ? trace_now() : 0;
  int r = sys::calls.setns(fd, clone_flag_of(k));
  if (tr) record_step(tr, step::setns, t0, r == -1 ? errno : 0, static_cast<std::uint8_t>(k));
  return r;
}

// The per-file algorithm (see the top of this file). `tr`: a trace to record each setns in;
// `drop_groups`: see become_root.
inline failure join_fds(std::span<const ns_fd> fds, int self_ns_dir, trace_buffer* tr = nullptr,
                        bool drop_groups = false) noexcept {
  if (fds.empty()) return {};
  ns_set all;
  for (const auto& n : fds) all.insert(n.kind);
  if (auto f = unshare_fs_for(all); f.failed()) return f;

  ns_set skipped, wanted;
  const ns_fd* user = nullptr;
  for (const auto& n : fds) {
    if (n.kind == ns_kind::user) {
      int in = in_namespace(self_ns_dir, n.kind, n.dev, n.ino);
      if (in == -1) return failure::at(step::verify, errno, n.kind);
      if (in == 0) {
        user = &n;
        wanted.insert(n.kind);
      }
      continue;
    }
    wanted.insert(n.kind);
    if (traced_setns(tr, n.fd, n.kind) == 0) continue;
    if (errno != EPERM) return failure::at(step::setns, errno, n.kind);
    skipped.insert(n.kind);
  }
  if (user) {
    if (traced_setns(tr, user->fd, ns_kind::user) == -1)
      return failure::at(step::setns, errno, ns_kind::user);
    if (auto f = become_root(drop_groups); f.failed()) return f;
  }
  for (const auto& n : fds) {
    if (!skipped.contains(n.kind)) continue;
    if (traced_setns(tr, n.fd, n.kind) == -1) return failure::at(step::setns, errno, n.kind);
  }
  failure missing{step::verify, 0, no_kind, 0};
  for (const auto& n : fds) {
    if (!wanted.contains(n.kind)) continue;
    int in = in_namespace(self_ns_dir, n.kind, n.dev, n.ino);
    if (in == -1) return failure::at(step::verify, errno, n.kind);  // joined, but unverifiable
    if (in == 0) missing.missing |= static_cast<std::uint32_t>(clone_flag_of(n.kind));
  }
  if (missing.missing) return missing;
  return {};
}

}  // namespace child_side
}  // namespace nsentry::inline v0
