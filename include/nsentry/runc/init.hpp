// nsentry/runc/init.hpp — runc's init entry protocol (libcontainer/nsenter's nsexec()), whole.
//
//   if (runc::init({.protocol = runc_protocol::v1_1}) == runc::init_role::container) {
//     // stage-2: in the container's namespaces, as uid/gid 0, session leader. fds 3/4 intact.
//   }
//
// What happens (the spec: ../shared/spec/runc-bootstrap.md §1-§6; docs/runc.md):
//  - `_LIBCONTAINER_INITPIPE` unset or empty: returns `not_init` at once, touching nothing.
//    An invalid `_LIBCONTAINER_*` (or `_NSENTRY_RUNC_PROTOCOL`) value is fatal.
//  - stage-0 (the calling process): optional sealed self re-exec (runc/sealed_exe.hpp); with
//    protocol 1.1, writes one 0x00 byte to the init pipe (runc 1.1's "past initial setup"); reads
//    one bootstrap message from the init pipe (split writes and EINTR are fine); with
//    MOUNT_SOURCES (1.1), checks them against `_LIBCONTAINER_MOUNT_FDS` (runc/mount_sources.hpp)
//    and later opens them inside stage-1's mount namespace and passes the fds; writes
//    oom_score_adj; turns non-dumpable when namespaces are joined by path; opens every path;
//    clones stage-1 with CLONE_PARENT; serves stage-1 (setgroups/uid_map/gid_map with the
//    newuidmap/newgidmap fallback, time offsets); receives stage-2's pid and writes
//    `{"stage1_pid":N,"stage2_pid":M}\n` to the init pipe (pids as clone returned them, i.e.
//    in stage-0's pid namespace); releases stage-2; waits for it to finish its setup; _exit(0).
//  - stage-1: joins (join_fds: runc's order and verification), creates the user namespace and
//    asks for its maps, setresuid(0,0,0), unshares the rest, receives the mount source fds
//    onto their numbers (1.1), asks for the time offsets, clones
//    stage-2 with CLONE_PARENT, reports its pid, _exit(0).
//  - stage-2: waits for stage-0's go-ahead; setsid(), setuid(0), setgid(0) (as setres*id: the
//    same effect for a privileged caller, and no other caller gets here), setgroups(0, NULL)
//    when plan::drop_groups(); closes every descriptor the init opened; returns `container`.
// Each stage names itself as runc does (PR_SET_NAME runc:[0:PARENT], runc:[1:CHILD],
// runc:[2:INIT]), and the log carries runc's own `=> nsexec container setup` line.
// The caller reaps stage-1 and stage-2 (CLONE_PARENT makes them its children, as in runc).
//
// Failures: one `fatal` line on the log pipe (or `FATAL: <text>` on stderr without one) from
// the stage that failed, naming the step, the namespace kind, the path and errno; stage-0 then
// SIGKILLs the stages it knows, waits (bounded) until they are dead, and exits 1. Nothing leaks:
// every descriptor is O_CLOEXEC and stage-2 closes those it inherited from the init.
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
#include <optional>
#include <span>
#include <string>

#include "nsentry/bootstrap.hpp"
#include "nsentry/child.hpp"
#include "nsentry/create.hpp"
#include "nsentry/id_map_writer.hpp"
#include "nsentry/join.hpp"
#include "nsentry/plan.hpp"
#include "nsentry/proc_attrs.hpp"
#include "nsentry/runc/env.hpp"
#include "nsentry/runc/log.hpp"
#include "nsentry/runc/mount_sources.hpp"
#include "nsentry/runc/pid_report.hpp"
#include "nsentry/runc/sealed_exe.hpp"
#include "nsentry/sys.hpp"

