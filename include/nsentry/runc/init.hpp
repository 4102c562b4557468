// nsentry/runc/init.hpp — runc's init entry protocol (libcontainer/nsenter's nsexec()), whole.
//
//   if (runc::init({.protocol = runc_protocol::v1_1}) == runc::init_role::container) {
//     // stage-2: in the container's namespaces, as uid/gid 0, session leader. fds 3/4 intact.
//   }
//
// What happens (the spec: ../shared/spec/runc-bootstrap.md §1-§6; docs/runc.md):
//  - `_LIBCONTAINER_INITPIPE` unset or empty: returns `not_init` at once, touching nothing.
//    An invalid `_LIBCONTAINER_*` (or `_NSENTRY_RUNC_PROTOCOL`) value is fatal, and so is a
//    descriptor of the wrong kind (runc/env.hpp), before anything is read or written on it.
//  - stage-0 (the calling process): optional sealed self re-exec (runc/sealed_exe.hpp); reads
//    one bootstrap message from the init pipe (split writes and EINTR are fine); writes
//    oom_score_adj; turns non-dumpable when namespaces are joined by path; opens every path;
//    clones stage-1 with CLONE_PARENT; serves stage-1 (setgroups/uid_map/gid_map with the
//    newuidmap/newgidmap fallback, time offsets); receives stage-2's pid and writes
//    `{"stage1_pid":N,"stage2_pid":M}\n` to the init pipe (pids as clone returned them, i.e.
//    in stage-0's pid namespace); releases stage-2; waits for it to finish its setup; _exit(0).
//  - stage-1: joins (join_fds: runc's order and verification), creates the user namespace and
//    asks for its maps, setresuid(0,0,0), unshares the rest, asks for the time offsets, clones
//    stage-2 with CLONE_PARENT, reports its pid, _exit(0).
//  - stage-2: waits for stage-0's go-ahead; setsid(), setuid(0), setgid(0) (as setres*id: the
//    same effect for a privileged caller, and no other caller gets here), setgroups(0, NULL)
//    when plan::drop_groups(); closes every descriptor the init opened; returns `container`.
// The caller reaps stage-1 and stage-2 (CLONE_PARENT makes them its children, as in runc).
// With init_options::trace, every stage records its steps (trace.hpp) into the one shared
// buffer: stage-0's message, opens and clone, stage-1's sequence and its clone, stage-2's wait
// for the go-ahead and its setup calls; stage-0 calls before_exit (to report) as it exits.
//
// Failures: one `fatal` line on the log pipe (or `FATAL: <text>` on stderr without one) from
// the stage that failed, naming the step, the namespace kind, the path and errno; stage-0 then
// SIGKILLs the stages it knows, waits (bounded) until they are dead, and exits 1. Nothing leaks:
// every descriptor is O_CLOEXEC and stage-2 closes those it inherited from the init.
//
// Structure: stage-0 is one result-returning function (run_stage0) whose error is reported once,
// at the top (init); stage-1 is the library's entry sequence (child_side/sequence.hpp) with
// runc's policy (oom written by stage-0, non-dumpable when joining by path) and a final step
// that clones stage-2; requests travel over the library's channel (channel.hpp), answered by
// serve() with runc's own handlers (runc/records.hpp adds the pid and finish records).
//
// Contract: call it single-threaded (joining user/mount namespaces and the stage clones need
// that), early — typically from an ELF constructor (runc/constructor.hpp). Stage-0 allocates
// (it is the exec'd process); stage-1 and stage-2 run only allocation-free, exception-free,
// async-signal-safe code until stage-2 returns. It never returns in stage-0 or stage-1.
// Linux >= 5.3 (clone3 with CLONE_PIDFD and CLONE_PARENT); time offsets need >= 5.6.
// Privilege: whatever the message asks for (rootless messages map through newuidmap).
#pragma once

#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include "nsentry/bootstrap.hpp"
#include "nsentry/channel.hpp"
#include "nsentry/child_side/sequence.hpp"
#include "nsentry/executor.hpp"
#include "nsentry/id_map_writer.hpp"
#include "nsentry/join.hpp"
#include "nsentry/plan.hpp"
#include "nsentry/proc_attrs.hpp"
#include "nsentry/runc/env.hpp"
#include "nsentry/runc/log.hpp"
#include "nsentry/runc/mount_sources.hpp"
#include "nsentry/runc/pid_report.hpp"
#include "nsentry/runc/records.hpp"
#include "nsentry/runc/sealed_exe.hpp"
#include "nsentry/sys.hpp"
#include "nsentry/trace.hpp"

