// nsentry/scoped_entry.hpp — the calling thread visits namespaces and comes back.
//
//   {
//     NSENTRY_TRY(auto g, enter_scoped<net_ns, uts_ns>(target_pid));
//     ...                      // this thread now sees the target's network and hostname
//   }                          // back in its own namespaces (or the process aborts)
//
// Only kinds a thread may enter alone are allowed: user and time are rejected at compile time
// (thread_enterable_namespace) and, for run-time sets, with errc::invalid_argument. The thread's
// own namespace files are opened before it moves, and restored from them.
//
// Restore policy: restore() returns a result (errc::restore_failed naming the kind) and may be
// called explicitly. The destructor restores too, and if that fails it prints the error to
// stderr and calls std::abort(): a thread silently left in a foreign namespace is worse than a
// crash. A failed *entry* rolls back before returning its error; if the rollback fails too, the
// error is errc::restore_failed (the thread is in an unknown state: treat it as fatal).
//
// Contracts: affects only the calling thread (it must be destroyed on the same thread, else
// abort); mnt makes the thread's fs_struct private first (unshare(CLONE_FS), permanent; the
// working directory is restored on exit, the root directory follows the mount namespace);
// Linux >= 5.8 to enter by pidfd, falling back to /proc/<pid>/ns files; needs CAP_SYS_ADMIN
// over the target namespaces.
#pragma once

#include <pthread.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <utility>

#include "nsentry/error.hpp"
#include "nsentry/fd.hpp"
#include "nsentry/join.hpp"
#include "nsentry/ns.hpp"
#include "nsentry/sys.hpp"

namespace nsentry::inline v0 {

class scoped_entry {
 public:
  scoped_entry(scoped_entry&& o) noexcept
      : saved_(std::move(o.saved_)),
        restore_fd_(o.restore_fd_),
        cwd_(std::move(o.cwd_)),
        kinds_(std::exchange(o.kinds_, ns_set{})),
        tid_(o.tid_) {}
  scoped_entry& operator=(scoped_entry&&) = delete;
  scoped_entry(const scoped_entry&) = delete;
  scoped_entry& operator=(const scoped_entry&) = delete;

  ~scoped_entry() {
    if (kinds_.empty()) return;
    auto r = restore();
    if (!r) {
      std::fprintf(stderr, "nsentry: scoped_entry: %s\n", r.error().message().c_str());
      std::abort();
    }
  }

  ns_set kinds() const noexcept { return kinds_; }
  bool active() const noexcept { return !kinds_.empty(); }

  // Puts the thread back. Idempotent: after success the guard is inactive.
  result<void> restore() {
    if (kinds_.empty()) return success();
    if (!::pthread_equal(::pthread_self(), tid_))
      return nsentry_error(errc::restore_failed, step::restore, "called on another thread");
    for (ns_kind k : kinds_) {
      if (sys::calls.setns(restore_fd_[static_cast<std::size_t>(k)], clone_flag_of(k)) == -1)
        return wrapping(errc::restore_failed, step::restore,
                        with_kind(posix_error(step::setns), k));
    }
    if (cwd_ && sys::calls.fchdir(cwd_.get()) == -1)
      return wrapping(errc::restore_failed, step::restore, posix_error(step::fchdir));
    kinds_ = {};
    return success();
  }

  // The entry itself. `join` is called once the thread's namespaces are saved.
  template <class Join>
  static result<scoped_entry> enter(ns_set kinds, Join&& join) {
    if (!not_thread_enterable(kinds).empty())
      return nsentry_error(
          errc::invalid_argument, step::enter,
          not_thread_enterable(kinds).names() + " cannot be entered by one thread of a process");
    if (kinds.empty())
      return nsentry_error(errc::invalid_argument, step::enter, "no namespace given");
    scoped_entry g;
    g.tid_ = ::pthread_self();
    if (kinds.contains(ns_kind::mnt)) {
      if (sys::calls.unshare(CLONE_FS) == -1) return posix_error(step::unshare);
      auto cwd = open_file(".", O_PATH | O_DIRECTORY);
      if (!cwd) return std::move(cwd).error();
      g.cwd_ = std::move(cwd).value();
    }
    for (ns_kind k : kinds) {
      auto fd =
          open_file("/proc/thread-self/ns/" + std::string(row_of(k).effective_entry), O_RDONLY);
      if (!fd) return with_kind(std::move(fd).error(), k);
      g.saved_[static_cast<std::size_t>(k)] = std::move(fd).value();
      g.restore_fd_[static_cast<std::size_t>(k)] = g.saved_[static_cast<std::size_t>(k)].get();
    }
    g.kinds_ = kinds;
    auto r = join();
    if (!r) {
      if (auto back = g.restore(); !back) {
        error e = std::move(back).error();
        e.detail += " (after: " + r.error().message() + ")";
        g.kinds_ = {};  // reported: do not abort in the destructor as well
        return e;
      }
      return std::move(r).error();
    }
    return g;
  }

 private:
  friend class ns_home;
  scoped_entry() = default;

