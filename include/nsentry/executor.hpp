// nsentry/executor.hpp — steps composed into a sequence, and carrying out a whole plan.
//
// Steps are small types: a `name`, a one-line contract, and `result<void> operator()()`.
// run_sequence(step...) runs them in order and stops at the first failure, whose error then
// says which step it was ("... : in step join: Operation not permitted").
//
//   NSENTRY_TRY(run_sequence(join_step{{{ns_kind::net, "/run/netns/a"}}},
//                            create_step{ns_set::of<uts_ns>()}));
//
// run_plan(plan, cmd) is runc's entry sequence with the exec at the end, in three processes
// like runc's stages: the caller (writes the maps and time offsets from outside), a child that
// joins, creates and — when pid or time namespaces are involved, which take effect only for
// children — forks the command's process and mirrors its exit status (its parent-death signal
// is SIGKILL, so killing the child handle kills the command).
//
// Contracts: parent side; thread-safe (the work that needs a single thread happens in the
// child); privileges as the plan requires (rootless plans map through newuidmap/newgidmap).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "nsentry/child.hpp"
#include "nsentry/create.hpp"
#include "nsentry/error.hpp"
#include "nsentry/fd.hpp"
#include "nsentry/id_map_writer.hpp"
#include "nsentry/join.hpp"
#include "nsentry/ns.hpp"
#include "nsentry/plan.hpp"
#include "nsentry/proc_attrs.hpp"
#include "nsentry/sys.hpp"

namespace nsentry {

// --- steps ---------------------------------------------------------------------------------

// Join namespace files (join.hpp's algorithm). Calling thread; user/time need a single thread.
struct join_step {
  static constexpr std::string_view name = "join";
  std::vector<ns_join> joins;
  result<void> operator()() const { return join_paths(joins); }
};

// Join a process's namespaces (setns by pidfd on Linux >= 5.8). Calling thread.
struct join_pid_step {
  static constexpr std::string_view name = "join_pid";
  pid_t pid = 0;
  ns_set kinds;
  result<void> operator()() const { return join_pid(pid, kinds); }
};

// unshare() in runc order (user first and alone). Calling thread; user/time need one thread.
struct create_step {
  static constexpr std::string_view name = "create";
  ns_set kinds;
  result<void> operator()() const { return create_namespaces(kinds); }
};

// Write a process's setgroups/uid_map/gid_map from outside. Thread-safe; may spawn newuidmap.
struct id_map_step {
  static constexpr std::string_view name = "id_maps";
  pid_t pid = 0;
  id_map_request maps;
  result<void> operator()() const { return write_id_maps(pid, maps); }
};

// Write /proc/<pid>/oom_score_adj. Thread-safe.
struct oom_step {
  static constexpr std::string_view name = "oom_score_adj";
  pid_t pid = 0;
  int value = 0;
  result<void> operator()() const { return write_oom_score_adj(pid, value); }
};

// Write a new time namespace's offsets before anyone enters it (Linux >= 5.6). Thread-safe.
struct time_offsets_step {
  static constexpr std::string_view name = "time_offsets";
  pid_t pid = 0;
  std::vector<time_offset> offsets;
  result<void> operator()() const { return write_time_offsets(pid, offsets); }
};

template <class S>
concept step = requires(const S& s) {
  { S::name } -> std::convertible_to<std::string_view>;
  { s() } -> std::same_as<result<void>>;
};

// Runs the steps in order; the first failure is returned with the step's name in its detail.
template <step... S>
result<void> run_sequence(const S&... steps) {
  std::optional<error> failed;
  auto one = [&](const auto& s) {
    auto r = s();
    if (r) return true;
    error e = std::move(r).error();
    e.detail = "in step " + std::string(s.name) + (e.detail.empty() ? "" : ": " + e.detail);
    failed = std::move(e);
    return false;
  };
  (one(steps) && ...);
  if (failed) return std::move(*failed);
  return success();
}

// --- a whole plan ----------------------------------------------------------------------------

struct run_options {
  int cgroup_fd = -1;  // cgroup v2 directory the first child starts in (CLONE_INTO_CGROUP)
};

namespace detail {

// Everything the plan's child needs, prepared before the clone.
struct plan_child {
  std::span<const ns_fd> joins;
  ns_set create;
  bool set_root_uid = false;  // uid_map maps 0: become it after the maps
  bool set_root_gid = false;
  bool want_time_offsets = false;
  bool fork_command = false;  // pid/time involved: the command runs in a grandchild
  bool drop_groups = false;
  char oom[16] = {};
  std::size_t oom_len = 0;
  int sock = -1;         // our end of the channel
  int parent_sock = -1;  // the parent's end, closed in the child
  const exec_spec* cmd = nullptr;

