// nsentry/step.hpp — the closed list of steps an error can name, shared by both sides of a
// clone: a child-side failure record carries a `step` as one byte, the parent's error carries
// the same enumerator, and callers compare enumerators, never strings.
//
// Adding a step: one enumerator and its name in `step_names` (a static_assert checks the count).
// Contract: constexpr data; no syscalls; async-signal-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace nsentry::inline v0 {

// clang-format off
enum class step : std::uint8_t {
  none = 0,  // no step (a child record of "no failure")
  // syscalls and their close relatives
  open, stat, fstat, read, write, close, dup, pipe, socketpair, send, recv,
  setns, unshare, setresuid, setresgid, setgroups, chdir, fchdir,
  cgroup, verify, sync, fork, clone, clone3, prctl, exec, setsid,
  kill, wait, pidfd_open, pidfd_send_signal, sigprocmask, sigaction,
  memfd_create, sendfile, execveat, get_seals, add_seals, mkstemp, mount, umount,
  // /proc files written on a process's behalf
  oom_score_adj, timens_offsets, uid_map, gid_map, id_map,
  // plan fields and inputs
  bootstrap, clone_flags, join, create, time_offsets, mount_sources, uidmap_tool,
  gidmap_tool, json, environment, pid_report, copy_exe, argument, mount_fds,
  // composite operations
  enter, restore, mmap, spawn,
};

inline constexpr std::array<std::string_view, static_cast<std::size_t>(step::spawn) + 1>
    step_names{
        "nsentry", "open", "stat", "fstat", "read", "write", "close", "dup", "pipe2",
        "socketpair", "send", "recv", "setns", "unshare", "setresuid", "setresgid",
        "setgroups", "chdir", "fchdir", "cgroup.procs", "verify", "sync", "fork", "clone",
        "clone3", "prctl", "exec", "setsid", "kill", "waitid", "pidfd_open",
        "pidfd_send_signal", "sigprocmask", "sigaction", "memfd_create", "sendfile",
        "execveat", "fcntl(F_GET_SEALS)", "fcntl(F_ADD_SEALS)", "mkostemp", "mount", "umount2", "oom_score_adj", "timens_offsets", "uid_map", "gid_map", "id_map",
        "bootstrap", "clone_flags", "join", "create", "time_offsets", "mount_sources",
        "uidmap_tool", "gidmap_tool", "json", "environment", "pid report",
        "copy /proc/self/exe", "argument", "_LIBCONTAINER_MOUNT_FDS", "enter", "restore", "mmap", "spawn",
    };

// clang-format on

constexpr std::string_view name_of(step s) noexcept {
  auto i = static_cast<std::size_t>(s);
  return i < step_names.size() ? step_names[i] : std::string_view("nsentry");
}

static_assert(name_of(step::spawn) == "spawn" && name_of(step::open) == "open",
              "step_names must list every step, in enumerator order");

}  // namespace nsentry::inline v0