  std::array<unique_fd, ns_kind_count> saved_{};  // owned: opened for this entry
  std::array<int, ns_kind_count> restore_fd_{};   // what restore() joins: saved_ or a home's
  unique_fd cwd_;
  ns_set kinds_;
  pthread_t tid_{};  // the thread it belongs to (pthread_self: no syscall to check)
};

// The calling thread's own namespaces, opened once, for many scoped entries on that thread
// into namespaces whose files the caller also holds open: each entry is then one setns per kind
// in and one per kind out, nothing else (no /proc lookups, no pidfd, no allocation).
//
//   NSENTRY_TRY(auto home, ns_home::open(ns_set::of<net_ns>()));        // once per thread
//   NSENTRY_TRY(auto target, opened_namespaces::open(paths));          // once per target
//   for (...) { NSENTRY_TRY(auto g, home.enter(target)); ... }          // per visit
//
// Contracts: a home belongs to the thread that opened it (enter() elsewhere is an error) and
// must outlive every guard it made; the target's kinds must be thread-enterable and among the
// home's. Opening a home with mnt makes the thread's fs_struct private (unshare(CLONE_FS)).
class ns_home {
 public:
  static result<ns_home> open(ns_set kinds) {
    if (!not_thread_enterable(kinds).empty())
      return nsentry_error(
          errc::invalid_argument, step::enter,
          not_thread_enterable(kinds).names() + " cannot be entered by one thread of a process");
    ns_home h;
    h.tid_ = ::pthread_self();
    if (kinds.contains(ns_kind::mnt) && sys::calls.unshare(CLONE_FS) == -1)
      return posix_error(step::unshare);
    for (ns_kind k : kinds) {
      auto fd =
          open_file("/proc/thread-self/ns/" + std::string(row_of(k).effective_entry), O_RDONLY);
      if (!fd) return with_kind(std::move(fd).error(), k);
      h.fds_[static_cast<std::size_t>(k)] = std::move(fd).value();
    }
    h.kinds_ = kinds;
    return h;
  }

  ns_set kinds() const noexcept { return kinds_; }

  // Enters every namespace of `target` on this thread; the guard brings it home.
  result<scoped_entry> enter(const opened_namespaces& target) const {
    const ns_set kinds = target.kinds();
    if (kinds.empty())
      return nsentry_error(errc::invalid_argument, step::enter, "no namespace given");
    if (!(kinds - kinds_).empty())
      return nsentry_error(errc::invalid_argument, step::enter,
                           (kinds - kinds_).names() + " not opened by this ns_home");
    if (!::pthread_equal(::pthread_self(), tid_))
      return nsentry_error(errc::invalid_argument, step::enter, "ns_home used on another thread");
    scoped_entry g;
    g.tid_ = tid_;
    for (ns_kind k : kinds)
      g.restore_fd_[static_cast<std::size_t>(k)] = fds_[static_cast<std::size_t>(k)].get();
    if (kinds.contains(ns_kind::mnt)) {
      auto cwd = open_file(".", O_PATH | O_DIRECTORY);
      if (!cwd) return std::move(cwd).error();
      g.cwd_ = std::move(cwd).value();
    }
    for (const auto& n : target.fds()) {
      if (sys::calls.setns(n.fd, clone_flag_of(n.kind)) == 0) {
        g.kinds_.insert(n.kind);
        continue;
      }
      error e = target.to_error(failure::at(step::setns, errno, n.kind));
      if (auto back = g.restore(); !back) {
        error r = std::move(back).error();
        r.detail = "after: " + e.message();
        g.kinds_ = {};  // reported: do not abort in the destructor as well
        return r;
      }
      return e;
    }
    return g;
  }

 private:
  ns_home() = default;

  std::array<unique_fd, ns_kind_count> fds_{};
  ns_set kinds_;
  pthread_t tid_{};  // the thread it belongs to (pthread_self: no syscall to check)
};

// Typed: enter_scoped<net_ns, uts_ns>(pid). User and time do not compile.
template <thread_enterable_namespace... K>
result<scoped_entry> enter_scoped(pid_t pid) {
  constexpr ns_set kinds = thread_ns_set<K...>::value;
  return scoped_entry::enter(kinds, [&] { return join_pid(pid, kinds); });
}

// Typed, by path: one ns_join per kind of K..., no more, no less.
template <thread_enterable_namespace... K>
result<scoped_entry> enter_scoped(std::span<const ns_join> paths) {
  constexpr ns_set kinds = thread_ns_set<K...>::value;
  NSENTRY_TRY(auto o, opened_namespaces::open(paths));
  if (o.kinds() != kinds)
    return nsentry_error(errc::invalid_argument, step::enter,
                         "paths are for " + o.kinds().names() + ", expected " + kinds.names());
  return scoped_entry::enter(kinds, [&] { return o.join(); });
}

// Run-time sets: user and time are refused with errc::invalid_argument.
inline result<scoped_entry> enter_scoped(ns_set kinds, pid_t pid) {
  return scoped_entry::enter(kinds, [&] { return join_pid(pid, kinds); });
}

inline result<scoped_entry> enter_scoped(std::span<const ns_join> paths) {
  NSENTRY_TRY(auto o, opened_namespaces::open(paths));
  return scoped_entry::enter(o.kinds(), [&] { return o.join(); });
}

}  // namespace nsentry::inline v0