  child_failure ask(record_type t) const noexcept {
    send_record(sock, t);
    char ack = 0;
    ssize_t n;
    while ((n = sys::calls.read(sock, &ack, 1)) == -1 && errno == EINTR) {
    }
    if (n != 1) ::_exit(125);  // the parent gave up (and reports why)
    return {};
  }

  child_failure final_process() const noexcept {
    if (drop_groups && sys::calls.setgroups(0, nullptr) == -1)
      return child_failure::at(child_step::setgroups, errno);
    return cmd->exec();
  }

  // The command's process when it must be a grandchild. Mirrors its status and never returns.
  [[noreturn]] void fork_and_mirror() const noexcept {
    pid_t me = ::getpid();
    // The grandchild's parent-death signal can be set only after the fork; this pipe (its
    // write end held by us alone) tells it whether we died in between. getppid() cannot: in
    // a new pid namespace it is 0 either way.
    int alive[2];
    if (sys::calls.pipe2(alive, O_CLOEXEC | O_NONBLOCK) == -1) {
      send_record(sock, record_type::failure, child_failure::at(child_step::fork, errno));
      ::_exit(125);
    }
    sys::clone_args args;
    args.exit_signal = SIGCHLD;
    long pid = sys::calls.clone3(&args, sizeof args);
    if (pid == -1 && errno == ENOSYS) pid = sys::calls.fork();
    if (pid == -1) {
      send_record(sock, record_type::failure, child_failure::at(child_step::fork, errno));
      ::_exit(125);
    }
    if (pid == 0) {
      sys::calls.close(alive[1]);
      child_failure f{};
      char c;
      if (sys::calls.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) == -1)
        f = child_failure::at(child_step::prctl, errno);
      else if (sys::calls.read(alive[0], &c, 1) != -1 || errno != EAGAIN)
        ::_exit(125);  // the mirror died already: nobody is waiting for us
      sys::calls.close(alive[0]);
      if (!f.failed()) f = final_process();
      send_record(sock, record_type::failure, f);
      ::_exit(child_exit_code(f));
    }
    sys::calls.close(alive[0]);
    sys::calls.close(sock);  // the grandchild's copy alone now tells the parent about exec
    siginfo_t info{};
    while (sys::calls.waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED) == -1) {
      if (errno != EINTR) ::_exit(125);
    }
    if (info.si_code == CLD_EXITED) ::_exit(info.si_status);
    int sig = info.si_status;
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sys::calls.sigaction(sig, &dfl, nullptr);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    sys::calls.thread_sigmask(SIG_UNBLOCK, &one, nullptr);
    sys::calls.kill(me, sig);
    ::_exit(128 + sig);
  }

