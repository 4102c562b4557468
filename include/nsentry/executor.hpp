// nsentry/executor.hpp — carrying out entry sequences from the parent side.
//
//   NSENTRY_TRY(auto c, run_plan(p, cmd));               // a plan (runc's sequence), then exec
//   NSENTRY_TRY(auto st, enter_and_exec(req, cmd));      // nsenter: join, then exec (or fork)
//   NSENTRY_TRY(auto c, spawn_entry(prog, fn, handlers)); // a sequence composed by hand
//
// All three run the one entry sequence (child_side/sequence.hpp). run_plan and spawn_entry run
// it in a new child, answering its requests over a channel (channel.hpp's serve) from here: the
// id maps (write_id_maps, with the newuidmap/newgidmap fallback), the time offsets and the mount
// sources (mount_sources.hpp: opened inside the child's mount namespace). When pid
// or time namespaces are involved, which take effect only for children, the child forks the
// command's process and mirrors its exit status (child_side/mirror.hpp; its parent-death
// signal is SIGKILL, so killing the returned child kills the command).
//
// Contracts: parent side (allocates); run_plan/spawn_entry are thread-safe (the work that
// needs a single thread happens in the child); enter_and_exec changes the calling process
// (single-threaded for user, time and mnt). Privileges as the plan requires (rootless plans
// map through newuidmap/newgidmap).
#pragma once

#include <algorithm>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "nsentry/channel.hpp"
#include "nsentry/child.hpp"
#include "nsentry/child_side/sequence.hpp"
#include "nsentry/error.hpp"
#include "nsentry/exec_spec.hpp"
#include "nsentry/fd.hpp"
#include "nsentry/id_map_writer.hpp"
#include "nsentry/join.hpp"
#include "nsentry/mount_sources.hpp"
#include "nsentry/ns.hpp"
#include "nsentry/plan.hpp"
#include "nsentry/probe.hpp"
#include "nsentry/proc_attrs.hpp"
#include "nsentry/spawn.hpp"
#include "nsentry/trace.hpp"

