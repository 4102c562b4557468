// nsentry/ns_kind.hpp — the run-time namespace kind: its clone flag and its /proc/self/ns name.
//
// The enumerators are in runc's join order (user, ipc, uts, net, pid, mnt, cgroup, time), so
// iterating a set in enumerator order joins the way runc does.
// Contract: constexpr data only; no syscalls; async-signal-safe.
#pragma once

#include <sched.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080  // Linux >= 5.6; older glibc headers lack it
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

namespace nsentry {

enum class ns_kind : std::uint8_t { user, ipc, uts, net, pid, mnt, cgroup, time };

inline constexpr std::size_t ns_kind_count = 8;

inline constexpr std::array<ns_kind, ns_kind_count> all_ns_kinds{
    ns_kind::user, ns_kind::ipc, ns_kind::uts,    ns_kind::net,
    ns_kind::pid,  ns_kind::mnt, ns_kind::cgroup, ns_kind::time};

// The kernel's name in /proc/<pid>/ns/ (and runc's NS_PATHS prefix).
constexpr std::string_view name_of(ns_kind k) noexcept {
  constexpr std::array<std::string_view, ns_kind_count> names{"user", "ipc", "uts",    "net",
                                                              "pid",  "mnt", "cgroup", "time"};
  return names[static_cast<std::size_t>(k)];
}

constexpr int clone_flag_of(ns_kind k) noexcept {
  constexpr std::array<int, ns_kind_count> flags{CLONE_NEWUSER, CLONE_NEWIPC, CLONE_NEWUTS,
                                                 CLONE_NEWNET,  CLONE_NEWPID, CLONE_NEWNS,
                                                 CLONE_NEWCGROUP, CLONE_NEWTIME};
  return flags[static_cast<std::size_t>(k)];
}

constexpr std::optional<ns_kind> ns_kind_from_name(std::string_view name) noexcept {
  for (ns_kind k : all_ns_kinds)
    if (name_of(k) == name) return k;
  return std::nullopt;
}

constexpr std::optional<ns_kind> ns_kind_from_flag(std::uint64_t flag) noexcept {
  for (ns_kind k : all_ns_kinds)
    if (static_cast<std::uint64_t>(static_cast<unsigned>(clone_flag_of(k))) == flag) return k;
  return std::nullopt;
}

}  // namespace nsentry