namespace nsentry::inline v0::runc {

// Chooses the meaning of attribute 27290 at run time: "1.1" or "1.2" (runc >= 1.2).
inline constexpr const char* protocol_var = "_NSENTRY_RUNC_PROTOCOL";

struct init_options {
  runc_protocol protocol = runc_protocol::v1_2;  // unless _NSENTRY_RUNC_PROTOCOL says otherwise
  bool sealed = false;                 // re-exec from a clone of the binary first (needs argv)
  clone_via clone = clone_via::memfd;  // how, when `sealed` (runc/sealed_exe.hpp)
  char* const* argv = nullptr;         // for the sealed re-exec
  char* const* envp = nullptr;         // the environment to scan; nullptr: environ
  // Opt-in per-step latency of all three stages (trace.hpp; a buffer made before the call: a
  // sealed re-exec starts a new process image, whose steps only its own buffer sees).
  step_trace* trace = nullptr;
  // Stage-0, once stage-2 has finished its setup, just before stage-0 exits 0: the last moment
  // to report, e.g. the trace.
  std::function<void()> before_exit;
};

enum class init_role {
  not_init,   // no init pipe: nothing happened
  container,  // this is stage-2, set up; the caller continues as the container's process
};

namespace detail {

// The protocol named by _NSENTRY_RUNC_PROTOCOL, or `fallback` when unset/empty; nullopt when
// the value is neither "1.1" nor "1.2".
inline std::optional<runc_protocol> protocol_from_env(char* const* envp,
                                                      runc_protocol fallback) noexcept {
  const char* v = nsentry::runc::detail::env_lookup(envp, protocol_var);
  if (v == nullptr || *v == '\0') return fallback;
  return runc_protocol_from_name(v);
}

// What stage-1 and stage-2 need, prepared by stage-0 (so that they need not allocate).
struct stage_context {
  logger lg;
  child_side::entry_program program;                    // stage-1's entry sequence
  std::array<const char*, ns_kind_count> join_paths{};  // by kind, for error lines
  bool drop_groups = false;                             // stage-2: setgroups(0, NULL)
};

// One fatal line for a stage's failure: "setns(net) on /proc/1/ns/pid: Invalid argument".
inline void log_failure(const stage_context& c, const failure& f) noexcept {
  const bool has_kind = f.kind < ns_kind_count;
  std::string_view kind = has_kind ? name_of(static_cast<ns_kind>(f.kind)) : "";
  const char* path = has_kind ? c.join_paths[f.kind] : nullptr;
  std::string_view open = has_kind ? "(" : "", close = has_kind ? ")" : "";
  std::string_view on = path ? " on " : "";
  if (f.missing != 0) {
    // Kinds that did not take, as names: a fixed buffer, no allocation.
    char names[96];
    std::size_t n = 0;
    for (const auto& r : ns_kinds) {
      if (!(f.missing & static_cast<std::uint32_t>(r.clone_flag))) continue;
      if (n > 0) names[n++] = ',';
      for (char ch : r.name) names[n++] = ch;
    }
    c.lg.fatal(name_of(f.step), ": still outside ", std::string_view(names, n));
    return;
  }
  c.lg.fatal(name_of(f.step), open, kind, close, on, path ? path : "", ": ", errno_text{f.err});
}

[[noreturn]] inline void stage_fail(const stage_context& c, const failure& f) noexcept {
  log_failure(c, f);
  send(c.program.channel, record_type::failure, f);
  ::_exit(1);
}

// Stage-2 up to the point where it becomes the container's process.
inline void stage2(stage_context& c) noexcept {
  c.lg.set_stage(2);
  sys::calls.prctl(PR_SET_NAME, reinterpret_cast<unsigned long>("runc:[2:INIT]"), 0, 0, 0);
  c.lg.debug("~> nsexec stage-2");
  trace_buffer* tr = c.program.trace;
  std::uint64_t t0 = tr ? trace_now() : 0;
  if (auto f = wait_ack(c.program.channel); f.failed()) {
    if (f.err == EPIPE) ::_exit(1);  // stage-0 gave up (and says why)
    stage_fail(c, f);
  }
  record_step(tr, step::sync, t0);  // until stage-0's go-ahead
  // One setup call, recorded when tracing; its failure is stage-2's.
  auto call = [&c, tr](step s, auto&& run) noexcept {
    auto f = child_side::traced(
        tr, s, no_kind, [&]() noexcept { return run() == -1 ? failure::at(s, errno) : failure{}; });
    if (f.failed()) stage_fail(c, f);
  };
  call(step::setsid, []() noexcept { return sys::calls.setsid(); });
  call(step::setresuid, []() noexcept { return sys::calls.setresuid(0, 0, 0); });
  call(step::setresgid, []() noexcept { return sys::calls.setresgid(0, 0, 0); });
  if (c.drop_groups)
    call(step::setgroups, []() noexcept { return sys::calls.setgroups(0, nullptr); });
  c.lg.debug("<~ nsexec stage-2");
  if (!send(c.program.channel, client_record(stage_record::finished)))
    stage_fail(c, failure::at(step::send, errno));  // else stage-0 kills what we exec
}

// Stage-1, allocation-free: the entry sequence, whose final step clones stage-2 (CLONE_PARENT:
// the caller of stage-0 reaps it too). Returns only in stage-2.
inline void stage1(stage_context& c) noexcept {
  c.lg.set_stage(1);
  sys::calls.prctl(PR_SET_NAME, reinterpret_cast<unsigned long>("runc:[1:CHILD]"), 0, 0, 0);
  c.lg.debug("~> nsexec stage-1");
  auto clone_stage2 = [&c]() noexcept -> failure {
    sys::clone_args args;
    args.flags = CLONE_PARENT;
    args.exit_signal = 0;  // required with CLONE_PARENT; the caller's own exit signal applies
    std::uint64_t t0 = c.program.trace ? trace_now() : 0;
    long pid = sys::calls.clone3(&args, sizeof args);
    if (pid == -1) return failure::at(step::clone3, errno);
    if (pid == 0) {
      stage2(c);
      return {};
    }
    record_step(c.program.trace, step::clone3, t0, 0, no_kind, static_cast<std::int32_t>(pid));
    // In stage-0's pid namespace: stage-1 never left it.
    if (!send(c.program.channel, client_record(stage_record::child_pid), {},
              static_cast<std::int32_t>(pid))) {
      // Stage-0 would wait for a pid it never gets, stage-2 for a go-ahead: end both waits.
      // Stage-2 is blocked on that go-ahead, so its pid is still its own.
      const int e = errno;
      sys::calls.kill(static_cast<pid_t>(pid), SIGKILL);
      stage_fail(c, failure::at(step::send, e));
    }
    c.lg.debug("<~ nsexec stage-1");
    ::_exit(0);
  };
  if (auto f = child_side::run_entry(c.program, clone_stage2); f.failed()) stage_fail(c, f);
}

// The stages stage-0 knows of, killed and awaited when it gives up.
struct stages {
  unique_fd channel;  // stage-0's end: closed only after the stages are dead
  unique_fd s1, s2;   // pidfds
  pid_t s1_pid = 0, s2_pid = 0;

