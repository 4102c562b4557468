// nsentry/proc_attrs.hpp — per-process settings written through /proc: oom_score_adj and the
// clock offsets of a new time namespace.
//
// Contracts: parent side (allocates); thread-safe. Time offsets (Linux >= 5.6) can be written
// only while no process has entered the time namespace: write them to the process that
// unshared it (/proc/<pid>/timens_offsets, which applies to its time_for_children) before it
// forks. Lowering oom_score_adj needs CAP_SYS_RESOURCE.
#pragma once

#include <span>
#include <string>

#include "nsentry/error.hpp"
#include "nsentry/fd.hpp"
#include "nsentry/id_map_writer.hpp"
#include "nsentry/plan.hpp"

namespace nsentry::inline v0 {

// Writes /proc/<pid>/oom_score_adj (pid 0: the calling process).
inline result<void> write_oom_score_adj(pid_t pid, int value) {
  if (value < -1000 || value > 1000)
    return nsentry_error(errc::invalid_argument, step::oom_score_adj,
                         std::to_string(value) + " is outside -1000..1000");
  auto r = write_file(detail::proc_file(pid, "oom_score_adj"), std::to_string(value));
  if (!r) return with_step(std::move(r).error(), step::oom_score_adj);
  return success();
}

inline result<void> write_time_offsets(pid_t pid, std::span<const time_offset> offsets) {
  if (offsets.empty()) return success();
  auto r = write_file(detail::proc_file(pid, "timens_offsets"), format_time_offsets(offsets));
  if (!r) return with_kind(with_step(std::move(r).error(), step::timens_offsets), ns_kind::time);
  return success();
}

}  // namespace nsentry::inline v0