namespace nsentry::runc {

// Chooses the meaning of attribute 27290 at run time: "1.1" or "1.2" (runc >= 1.2).
inline constexpr const char* protocol_var = "_NSENTRY_RUNC_PROTOCOL";

struct init_options {
  runc_protocol protocol = runc_protocol::v1_2;  // unless _NSENTRY_RUNC_PROTOCOL says otherwise
  bool sealed = false;              // re-exec from a clone of the binary first (needs argv)
  clone_via clone = clone_via::memfd;  // how, when `sealed` (runc/sealed_exe.hpp)
  char* const* argv = nullptr;      // for the sealed re-exec
  char* const* envp = nullptr;      // the environment to scan; nullptr: environ
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
  std::string_view s(v);
  if (s == "1.1") return runc_protocol::v1_1;
  if (s == "1.2") return runc_protocol::v1_2;
  return std::nullopt;
}

// What stage-1 and stage-2 need, prepared by stage-0 (so that they need not allocate).
struct stage_context {
  logger lg;
  int sock = -1;  // the stages' end of the sync socket
  std::span<const ns_fd> joins;
  std::array<const char*, ns_kind_count> join_paths{};  // by kind, for error lines
  ns_set create;
  bool joined_by_path = false;  // non-dumpable: re-enable dumpability around the map request
  bool want_time_offsets = false;
  bool drop_groups = false;
  const mount_fd_targets* mounts = nullptr;  // MOUNT_SOURCES (runc 1.1), or none
};

// Stage-1's request for the mount source fds (runc 1.1's SYNC_MOUNTSOURCES_PLS value; not one of
// record_type's names, so that child.hpp's channel stays as it is).
inline constexpr std::uint8_t mount_sources_please = 0x46;

// One fatal line for a stage's failure: "setns(net) on /proc/1/ns/pid: Invalid argument".
inline void log_failure(const stage_context& c, const child_failure& f) noexcept {
  const bool has_kind = f.kind < ns_kind_count;
  std::string_view kind = has_kind ? name_of(static_cast<ns_kind>(f.kind)) : "";
  const char* path = has_kind ? c.join_paths[f.kind] : nullptr;
  std::string_view open = has_kind ? "(" : "", close = has_kind ? ")" : "";
  std::string_view on = path ? " on " : "";
  if (f.missing != 0) {
    // Kinds that did not take, as names: a fixed buffer, no allocation.
    char names[96];
    std::size_t n = 0;
    for (ns_kind k : all_ns_kinds) {
      if (!(f.missing & static_cast<std::uint32_t>(clone_flag_of(k)))) continue;
      if (n > 0) names[n++] = ',';
      for (char ch : name_of(k)) names[n++] = ch;
    }
    c.lg.fatal(step_name(f.step), ": still outside ", std::string_view(names, n));
    return;
  }
  c.lg.fatal(step_name(f.step), open, kind, close, on, path ? path : "", ": ", errno_text{f.err});
}

[[noreturn]] inline void stage_fail(const stage_context& c, const child_failure& f) noexcept {
  log_failure(c, f);
  send_record(c.sock, record_type::failure, f);
  ::_exit(1);
}

// Stage-1's request to stage-0; returns once acknowledged. Stage-0 gone: it reports, we exit.
inline void ask(const stage_context& c, record_type t) noexcept {
  send_record(c.sock, t);
  char ack = 0;
  ssize_t n;
  while ((n = sys::calls.read(c.sock, &ack, 1)) == -1 && errno == EINTR) {
  }
  if (n != 1) ::_exit(1);
}

// Stage-1's side of MOUNT_SOURCES: asks, receives one fd per source in order and dup3s it onto
// its number from _LIBCONTAINER_MOUNT_FDS (without CLOEXEC: the Go init in stage-2 reads it),
// then waits for stage-0's ack. Allocation-free.
inline void receive_mount_sources(const stage_context& c) noexcept {
  c.lg.debug("request stage-0 to send mount sources");
  send_record(c.sock, static_cast<record_type>(mount_sources_please));
  const mount_fd_targets& m = *c.mounts;
  for (std::size_t i = 0; i < m.targets.size(); ++i) {
    int fd = receive_fd(c.sock);
    if (fd == -1) {
      if (errno == EIO) ::_exit(1);  // stage-0 gave up (it says why) or sent nothing
      int e = errno;
      c.lg.fatal("receive mount source fd for ", m.sources[i], ": ", errno_text{e});
      send_record(c.sock, record_type::failure, child_failure::at(child_step::sync, e));
      ::_exit(1);
    }
    int placed = fd == m.targets[i] ? ::fcntl(fd, F_SETFD, 0)
                                    : ::dup3(fd, m.targets[i], 0);
    if (placed == -1) {
      int e = errno;
      c.lg.fatal("dup3 mount source ", m.sources[i], " onto fd ", m.targets[i], ": ",
                 errno_text{e});
      send_record(c.sock, record_type::failure, child_failure::at(child_step::sync, e));
      ::_exit(1);
    }
    if (fd != m.targets[i]) sys::calls.close(fd);
  }
  char ack = 0;
  ssize_t n;
  while ((n = sys::calls.read(c.sock, &ack, 1)) == -1 && errno == EINTR) {
  }
  if (n != 1) ::_exit(1);
}

// Stage-2 up to the point where it becomes the container's process.
inline void stage2(stage_context& c) noexcept {
  c.lg.set_stage(2);
  sys::calls.prctl(PR_SET_NAME, reinterpret_cast<unsigned long>("runc:[2:INIT]"), 0, 0, 0);
  c.lg.debug("~> nsexec stage-2");
  char go = 0;
  ssize_t n;
  while ((n = sys::calls.read(c.sock, &go, 1)) == -1 && errno == EINTR) {
  }
  if (n != 1) ::_exit(1);  // stage-0 gave up before releasing us (and says why)
  if (sys::calls.setsid() == -1) stage_fail(c, child_failure::at(child_step::setsid, errno));
  if (sys::calls.setresuid(0, 0, 0) == -1)
    stage_fail(c, child_failure::at(child_step::setresuid, errno));
  if (sys::calls.setresgid(0, 0, 0) == -1)
    stage_fail(c, child_failure::at(child_step::setresgid, errno));
  if (c.drop_groups && sys::calls.setgroups(0, nullptr) == -1)
    stage_fail(c, child_failure::at(child_step::setgroups, errno));
  c.lg.debug("<~ nsexec stage-2");
  send_record(c.sock, record_type::finished);
}

// Stage-1, allocation-free. Returns only in stage-2 (the clone's child).
inline void stage1(stage_context& c) noexcept {
  c.lg.set_stage(1);
  sys::calls.prctl(PR_SET_NAME, reinterpret_cast<unsigned long>("runc:[1:CHILD]"), 0, 0, 0);
  c.lg.debug("~> nsexec stage-1");
  if (!c.joins.empty()) {
    int self = open_self_ns_dir();
    if (self == -1) stage_fail(c, child_failure::at(child_step::open_ns, errno));
    auto f = join_fds(c.joins, self);
    sys::calls.close(self);
    if (f.failed()) stage_fail(c, f);
  }
  if (auto f = unshare_user(c.create); f.failed()) stage_fail(c, f);
  if (c.create.contains(ns_kind::user)) {
    // Non-dumpable, our /proc files belong to root and stage-0 (or newuidmap) could not write
    // the maps of an unprivileged namespace: dumpable just for the request, as runc does.
    if (c.joined_by_path && sys::calls.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) == -1)
      stage_fail(c, child_failure::at(child_step::prctl, errno));
    ask(c, record_type::maps_please);
    if (c.joined_by_path && sys::calls.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
      stage_fail(c, child_failure::at(child_step::prctl, errno));
    if (sys::calls.setresuid(0, 0, 0) == -1)
      stage_fail(c, child_failure::at(child_step::setresuid, errno,
                                      static_cast<std::uint8_t>(ns_kind::user)));
  }
  if (auto f = unshare_rest(c.create); f.failed()) stage_fail(c, f);
  if (c.mounts != nullptr && !c.mounts->targets.empty()) receive_mount_sources(c);
  if (c.want_time_offsets) ask(c, record_type::time_please);

  sys::clone_args args;
  args.flags = CLONE_PARENT;  // the caller of stage-0 reaps stage-2 too
  args.exit_signal = 0;       // required with CLONE_PARENT; the caller's own exit signal applies
  long pid = sys::calls.clone3(&args, sizeof args);
  if (pid == -1) stage_fail(c, child_failure::at(child_step::fork, errno));
  if (pid == 0) {
    stage2(c);
    return;
  }
  child_failure report{};
  report.err = static_cast<int>(pid);  // in stage-0's pid namespace: stage-1 never left it
  send_record(c.sock, record_type::child_pid, report);
  c.lg.debug("<~ nsexec stage-1");
  ::_exit(0);
}

// Stage-0's end: SIGKILL the stages it knows, wait (bounded) until they are gone, exit 1.
[[noreturn]] inline void stage0_abort(int s1_pidfd, int s2_pidfd) noexcept {
  const int pidfds[2] = {s1_pidfd, s2_pidfd};
  for (int fd : pidfds)
    if (fd >= 0) sys::calls.pidfd_send_signal(fd, SIGKILL, nullptr, 0);
  for (int fd : pidfds) {
    if (fd < 0) continue;
    pollfd p{fd, POLLIN, 0};
    // A pidfd polls readable once its process has exited, child of ours or not.
    while (sys::calls.poll(&p, 1, 5000) == -1 && errno == EINTR) {
    }
  }
  ::_exit(1);
}

}  // namespace detail