namespace nsentry::inline v0 {

struct run_options {
  int cgroup_fd = -1;           // cgroup v2 directory the first child starts in (CLONE_INTO_CGROUP)
  step_trace* trace = nullptr;  // record every step's start and duration (trace.hpp); opt-in
  // Where run_plan places the plan's mount sources in the command: one number per entry of
  // plan::mount_sources, -1 for "" (as runc's _LIBCONTAINER_MOUNT_FDS). Empty: mount_fd_list's
  // default, 3, 4, ... for the non-empty sources. Whatever the caller's fds hold at these
  // numbers is replaced in the command.
  std::vector<int> mount_fds;
};

// Does entering `kinds` need a fork before the final step? (pid and time take effect only for
// children.) The one place this is decided.
constexpr bool needs_fork(ns_set kinds) noexcept { return !children_only_kinds(kinds).empty(); }

// Does this map map id 0 inside (so the sequence becomes root after writing it)?
inline bool maps_root(const id_map& m) noexcept {
  for (const auto& r : m.ranges())
    if (r.inside == 0) return true;
  return false;
}

// "-17" into the program's fixed buffer.
inline void set_oom(child_side::entry_program& prog, int value) noexcept {
  auto r = std::to_chars(prog.oom.data(), prog.oom.data() + prog.oom.size(), value);
  prog.oom_len = static_cast<std::uint8_t>(r.ptr - prog.oom.data());
}

// The library's answers to an entry sequence's requests for plan `p`: the id maps (setgroups
// rule, newuidmap/newgidmap fallback) and the time offsets of the child being served. `p` must
// outlive the exchange. Clients add their own handlers (runc/init.hpp).
inline std::vector<handler> plan_handlers(const plan& p) {
  std::vector<handler> out;
  out.emplace_back(record_type::id_maps, [&p](const record&, pid_t pid) -> result<reply> {
    NSENTRY_TRY(write_id_maps(pid, id_map_request{p.uid_map, p.gid_map, p.deny_setgroups(),
                                                  std::optional<std::string>(p.uidmap_tool),
                                                  std::optional<std::string>(p.gidmap_tool)}));
    return reply::ack;
  });
  out.emplace_back(record_type::time_offsets, [&p](const record&, pid_t pid) -> result<reply> {
    NSENTRY_TRY(write_time_offsets(pid, p.time_offsets));
    return reply::ack;
  });
  return out;
}

// Runs `final` at the end of the entry sequence `prog` in a new child, serving its requests
// through `handlers` until it has exec'd (or `final` finished). The program's channel is `ch`'s
// child end — pass your own `ch` when a handler must write to the channel (mount sources:
// mount_sources_handler(targets, ch.parent_end.get())), else the overload below makes one; when
// the child end's number is one of the program's mount-fd targets it is moved above them.
// `to_error` turns a child's failure into the error returned (default error_from).
template <class Final>
requires child_function<std::remove_reference_t<Final>> result<child> spawn_entry(
    socket_pair ch, child_side::entry_program prog, Final&& final,
    std::span<const handler> handlers, run_options opt = {},
    const std::function<error(const failure&)>& to_error = {}) {
  trace_buffer* tr = opt.trace ? opt.trace->buffer() : nullptr;
  if (std::find(prog.mount_fd_targets.begin(), prog.mount_fd_targets.end(), ch.child_end.get()) !=
      prog.mount_fd_targets.end()) {
    int above = *std::max_element(prog.mount_fd_targets.begin(), prog.mount_fd_targets.end()) + 1;
    int moved = sys::calls.dupfd(ch.child_end.get(), above, 1);
    if (moved == -1) return with_context(posix_error(step::dup), "channel");
    ch.child_end.reset(moved);
  }
  prog.channel = ch.child_end.get();
  prog.trace = tr;
  const int parent_end = ch.parent_end.get();
  spawn_options so;
  so.share_memory = false;  // the child waits for us: it cannot borrow our memory
  so.cgroup_fd = opt.cgroup_fd;
  so.report_fd = ch.child_end.get();
  std::uint64_t t0 = tr ? trace_now() : 0;
  NSENTRY_TRY(auto c, spawn(so, [&prog, &final, parent_end]() noexcept {
                sys::calls.close(parent_end);
                return child_side::run_entry(prog, final);
              }));
  record_step(tr, step::clone3, t0);
  ch.child_end.reset();
  NSENTRY_TRY(serve(ch.parent_end.get(), c.pid(), handlers, to_error));
  if (opt.trace) opt.trace->end_final(prog.final_step);
  return c;
}

template <class Final>
requires child_function<std::remove_reference_t<Final>> result<child> spawn_entry(
    child_side::entry_program prog, Final&& final, std::span<const handler> handlers,
    run_options opt = {}, const std::function<error(const failure&)>& to_error = {}) {
  NSENTRY_TRY(auto ch, socket_pair::make());
  return spawn_entry(std::move(ch), prog, std::forward<Final>(final), handlers, std::move(opt),
                     to_error);
}

// Carries out `p` and execs `cmd` inside. Returns once `cmd` has been exec'd; the returned child
// is the process to wait for (its status is the command's: code, or killed by the same signal).
// The plan's mount sources are opened inside the child's mount namespace and reach `cmd` on
// opt.mount_fds (mount_sources.hpp). A failure anywhere — parent or child side — is an error
// naming the step, the namespace and the path; no child is left behind and no fd leaks.
inline result<child> run_plan(const plan& p, const exec_spec& cmd, run_options opt = {}) {
  NSENTRY_TRY(p.validate());
  mount_fd_targets mounts;
  const bool has_sources = p.mount_sources && !p.mount_sources->empty();
  if (has_sources || !opt.mount_fds.empty()) {
    static const std::vector<std::string> none;
    const auto& sources = p.mount_sources ? *p.mount_sources : none;
    NSENTRY_TRY(mounts, pair_mount_sources(
                            sources, opt.mount_fds.empty() ? mount_fd_list(sources) : opt.mount_fds,
                            step::mount_sources));
  }
  if (p.create.contains(ns_kind::time) && !kernel_has(feature::time_namespace))
    return with_kind(nsentry_error(errc::unsupported_kernel, step::create), ns_kind::time);
  std::uint64_t t0 = opt.trace ? trace_now() : 0;
  NSENTRY_TRY(auto files, opened_namespaces::open(p.join));
  if (!p.join.empty() && opt.trace) record_step(opt.trace->buffer(), step::open, t0);

  child_side::entry_program prog;
  prog.join_files = files.fds();
  prog.create = p.create;
  prog.become_root_uid = maps_root(p.uid_map);
  prog.become_root_gid = maps_root(p.gid_map);
  prog.want_time_offsets = !p.time_offsets.empty();
  prog.fork_for_children = needs_fork(p.create | files.kinds());
  prog.drop_groups = p.drop_groups();
  prog.policy.drop_groups_on_user_join = true;
  if (p.oom_score_adj) set_oom(prog, *p.oom_score_adj);
  prog.mount_fd_targets = mounts.targets;

  NSENTRY_TRY(auto ch, socket_pair::make());
  auto handlers = plan_handlers(p);
  if (!mounts.targets.empty())
    handlers.push_back(mount_sources_handler(mounts, ch.parent_end.get()));
  auto to_error = [&](const failure& f) { return cmd.name_failure(files.to_error(f)); };
  return spawn_entry(
      std::move(ch), prog, [&cmd]() noexcept { return cmd.exec(); }, handlers, opt, to_error);
}

// What enter_and_exec joins: namespaces of a process, namespace files, or both.
struct enter_request {
  pid_t target = 0;             // the process whose namespaces to join (0: none)
  ns_set kinds;                 // which of its namespaces
  bool all = false;             // and every one of its namespaces that differs from ours
  std::vector<ns_join> files;   // namespace files to join; a kind here wins over the target's
  step_trace* trace = nullptr;  // record every step (trace.hpp); opt-in
  // Called just before the calling process execs the command (it does not return then): the
  // last moment to report, e.g. the trace.
  std::function<void()> before_exec;
  // When the command is spawned: the signals that may have a handler in this process
  // (spawn_options::handled_signals; nullopt: every signal, asked about one by one).
  std::optional<sigset_t> handled_signals;
};

// The entry sequence's default policy makes the calling process non-dumpable before its first
// join (exec makes the command dumpable again; when a pid or time namespace makes it spawn
// the command instead, the caller stays non-dumpable: it is in the container's namespaces).
//
// nsenter's job: joins in the *calling process*, then execs `cmd` — when neither pid nor time
// was entered, it does not return on success — or, when they were, spawns `cmd` (which alone
// sees them) and returns its exit status. A failure changes nothing it can avoid changing:
// every file and the target's pidfd are opened and the request checked before the first join.
inline result<exit_status> enter_and_exec(const enter_request& req, const exec_spec& cmd) {
  ns_set by_pid = req.kinds;
  if (req.all) {
    if (req.target == 0)
      return nsentry_error(errc::invalid_argument, step::enter, "--all needs a target pid");
    NSENTRY_TRY(auto d, differing_namespaces(req.target));
    by_pid |= d;
  }
  NSENTRY_TRY(auto files, opened_namespaces::open(req.files));
  by_pid = by_pid - files.kinds();  // an explicit file wins over the target for its kind
  if (!by_pid.empty() && req.target == 0)
    return nsentry_error(errc::invalid_argument, step::enter, "namespace kinds need a target pid");
  if (by_pid.empty() && files.kinds().empty() && !req.all)  // --all may find none: nsenter -a
    return nsentry_error(errc::invalid_argument, step::enter, "no namespace to enter");
  NSENTRY_TRY(check_thread_rules(files.kinds()));
  NSENTRY_TRY(auto target, pid_target::open(req.target, by_pid));
  if (target.pidfd() < 0) {
    NSENTRY_TRY(check_thread_rules(target.kinds()));
    NSENTRY_TRY(target.open_files_into(files));
  }
  // Our own ns directory, for the per-file join's checks, opened before the first join (see
  // open_self_ns_dir). setns(pidfd) needs none; when it changes nothing (below), nothing has
  // been joined yet, and the per-file retry opens it then.
  unique_fd self;
  if (!files.kinds().empty()) {
    NSENTRY_TRY(self, open_self_ns());
  }

  child_side::entry_program prog;
  prog.self_ns_dir = self.get();
  prog.policy.drop_groups_on_user_join = true;
  if (target.pidfd() >= 0) {
    prog.join_pidfd = target.pidfd();
    prog.join_pid_kinds = target.kinds();
  }
  prog.join_files = files.fds();
  prog.trace = req.trace ? req.trace->buffer() : nullptr;
  prog.final_step = step::none;  // the exec below is traced here, not by the sequence
  auto nothing = []() noexcept { return failure{}; };
  auto f = child_side::run_entry(prog, nothing);
  if (f.failed() && f.step == step::setns && (f.err == EINVAL || f.err == EUSERS) &&
      f.kind == no_kind) {
    // setns(pidfd) changed nothing. A multi-threaded caller asking for user/time is refused;
    // otherwise the per-file way, which also leaves out a user namespace we already share
    // (and serves kernels < 5.8, which take no pidfd in setns).
    NSENTRY_TRY(check_thread_rules(target.kinds()));
    NSENTRY_TRY(target.open_files_into(files));
    if (!self) {
      NSENTRY_TRY(self, open_self_ns());
    }
    prog.self_ns_dir = self.get();
    prog.join_pidfd = -1;
    prog.join_pid_kinds = {};
    prog.join_files = files.fds();
    f = child_side::run_entry(prog, nothing);
  }
  if (f.failed()) {
    if (f.kind == no_kind && f.step == step::setns) return target.to_error(f);
    error e = files.to_error(f);
    if (e.path.empty()) e.pid = req.target;
    return e;
  }

  const ns_set entered = target.kinds() | files.kinds();
  if (!needs_fork(entered)) {
    mark_start(prog.trace, step::exec);
    if (req.before_exec) req.before_exec();
    auto e = cmd.exec();  // returns only on failure
    return cmd.name_failure(error_from(e));
  }
  spawn_options so;
  so.handled_signals = req.handled_signals;
  // See spawn_options::share_memory: a time namespace needs a copying clone before Linux 6.0.
  so.share_memory =
      !entered.contains(ns_kind::time) || kernel_has(feature::exec_enters_time_namespace);
  mark_start(prog.trace, step::exec);
  NSENTRY_TRY(auto c, spawn_exec(cmd, so));
  if (req.trace) req.trace->end_final(step::exec);
  return c.wait();
}

}  // namespace nsentry::inline v0
