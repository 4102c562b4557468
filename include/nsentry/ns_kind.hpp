// nsentry/ns_kind.hpp — the one table of namespace kinds.
//
// Every fact nsentry knows about a kind is one row of `ns_kinds`: its /proc name, its clone
// flag, where the kernel reports effective membership, and the kernel's rules for entering it.
// Every set, trait, switch and CLI flag is derived from this table (ns.hpp, the join and
// creation steps, the CLI's -U/-m/... flags), and the static_asserts below keep it coherent.
// Adding a kind: an enumerator, a row, its type in ns.hpp (`struct foo_ns : ns_tag<...>`), tests.
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

namespace nsentry::inline v0 {

enum class ns_kind : std::uint8_t { user, ipc, uts, net, pid, mnt, cgroup, time };

struct ns_kind_row {
  ns_kind kind;
  std::string_view name;             // /proc/<pid>/ns/<name>, runc's NS_PATHS prefix
  int clone_flag;                    // CLONE_NEW*
  std::string_view effective_entry;  // /proc/<tid>/ns entry that shows what the thread (or, for
                                     // children-only kinds, its future children) is in
  bool thread_enterable;             // may one thread of a multi-threaded process setns() into it
  bool needs_unshared_fs;            // setns needs an unshared fs_struct (unshare(CLONE_FS)) first
  bool children_only;      // setns/unshare change only what children get: fork to take effect
  char cli_flag;           // nsenter/unshare's short option (-U, -i, ...)
  std::string_view since;  // first Linux version with the kind
};

// clang-format off
inline constexpr std::array<ns_kind_row, 8> ns_kinds{{
  //  kind             name      clone flag       effective entry      thread  fs     child  cli  since
  {ns_kind::user,   "user",   CLONE_NEWUSER,   "user",              false,  true,  false, 'U', "3.8"},
  {ns_kind::ipc,    "ipc",    CLONE_NEWIPC,    "ipc",               true,   false, false, 'i', "3.0"},
  {ns_kind::uts,    "uts",    CLONE_NEWUTS,    "uts",               true,   false, false, 'u', "3.0"},
  {ns_kind::net,    "net",    CLONE_NEWNET,    "net",               true,   false, false, 'n', "3.0"},
  {ns_kind::pid,    "pid",    CLONE_NEWPID,    "pid_for_children",  true,   false, true,  'p', "3.8"},
  {ns_kind::mnt,    "mnt",    CLONE_NEWNS,     "mnt",               true,   true,  false, 'm', "3.8"},
  {ns_kind::cgroup, "cgroup", CLONE_NEWCGROUP, "cgroup",            true,   false, false, 'C', "4.6"},
  {ns_kind::time,   "time",   CLONE_NEWTIME,   "time_for_children", false,  false, true,  'T', "5.6"},
}};
// clang-format on
// user: the kernel refuses setns (EINVAL) and unshare (EINVAL) to a multi-threaded process.
// time: setns gives EUSERS when multi-threaded. mnt: EINVAL without an unshared fs_struct.

inline constexpr std::size_t ns_kind_count = ns_kinds.size();

constexpr const ns_kind_row& row_of(ns_kind k) noexcept {
  return ns_kinds[static_cast<std::size_t>(k)];
}

inline constexpr std::array<ns_kind, ns_kind_count> all_ns_kinds = [] {
  std::array<ns_kind, ns_kind_count> out{};
  for (std::size_t i = 0; i < ns_kind_count; ++i) out[i] = ns_kinds[i].kind;
  return out;
}();

constexpr std::string_view name_of(ns_kind k) noexcept { return row_of(k).name; }
constexpr int clone_flag_of(ns_kind k) noexcept { return row_of(k).clone_flag; }

constexpr std::optional<ns_kind> ns_kind_from_name(std::string_view name) noexcept {
  // Sizes first, then the (3..6) characters inline: no memcmp call per row (bootstrap::parse
  // runs this for every NS_PATHS element).
  for (const auto& r : ns_kinds) {
    if (r.name.size() != name.size()) continue;
    std::size_t i = 0;
    while (i < name.size() && r.name[i] == name[i]) ++i;
    if (i == name.size()) return r.kind;
  }
  return std::nullopt;
}

constexpr std::optional<ns_kind> ns_kind_from_flag(std::uint64_t flag) noexcept {
  for (const auto& r : ns_kinds)
    if (static_cast<std::uint64_t>(static_cast<unsigned>(r.clone_flag)) == flag) return r.kind;
  return std::nullopt;
}

constexpr std::optional<ns_kind> ns_kind_from_cli_flag(char c) noexcept {
  for (const auto& r : ns_kinds)
    if (r.cli_flag == c) return r.kind;
  return std::nullopt;
}

namespace detail {
constexpr bool ns_table_is_coherent() noexcept {
  unsigned seen = 0;
  for (std::size_t i = 0; i < ns_kind_count; ++i) {
    const auto& r = ns_kinds[i];
    const auto f = static_cast<unsigned>(r.clone_flag);
    if (static_cast<std::size_t>(r.kind) != i) return false;            // rows in enumerator order
    if (f == 0 || (f & (f - 1)) != 0 || (seen & f) != 0) return false;  // one distinct bit
    seen |= f;
    if (r.name.empty() || r.effective_entry.empty() || r.since.empty()) return false;
    for (std::size_t j = 0; j < i; ++j)
      if (ns_kinds[j].name == r.name || ns_kinds[j].cli_flag == r.cli_flag) return false;
    if (r.children_only && r.effective_entry == r.name) return false;  // *_for_children
  }
  return true;
}
}  // namespace detail

static_assert(detail::ns_table_is_coherent(),
              "ns_kinds: one row per enumerator, in order, with distinct single-bit flags, "
              "names and CLI letters");

}  // namespace nsentry::inline v0
