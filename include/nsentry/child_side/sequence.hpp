// nsentry/child_side/sequence.hpp — THE entry sequence. Every caller runs this one:
// run_plan's child, enter_and_exec (in the calling process), runc's stage-1, and a user's own
// composition (build an entry_program, spawn run_entry, serve the channel).
//
//   0. oom_score_adj (policy)           4. unshare user → ask for maps → become root
//   1. non-dumpable (policy)            5. unshare the rest
//   2. join by pidfd (one setns)        6. ask for time offsets
//   3. join by files (runc's order)     6b. receive mount-source fds onto their numbers
//                                       7. fork when pid/time took part (child_side/mirror.hpp)
//                                       8. drop supplementary groups → final() (exec, or return)
//
// The program is plain data prepared by the parent (nothing here allocates); the policy
// carries the real differences between callers. Requests go over the program's channel
// (channel.hpp); a parent answers them with serve().
//
// Contracts: run_entry is noexcept, allocation-free and async-signal-safe, and so must `final`
// be (`failure() noexcept`). It changes the calling thread/process; user, time and the fork
// need a single-threaded process (a fresh child is one). Linux >= 5.3.
#pragma once

#include <sys/prctl.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <span>

#include "nsentry/channel.hpp"
#include "nsentry/child_side/create.hpp"
#include "nsentry/child_side/join.hpp"
#include "nsentry/child_side/mirror.hpp"
#include "nsentry/ns.hpp"
#include "nsentry/sys.hpp"
#include "nsentry/trace.hpp"