// The whole protocol; see the top of this file. Returns `not_init`, or `container` in stage-2.
inline init_role init(const init_options& opt = {}) noexcept {
  char* const* envp = opt.envp != nullptr ? opt.envp : environ;
  env_scan scan = scan_env(envp);
  if (scan.state == env_scan::status::not_init) return init_role::not_init;
  logger lg(scan.env);
  if (scan.state == env_scan::status::invalid) {
    lg.fatal(scan.bad_variable, "=", scan.bad_value, ": ", scan.reason);
    ::_exit(1);
  }
  auto protocol = detail::protocol_from_env(envp, opt.protocol);
  if (!protocol) {
    lg.fatal(protocol_var, "=", nsentry::runc::detail::env_lookup(envp, protocol_var),
             ": not 1.1 or 1.2");
    ::_exit(1);
  }
  const int init_pipe = scan.env.init_pipe;

  // Stage-0 allocates freely; anything thrown (std::bad_alloc) is a fatal error, not a crash.
  // The stages' context lives here: stage-2 returns out of this frame.
  try {
    if (opt.sealed) {
      if (auto r = reexec_cloned(opt.argv, envp, opt.clone); !r) {
        lg.fatal("sealed re-exec: ", r.error().message());
        ::_exit(1);
      }
    }
    // runc 1.1's parent (initWaiter) reads one 0x00 first: "past initial setup" (spec §1).
    if (*protocol == runc_protocol::v1_1) {
      if (auto w = write_all(init_pipe, std::string_view("\0", 1)); !w) {
        lg.fatal("could not inform the parent we are past initial setup: ", w.error().message());
        ::_exit(1);
      }
    }
    lg.debug("=> nsexec container setup");  // runc's own line: runc's tests look for it
    auto p = bootstrap::read(init_pipe, *protocol);
    if (!p) {
      lg.fatal(p.error().message());
      ::_exit(1);
    }
    const plan& pl = p.value();
    lg.set_stage(0);
    sys::calls.prctl(PR_SET_NAME, reinterpret_cast<unsigned long>("runc:[0:PARENT]"), 0, 0, 0);
    lg.debug("~> nsexec stage-0");
    std::optional<mount_fd_targets> mounts;
    if (pl.mount_sources) {
      const char* v = nsentry::runc::detail::env_lookup(envp, mount_fds_var);
      if (v == nullptr) {
        lg.fatal("MOUNT_SOURCES without ", mount_fds_var);
        ::_exit(1);
      }
      auto fds = parse_mount_fds(v);
      auto paired = fds ? pair_mount_sources(*pl.mount_sources, fds.value(),
                                             {init_pipe, scan.env.log_pipe.value_or(-1)})
                        : result<mount_fd_targets>(fds.error());
      if (!paired) {
        lg.fatal(paired.error().message());
        ::_exit(1);
      }
      mounts = std::move(paired).value();
    }
    if (pl.oom_score_adj) {
      if (auto r = write_oom_score_adj(0, *pl.oom_score_adj); !r) {
        lg.fatal(r.error().message());
        ::_exit(1);
      }
    }
    if (!pl.join.empty() && sys::calls.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1) {
      lg.fatal("prctl(PR_SET_DUMPABLE): ", errno_text{errno});
      ::_exit(1);
    }
    auto opened = opened_namespaces::open(pl.join);
    if (!opened) {
      lg.fatal(opened.error().message());
      ::_exit(1);
    }
    int sv[2];
    if (sys::calls.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
      lg.fatal("socketpair: ", errno_text{errno});
      ::_exit(1);
    }
    unique_fd ours(sv[0]), theirs(sv[1]);

    detail::stage_context ctx;
    ctx.lg = lg;
    ctx.sock = theirs.get();
    ctx.joins = opened.value().fds();
    for (const auto& j : pl.join)
      ctx.join_paths[static_cast<std::size_t>(j.kind)] = j.path.c_str();
    ctx.create = pl.create;
    ctx.joined_by_path = !pl.join.empty();
    ctx.want_time_offsets = !pl.time_offsets.empty();
    ctx.drop_groups = pl.drop_groups();
    if (mounts) ctx.mounts = &*mounts;
    id_map_request maps{pl.uid_map, pl.gid_map, pl.deny_setgroups(), pl.uidmap_tool,
                        pl.gidmap_tool};

    int s1_pidfd = -1;
    sys::clone_args args;
    args.flags = CLONE_PARENT | CLONE_PIDFD;
    args.pidfd = reinterpret_cast<std::uint64_t>(&s1_pidfd);
    args.exit_signal = 0;
    long s1 = sys::calls.clone3(&args, sizeof args);
    if (s1 == -1) {
      lg.fatal("clone3(stage-1): ", errno_text{errno});
      ::_exit(1);
    }
    if (s1 == 0) {
      ours.reset();
      detail::stage1(ctx);  // returns only in stage-2
      // Stage-2 is the container's process now: it keeps nothing the init opened but fds 3/4.
      return init_role::container;
    }
    theirs.reset();
    unique_fd s1_fd(s1_pidfd);
    unique_fd s2_fd;
    pid_t s2 = 0;
    for (;;) {
      auto rec = read_record(ours.get());
      if (!rec) {
        lg.fatal(rec.error().message());
        detail::stage0_abort(s1_fd.get(), s2_fd.get());
      }
      if (!rec.value()) {
        lg.fatal(s2 == 0 ? "stage-1 ended without reporting stage-2"
                         : "stage-2 ended before finishing its setup");
        detail::stage0_abort(s1_fd.get(), s2_fd.get());
      }
      const child_record& r = *rec.value();
      if (r.type == detail::mount_sources_please) {
        if (!mounts) {
          lg.fatal("stage-1 asked for mount sources; the message has none");
          detail::stage0_abort(s1_fd.get(), s2_fd.get());
        }
        lg.debug("stage-1 requested mount sources");
        if (auto w = open_mount_sources_in(static_cast<pid_t>(s1), *mounts, ours.get()); !w) {
          lg.fatal(w.error().message());
          detail::stage0_abort(s1_fd.get(), s2_fd.get());
        }
        if (auto w = write_all(ours.get(), std::string_view("+", 1)); !w) {
          lg.fatal(w.error().message());
          detail::stage0_abort(s1_fd.get(), s2_fd.get());
        }
        continue;
      }
      switch (static_cast<record_type>(r.type)) {
        case record_type::failure:
          detail::stage0_abort(s1_fd.get(), s2_fd.get());  // the failing stage wrote the fatal line itself
        case record_type::maps_please:
          if (auto w = write_id_maps(static_cast<pid_t>(s1), maps); !w) {
            lg.fatal(w.error().message());
            detail::stage0_abort(s1_fd.get(), s2_fd.get());
          }
          break;
        case record_type::time_please:
          if (auto w = write_time_offsets(static_cast<pid_t>(s1), pl.time_offsets); !w) {
            lg.fatal(w.error().message());
            detail::stage0_abort(s1_fd.get(), s2_fd.get());
          }
          break;
        case record_type::child_pid: {
          s2 = static_cast<pid_t>(r.err);
          int fd = sys::calls.pidfd_open(s2, 0);  // stage-2 is waiting for us: it is alive
          if (fd == -1) {
            lg.fatal("pidfd_open(stage-2 ", s2, "): ", errno_text{errno});
            detail::stage0_abort(s1_fd.get(), s2_fd.get());
          }
          s2_fd.reset(fd);
          lg.debug("stage-1 pid ", s1, ", stage-2 pid ", s2);
          if (auto w = write_pid_report(init_pipe, {static_cast<pid_t>(s1), s2}); !w) {
            lg.fatal(w.error().message());
            detail::stage0_abort(s1_fd.get(), s2_fd.get());
          }
          break;
        }
        case record_type::finished:
          lg.debug("<~ nsexec stage-0");
          ::_exit(0);
        default:
          lg.fatal("unknown record ", r.type, " from a stage");
          detail::stage0_abort(s1_fd.get(), s2_fd.get());
      }
      if (static_cast<record_type>(r.type) == record_type::child_pid) {
        // Released only now, after the report: the parent may act on stage-2 before it runs.
        if (auto w = write_all(ours.get(), std::string_view("G", 1)); !w) {
          lg.fatal(w.error().message());
          detail::stage0_abort(s1_fd.get(), s2_fd.get());
        }
      } else if (auto w = write_all(ours.get(), std::string_view("+", 1)); !w) {
        lg.fatal(w.error().message());
        detail::stage0_abort(s1_fd.get(), s2_fd.get());
      }
    }
  } catch (const std::exception& e) {
    lg.fatal("stage-0: ", e.what());
    ::_exit(1);
  }
}

}  // namespace nsentry::runc
