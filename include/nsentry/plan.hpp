// nsentry/plan.hpp — what an entry sequence must do, as typed data.
//
// A plan is what runc's bootstrap message says (nsentry/bootstrap.hpp reads and writes it) and
// what the executor carries out; a C++ runtime may also build one by hand. It knows nothing of
// the wire format and makes no syscalls.
// Contract: plain data; validate() allocates only for its error text.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nsentry/error.hpp"
#include "nsentry/id_map.hpp"
#include "nsentry/ns.hpp"

namespace nsentry::inline v0 {

// Join an existing namespace through a file (a /proc/<pid>/ns/<kind> entry or a bind mount).
struct ns_join {
  ns_kind kind{};
  std::string path;
  bool operator==(const ns_join&) const = default;
};

// The clocks a time namespace can offset (Linux >= 5.6, /proc/<pid>/timens_offsets).
enum class time_clock : std::uint8_t { monotonic, boottime };

constexpr std::string_view name_of(time_clock c) noexcept {
  return c == time_clock::monotonic ? "monotonic" : "boottime";
}

constexpr std::optional<time_clock> time_clock_from_name(std::string_view n) noexcept {
  if (n == "monotonic") return time_clock::monotonic;
  if (n == "boottime") return time_clock::boottime;
  return std::nullopt;
}

struct time_offset {
  time_clock clock{};
  std::int64_t secs = 0;
  std::int64_t nanosecs = 0;  // 0 .. 999'999'999, as the kernel requires
  bool operator==(const time_offset&) const = default;
};

// "monotonic <secs> <nanosecs>\n" per clock, the text of /proc/<pid>/timens_offsets and of runc's
// TIMENSOFFSET attribute.
inline std::string format_time_offsets(std::span<const time_offset> offsets) {
  std::string text;
  for (const auto& o : offsets) {
    text += name_of(o.clock);
    text += ' ';
    text += std::to_string(o.secs);
    text += ' ';
    text += std::to_string(o.nanosecs);
    text += '\n';
  }
  return text;
}

struct plan {
  ns_set create;                           // new namespaces (CLONE_FLAGS)
  std::vector<ns_join> join;               // existing namespaces, in message order (NS_PATHS)
  id_map uid_map;                          // for a new user namespace (UIDMAP)
  id_map gid_map;                          // (GIDMAP)
  bool setgroups = false;                  // SETGROUP: call setgroups(0, NULL) in the new process
  bool rootless_euid = false;              // ROOTLESS_EUID: the runtime is not root
  std::optional<int> oom_score_adj;        // OOM_SCORE_ADJ, -1000 .. 1000
  std::optional<std::string> uidmap_tool;  // UIDMAPPATH: newuidmap for rootless maps
  std::optional<std::string> gidmap_tool;  // GIDMAPPATH
  std::vector<time_offset> time_offsets;   // TIMENSOFFSET (runc >= 1.2)
  std::optional<std::vector<std::string>> mount_sources;  // MOUNT_SOURCES (runc 1.1)

  bool operator==(const plan&) const = default;

  // Runc's setgroups rule: write "deny" to /proc/<child>/setgroups before the maps.
  bool deny_setgroups() const noexcept { return rootless_euid && !setgroups; }
  // ... and drop supplementary groups in the final process.
  bool drop_groups() const noexcept { return !rootless_euid && setgroups; }

  // Checks that no two fields contradict each other. Errors name the field.
  result<void> validate() const {
    ns_set joined;
    for (const auto& j : join) {
      if (j.path.empty())
        return invalid(step::join, "empty path for " + std::string(name_of(j.kind)));
      if (joined.contains(j.kind))
        return invalid(step::join, std::string(name_of(j.kind)) + " is joined twice");
      joined.insert(j.kind);
    }
    if (!(joined & create).empty())
      return invalid(step::create, (joined & create).names() + " both created and joined");
    if (oom_score_adj && (*oom_score_adj < -1000 || *oom_score_adj > 1000))
      return invalid(step::oom_score_adj,
                     std::to_string(*oom_score_adj) + " is outside -1000..1000");
    // No uid_map/gid_map.validate() here: an id_map holds only validated ranges (parse() and
    // from_ranges() are the only ways to fill one, and both validate).
    if ((!uid_map.empty() || !gid_map.empty()) && !create.contains(ns_kind::user))
      return invalid(step::uid_map, "id maps given without a new user namespace");
    for (const auto& t : time_offsets) {
      for (const auto& o : time_offsets)
        if (&o != &t && o.clock == t.clock)
          return invalid(step::time_offsets, std::string(name_of(t.clock)) + " given twice");
      if (t.nanosecs < 0 || t.nanosecs > 999'999'999)
        return invalid(step::time_offsets, std::string(name_of(t.clock)) + " nanoseconds " +
                                               std::to_string(t.nanosecs) +
                                               " outside 0..999999999");
    }
    if (!time_offsets.empty() && !create.contains(ns_kind::time))
      return invalid(step::time_offsets, "offsets given without a new time namespace");
    return success();
  }

 private:
  static error invalid(nsentry::step field, std::string detail) {
    return nsentry_error(errc::invalid_plan, field, std::move(detail));
  }
};

}  // namespace nsentry::inline v0