  // SIGKILL every known stage and wait (bounded) until they are gone. Never throws.
  void abort() noexcept {
    const std::array<int, 2> pidfds{s1.get(), s2.get()};
    for (int fd : pidfds)
      if (fd >= 0) sys::calls.pidfd_send_signal(fd, SIGKILL, nullptr, 0);
    for (int fd : pidfds) {
      if (fd < 0) continue;
      pollfd p{fd, POLLIN, 0};
      // A pidfd polls readable once its process has exited, child of ours or not.
      while (sys::calls.poll(&p, 1, 5000) == -1 && errno == EINTR) {
      }
    }
  }
};

// Why run_stage0 stopped: an error to report, or a stage that reported its own failure.
struct stage0_outcome {
  bool stage_reported = false;  // a stage wrote its fatal line already
};

// Stage-0: everything after the environment check, as one result. Returns `container` only in
// stage-2 (which returns out of this frame); in stage-0 it returns an error or exits 0.
inline result<init_role> run_stage0(const init_options& opt, char* const* envp, logger& lg,
                                    const init_env& env, runc_protocol protocol, stages& st,
                                    stage0_outcome& out) {
  const int init_pipe = env.init_pipe;
  trace_buffer* tr = opt.trace ? opt.trace->buffer() : nullptr;
  std::uint64_t t0 = 0;
  if (opt.sealed) {
    if (auto r = reexec_cloned(opt.argv, envp, opt.clone); !r)
      return with_context(std::move(r).error(), "sealed re-exec");
  }
  // runc 1.1's parent (initWaiter) reads one 0x00 first: "past initial setup" (spec §1).
  if (protocol == runc_protocol::v1_1) {
    t0 = tr ? trace_now() : 0;
    if (auto w = write_all(init_pipe, std::string_view("\0", 1)); !w)
      return with_context(std::move(w).error(),
                          "could not inform the parent we are past initial setup");
    record_step(tr, step::write, t0);
  }
  lg.debug("=> nsexec container setup");  // runc's own line: runc's tests look for it
  t0 = tr ? trace_now() : 0;
  NSENTRY_TRY(auto pl, bootstrap::read(init_pipe, protocol));
  record_step(tr, step::bootstrap, t0);  // waiting for the message, reading and checking it
  lg.set_stage(0);
  sys::calls.prctl(PR_SET_NAME, reinterpret_cast<unsigned long>("runc:[0:PARENT]"), 0, 0, 0);
  lg.debug("~> nsexec stage-0");
  std::optional<mount_fd_targets> mounts;
  if (pl.mount_sources) {
    const char* v = nsentry::runc::detail::env_lookup(envp, mount_fds_var);
    if (v == nullptr)
      return nsentry_error(errc::invalid_environment, step::mount_fds,
                           "MOUNT_SOURCES without _LIBCONTAINER_MOUNT_FDS");
    NSENTRY_TRY(auto fds, parse_mount_fds(v));
    NSENTRY_TRY(mounts,
                pair_mount_sources(*pl.mount_sources, fds, {init_pipe, env.log_pipe.value_or(-1)}));
  }
  if (pl.oom_score_adj) {
    t0 = tr ? trace_now() : 0;
    NSENTRY_TRY(write_oom_score_adj(0, *pl.oom_score_adj));
    record_step(tr, step::oom_score_adj, t0);
  }
  t0 = tr ? trace_now() : 0;
  NSENTRY_TRY(auto opened, opened_namespaces::open(pl.join));
  if (!pl.join.empty()) record_step(tr, step::open, t0);
  NSENTRY_TRY(auto ch, socket_pair::make());

  detail::stage_context ctx;
  ctx.lg = lg;
  auto& prog = ctx.program;
  prog.channel = ch.child_end.get();
  prog.join_files = opened.fds();
  prog.create = pl.create;
  prog.become_root_uid = true;  // runc: setresuid(0,0,0) after the maps
  prog.want_time_offsets = !pl.time_offsets.empty();
  if (mounts) prog.mount_fd_targets = mounts->targets;
  prog.policy.write_oom = false;               // written above, before non-dumpable
  prog.policy.nondumpable = !pl.join.empty();  // runc's rule when joining by path
  prog.trace = tr;
  prog.final_step = step::none;  // the final step clones stage-2, traced by stage-1 itself
  for (const auto& j : pl.join) ctx.join_paths[static_cast<std::size_t>(j.kind)] = j.path.c_str();
  ctx.drop_groups = pl.drop_groups();
  if (prog.policy.nondumpable && sys::calls.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
    return posix_error(step::prctl);

  int s1_pidfd = -1;
  sys::clone_args args;
  args.flags = CLONE_PARENT | CLONE_PIDFD;
  args.pidfd = reinterpret_cast<std::uint64_t>(&s1_pidfd);
  args.exit_signal = 0;
  t0 = tr ? trace_now() : 0;
  long s1 = sys::calls.clone3(&args, sizeof args);
  if (s1 == -1) return with_context(posix_error(step::clone3), "stage-1");
  if (s1 == 0) {
    ch.parent_end.reset();
    detail::stage1(ctx);  // returns only in stage-2
    // Stage-2 is the container's process now: it keeps nothing the init opened but fds 3/4.
    return init_role::container;
  }
  record_step(tr, step::clone3, t0, 0, no_kind, static_cast<std::int32_t>(s1));
  ch.child_end.reset();
  st.channel = std::move(ch.parent_end);
  st.s1.reset(s1_pidfd);
  st.s1_pid = static_cast<pid_t>(s1);

  bool finished = false;
  auto handlers = plan_handlers(pl);  // id maps and time offsets, as run_plan answers them
  const handler runc_handlers[] = {
      {record_type::mount_sources,
       [&](const record&, pid_t pid) -> result<reply> {
         if (!mounts)
           return nsentry_error(errc::child_failed, step::mount_sources,
                                "stage-1 asked for mount sources; the message has none");
         lg.debug("stage-1 requested mount sources");
         NSENTRY_TRY(open_mount_sources_in(pid, *mounts, st.channel.get()));
         return reply::ack;
       }},
      {client_record(stage_record::child_pid),
       [&](const record& r, pid_t) -> result<reply> {
         st.s2_pid = static_cast<pid_t>(r.value);
         int fd = sys::calls.pidfd_open(st.s2_pid, 0);  // stage-2 waits for us: it is alive
         if (fd == -1) {
           // Without its pidfd abort() cannot reach it: killed by pid now (it is blocked on
           // our go-ahead, so the pid is still its own).
           const int e = errno;
           sys::calls.kill(st.s2_pid, SIGKILL);
           return with_context(with_pid(posix_error(step::pidfd_open, e), st.s2_pid), "stage-2");
         }
         st.s2.reset(fd);
         lg.debug("stage-1 pid ", st.s1_pid, ", stage-2 pid ", st.s2_pid);
         std::uint64_t t = tr ? trace_now() : 0;
         NSENTRY_TRY(write_pid_report(init_pipe, {st.s1_pid, st.s2_pid}));
         record_step(tr, step::pid_report, t);
         return reply::ack;  // stage-2's go-ahead, only after the report
       }},
      {client_record(stage_record::finished),
       [&](const record&, pid_t) -> result<reply> {
         finished = true;
         return reply::stop;
       }},
  };
  handlers.insert(handlers.end(), std::begin(runc_handlers), std::end(runc_handlers));
  auto to_error = [&](const failure& f) {
    out.stage_reported = true;  // the failing stage wrote the fatal line itself
    return opened.to_error(f);
  };
  NSENTRY_TRY(serve(st.channel.get(), st.s1_pid, handlers, to_error));
  if (!finished)
    return nsentry_error(errc::child_failed, step::sync,
                         st.s2_pid == 0 ? "stage-1 ended without reporting stage-2"
                                        : "stage-2 ended before finishing its setup");
  lg.debug("<~ nsexec stage-0");
  if (opt.before_exit) opt.before_exit();
  ::_exit(0);
}

}  // namespace detail

// The whole protocol; see the top of this file. Returns `not_init`, or `container` in stage-2.
inline init_role init(const init_options& opt = {}) noexcept {
  char* const* envp = opt.envp != nullptr ? opt.envp : environ;
  env_scan scan = scan_env(envp);
  if (scan.state == env_scan::status::not_init) return init_role::not_init;
  logger lg(scan.env);
  if (scan.state == env_scan::status::invalid) {
    if (scan.other_variable != nullptr)
      lg.fatal(scan.bad_variable, "=", scan.bad_value, ": ", scan.reason, " ", scan.other_variable,
               "=", scan.other_value);
    else if (scan.reason_errno != 0)
      lg.fatal(scan.bad_variable, "=", scan.bad_value, ": ", scan.reason, ": ",
               errno_text{scan.reason_errno});
    else
      lg.fatal(scan.bad_variable, "=", scan.bad_value, ": ", scan.reason);
    ::_exit(1);
  }
  auto protocol = detail::protocol_from_env(envp, opt.protocol);
  if (!protocol) {
    lg.fatal(protocol_var, "=", nsentry::runc::detail::env_lookup(envp, protocol_var),
             ": not 1.1 or 1.2");
    ::_exit(1);
  }
  // Stage-0 allocates freely; anything thrown (std::bad_alloc) is a fatal error, not a crash.
  // The stages' context lives in run_stage0's frame: stage-2 returns out of it.
  detail::stages st;
  detail::stage0_outcome out;
  try {
    auto r = detail::run_stage0(opt, envp, lg, scan.env, *protocol, st, out);
    if (r) return r.value();
    if (!out.stage_reported) lg.fatal(r.error().message());
  } catch (const std::exception& e) {
    lg.fatal("stage-0: ", e.what());
  }
  st.abort();
  ::_exit(1);
}

}  // namespace nsentry::inline v0::runc