namespace nsentry::inline v0::child_side {

struct entry_policy {
  bool write_oom = true;  // false: a parent stage writes oom_score_adj (runc's stage-0)
  // Non-dumpable for the whole sequence (and so for the mirror and the command's process until
  // its exec), dumpable again only while the parent writes the id maps or the time offsets (an
  // unprivileged helper cannot write a non-dumpable process's /proc files). The default: a
  // process that joined a container's namespaces and still holds the caller's memory and fds
  // must not be ptrace-able or dump core there (CVE-2016-9962). runc sets its own rule
  // (non-dumpable when namespaces are joined by path).
  bool nondumpable = true;
  // Joining a user namespace (by pidfd or file): setgroups(0, NULL) between setresgid and
  // setresuid, as nsenter does; a refusal is a failure (step::setgroups). run_plan and
  // enter_and_exec set it; runc's stage-1 keeps runc's rule (its stage-2 drops the groups when
  // the plan says so: drop_groups below).
  bool drop_groups_on_user_join = false;
};

struct entry_program {
  int channel = -1;      // requests and failure reports; -1: nobody to ask (no user/time)
  int self_ns_dir = -1;  // our /proc ns directory, opened before anything was joined; -1: the
                         // sequence opens (and closes) its own before its first join
  int join_pidfd = -1;   // join join_pid_kinds of this process with one setns(pidfd)
  ns_set join_pid_kinds;
  std::span<const ns_fd> join_files;  // namespace files, joined with runc's algorithm
  ns_set create;
  bool become_root_uid = false;  // after the maps: setresuid(0,0,0) (the uid map maps 0)
  bool become_root_gid = false;  // setresgid(0,0,0) (the gid map maps 0)
  bool want_time_offsets = false;
  bool fork_for_children = false;  // pid/time took part: the final step runs in a grandchild
  bool drop_groups = false;        // setgroups(0, NULL) before the final step
  std::array<char, 16> oom{};      // oom_score_adj as decimal text, oom_len bytes of it
  std::uint8_t oom_len = 0;
  entry_policy policy;
  // Mount sources (mount_sources.hpp): after unsharing, ask the parent, which opens each source
  // inside our mount namespace and sends the descriptors in order; each lands on its number
  // here, without CLOEXEC, for whatever runs after the sequence. No target may be `channel` or
  // `self_ns_dir` (spawn_entry moves its channel out of the way).
  std::span<const int> mount_fd_targets;
  trace_buffer* trace = nullptr;          // record every step's start and duration (opt-in)
  nsentry::step final_step = step::exec;  // the final step's name in the trace (none: not traced)
};

inline failure set_dumpable(bool on) noexcept {
  if (sys::calls.prctl(PR_SET_DUMPABLE, on ? 1 : 0, 0, 0, 0) == -1)
    return failure::at(step::prctl, errno);
  return {};
}

inline failure write_own_oom(const entry_program& p) noexcept {
  int fd = sys::calls.openat(AT_FDCWD, "/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC, 0);
  if (fd == -1) return failure::at(step::oom_score_adj, errno);
  ssize_t n;
  while ((n = sys::calls.write(fd, p.oom.data(), p.oom_len)) == -1 && errno == EINTR) {
  }
  int err = n == -1 ? errno : EIO;
  sys::calls.close(fd);
  if (n != static_cast<ssize_t>(p.oom_len)) return failure::at(step::oom_score_adj, err);
  return {};
}

namespace detail {
inline failure join_namespaces(const entry_program& p, int self_ns_dir) noexcept;
inline failure create_namespaces(const entry_program& p) noexcept;
}  // namespace detail

// Steps 0-6b: everything up to the fork. Returns the first failure.
inline failure enter_namespaces(const entry_program& p) noexcept {
  if (p.join_files.empty() || p.self_ns_dir >= 0) {
    if (auto f = detail::join_namespaces(p, p.self_ns_dir); f.failed()) return f;
  } else {
    int self = open_self_ns_dir();  // before any join: a joined mount namespace may hide us
    if (self == -1) return failure::at(step::open, errno);
    failure f = detail::join_namespaces(p, self);
    sys::calls.close(self);  // before step 6b, which may place a descriptor on its number
    if (f.failed()) return f;
  }
  return detail::create_namespaces(p);
}

// Step 6b: receive the mount sources' descriptors onto their numbers.
inline failure receive_mount_fds(const entry_program& p) noexcept {
  if (!send(p.channel, record_type::mount_sources)) return failure::at(step::mount_sources, errno);
  for (int target : p.mount_fd_targets) {
    int fd = receive_fd(p.channel);
    if (fd == -1) return failure::at(step::mount_sources, errno);
    int placed = fd == target ? sys::calls.setfd(fd, 0) : sys::calls.dup3(fd, target, 0);
    int err = errno;
    if (fd != target) sys::calls.close(fd);
    if (placed == -1) return failure::at(step::mount_sources, err);
  }
  return wait_ack(p.channel);
}

// Runs one step, recording it when tracing.
template <class Step>
failure traced(trace_buffer* tr, step s, std::uint8_t kind, Step&& run) noexcept {
  if (tr == nullptr) return run();
  std::uint64_t t0 = trace_now();
  failure f = run();
  record_step(tr, s, t0, f.err, kind);
  return f;
}

// Steps 0-3.
inline failure detail::join_namespaces(const entry_program& p, int self_ns_dir) noexcept {
  trace_buffer* tr = p.trace;
  // oom_score_adj first: a non-dumpable process's /proc/self files belong to root.
  if (p.policy.write_oom && p.oom_len)
    if (auto f =
            traced(tr, step::oom_score_adj, no_kind, [&]() noexcept { return write_own_oom(p); });
        f.failed())
      return f;
  if (p.policy.nondumpable)
    if (auto f = set_dumpable(false); f.failed()) return f;
  if (p.join_pidfd >= 0)
    if (auto f = traced(tr, step::setns, no_kind,
                        [&]() noexcept {
                          return join_pidfd(p.join_pidfd, p.join_pid_kinds,
                                            p.policy.drop_groups_on_user_join);
                        });
        f.failed())
      return f;
  if (!p.join_files.empty())
    if (auto f = join_fds(p.join_files, self_ns_dir, tr, p.policy.drop_groups_on_user_join);
        f.failed())
      return f;
  return {};
}

// Steps 4-6b.
inline failure detail::create_namespaces(const entry_program& p) noexcept {
  trace_buffer* tr = p.trace;
  if (p.create.contains(ns_kind::user)) {
    if (auto f = traced(tr, step::unshare, static_cast<std::uint8_t>(ns_kind::user),
                        [&]() noexcept { return unshare_user(p.create); });
        f.failed())
      return f;
    if (p.policy.nondumpable)
      if (auto f = set_dumpable(true); f.failed()) return f;
    // The parent writes the maps (or runs newuidmap) while we wait: the request's duration.
    if (auto f = traced(tr, step::id_map, no_kind,
                        [&]() noexcept { return ask(p.channel, record_type::id_maps); });
        f.failed())
      return f;
    if (p.policy.nondumpable)
      if (auto f = set_dumpable(false); f.failed()) return f;
    if (p.become_root_gid && sys::calls.setresgid(0, 0, 0) == -1)
      return failure::at(step::setresgid, errno, ns_kind::user);
    if (p.become_root_uid && sys::calls.setresuid(0, 0, 0) == -1)
      return failure::at(step::setresuid, errno, ns_kind::user);
  }
  if (!(p.create - ns_set{ns_kind::user}).empty())
    if (auto f =
            traced(tr, step::unshare, no_kind, [&]() noexcept { return unshare_rest(p.create); });
        f.failed())
      return f;
  if (!p.mount_fd_targets.empty())
    if (auto f = traced(tr, step::mount_sources, no_kind,
                        [&]() noexcept { return receive_mount_fds(p); });
        f.failed())
      return f;
  if (p.want_time_offsets) {
    if (p.policy.nondumpable)
      if (auto f = set_dumpable(true); f.failed()) return f;
    if (auto f = traced(tr, step::timens_offsets, no_kind,
                        [&]() noexcept { return ask(p.channel, record_type::time_offsets); });
        f.failed())
      return f;
    if (p.policy.nondumpable)
      if (auto f = set_dumpable(false); f.failed()) return f;
  }
  return {};
}

// The whole sequence. Returns final()'s failure, or the first step's; with fork_for_children
// it returns only in the grandchild's final step if that returns (the mirror never returns).
template <child_function Final>
failure run_entry(const entry_program& p, Final&& final) noexcept {
  if (auto f = enter_namespaces(p); f.failed()) return f;
  auto finish = [&p, &final]() noexcept -> failure {
    if (p.drop_groups && sys::calls.setgroups(0, nullptr) == -1)
      return failure::at(step::setgroups, errno);
    // The final step's start; the parent ends it (exec closes the channel), see trace.hpp.
    if (p.final_step != step::none) mark_start(p.trace, p.final_step);
    return final();
  };
  if (p.fork_for_children) fork_and_mirror(p.channel, finish, p.trace);
  return finish();
}

}  // namespace nsentry::inline v0::child_side