  child_failure operator()() const noexcept {
    sys::calls.close(parent_sock);
    if (oom_len) {
      int fd = sys::calls.openat(AT_FDCWD, "/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC, 0);
      if (fd == -1) return child_failure::at(child_step::oom_score_adj, errno);
      ssize_t n = sys::calls.write(fd, oom, oom_len);
      int err = errno;
      sys::calls.close(fd);
      if (n != static_cast<ssize_t>(oom_len)) return child_failure::at(child_step::oom_score_adj, err);
    }
    if (!joins.empty()) {
      int self = open_self_ns_dir();
      if (self == -1) return child_failure::at(child_step::open_ns, errno);
      auto f = join_fds(joins, self);
      sys::calls.close(self);
      if (f.failed()) return f;
    }
    if (auto f = unshare_user(create); f.failed()) return f;
    if (create.contains(ns_kind::user)) {
      ask(record_type::maps_please);
      auto u = static_cast<std::uint8_t>(ns_kind::user);
      if (set_root_gid && sys::calls.setresgid(0, 0, 0) == -1)
        return child_failure::at(child_step::setresgid, errno, u);
      if (set_root_uid && sys::calls.setresuid(0, 0, 0) == -1)
        return child_failure::at(child_step::setresuid, errno, u);
    }
    if (auto f = unshare_rest(create); f.failed()) return f;
    if (want_time_offsets) ask(record_type::time_please);
    if (fork_command) fork_and_mirror();
    return final_process();
  }
};

inline bool maps_root(const id_map& m) {
  for (const auto& r : m.ranges())
    if (r.inside == 0) return true;
  return false;
}

}  // namespace detail

// Carries out `p` and execs `cmd` inside. Returns once `cmd` has been exec'd; the returned child
// is the process to wait for (its status is the command's: code, or killed by the same signal).
// A failure anywhere — parent or child side — is an error naming the step, the namespace and
// the path; no child is left behind and no fd leaks.
inline result<child> run_plan(const plan& p, const exec_spec& cmd, run_options opt = {}) {
  NSENTRY_TRY(p.validate());
  if (p.mount_sources && !p.mount_sources->empty())
    return nsentry_error(errc::invalid_plan, "mount_sources",
                         "not supported by the executor (runc 1.1 idmapped mount sources)");
  if (p.create.contains(ns_kind::time) && !kernel_has(feature::time_namespace))
    return with_kind(nsentry_error(errc::unsupported_kernel, "create"), ns_kind::time);
  NSENTRY_TRY(auto opened, opened_namespaces::open(p.join));

  int sv[2];
  if (sys::calls.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
    return posix_error("socketpair");
  unique_fd ours(sv[0]), theirs(sv[1]);

  detail::plan_child pc;
  pc.joins = opened.fds();
  pc.create = p.create;
  pc.set_root_uid = detail::maps_root(p.uid_map);
  pc.set_root_gid = detail::maps_root(p.gid_map);
  pc.want_time_offsets = !p.time_offsets.empty();
  pc.fork_command = !children_only_kinds(p.create | opened.kinds()).empty();
  pc.drop_groups = p.drop_groups();
  if (p.oom_score_adj) {
    auto text = std::to_string(*p.oom_score_adj);
    pc.oom_len = text.copy(pc.oom, sizeof pc.oom);
  }
  pc.sock = theirs.get();
  pc.parent_sock = ours.get();
  pc.cmd = &cmd;

  spawn_options so;
  so.share_memory = false;  // the child waits for us: it cannot borrow our memory
  so.cgroup_fd = opt.cgroup_fd;
  so.report_fd = theirs.get();
  NSENTRY_TRY(auto c, spawn(so, pc));
  theirs.reset();

  id_map_request maps{p.uid_map, p.gid_map, p.deny_setgroups(), p.uidmap_tool, p.gidmap_tool};
  for (;;) {
    NSENTRY_TRY(auto rec, read_record(ours.get()));
    if (!rec) break;  // the command was exec'd: every holder of the child's end is gone
    auto type = static_cast<record_type>(rec->type);
    if (type == record_type::failure) {
      error e = opened.to_error(failure_from(*rec));
      if (e.step == "exec") e.path = cmd.argv().front();
      return with_pid(std::move(e), c.pid());
    } else if (type == record_type::maps_please) {
      NSENTRY_TRY(write_id_maps(c.pid(), maps));
    } else if (type == record_type::time_please) {
      NSENTRY_TRY(write_time_offsets(c.pid(), p.time_offsets));
    } else {
      return nsentry_error(errc::child_failed, "read", "unknown record from child");
    }
    NSENTRY_TRY(write_all(ours.get(), std::string_view("+", 1)));
  }
  return c;
}

}  // namespace nsentry
