// nsentry/id_map_writer.hpp — writing a child's uid/gid maps from the parent side.
//
// Order (the kernel's rules): setgroups "deny" first when required (an unprivileged writer may
// map gids only after it), then uid_map, then gid_map. A direct write refused with EPERM (an
// unprivileged parent mapping more than its own id) falls back to the setuid helpers
// newuidmap/newgidmap (Debian's uidmap package), which check /etc/subuid and /etc/subgid. The
// helper's argv carries every range (`newuidmap <pid> <inside> <outside> <count> ...`); a helper
// that cannot be run, is killed by a signal, exits non-zero, or exits 0 without writing the map
// (read back at once) is an error of step::uid_map / gid_map (exit status 125 in the CLI, never
// the command's 126/127) naming the tool and what happened.
//
// Contracts: parent side (allocates; spawns the helper); thread-safe; each map can be written
// once per namespace, before any process relies on it (Linux >= 4.15 for more than 5 ranges).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "nsentry/child.hpp"
#include "nsentry/error.hpp"
#include "nsentry/exec_spec.hpp"
#include "nsentry/fd.hpp"
#include "nsentry/id_map.hpp"
#include "nsentry/spawn.hpp"

namespace nsentry::inline v0 {

struct id_map_request {
  id_map uid_map;
  id_map gid_map;
  bool deny_setgroups = false;             // write "deny" to setgroups before the maps
  std::optional<std::string> uidmap_tool;  // the fallback for uid_map; default "newuidmap"
  std::optional<std::string> gidmap_tool;  // for gid_map; default "newgidmap"
};

namespace detail {

inline std::string proc_file(pid_t pid, std::string_view name) {
  return "/proc/" + (pid == 0 ? std::string("self") : std::to_string(pid)) + "/" +
         std::string(name);
}

// An error of the map helper `tool`: the map's step (never step::exec: exit statuses 126/127
// belong to the command, not to the helper), the tool as the path, the pid whose map it is.
inline error map_tool_error(error e, nsentry::step which, const std::string& tool, pid_t pid,
                            std::string detail) {
  e.step = which;
  e.kind.reset();
  e.path = tool;
  e.pid = pid;
  e.detail = std::move(detail);
  e.context = {};
  return e;
}

// Runs `tool pid ranges...`; anything but exit 0 is an error naming it. Then reads the map
// back: a helper that exits 0 without writing it is an error naming the helper, at once.
inline result<void> run_map_tool(nsentry::step which, const std::string& tool, pid_t pid,
                                 const id_map& map) {
  std::vector<std::string> argv{tool, std::to_string(pid == 0 ? ::getpid() : pid)};
  for (const auto& r : map.ranges()) {
    argv.push_back(std::to_string(r.inside));
    argv.push_back(std::to_string(r.outside));
    argv.push_back(std::to_string(r.count));
  }
  auto cmd = exec_spec::make(std::move(argv));
  if (!cmd) return map_tool_error(std::move(cmd).error(), which, tool, pid, "cannot run it");
  auto c = spawn_exec(cmd.value());
  if (!c) return map_tool_error(std::move(c).error(), which, tool, pid, "cannot run it");
  auto st = c.value().wait();
  if (!st && st.error() == errc::sigchld_ignored) {
    // The caller ignores SIGCHLD: the helper's status is lost, the map read back decides.
  } else if (!st) {
    return map_tool_error(std::move(st).error(), which, tool, pid, "waiting for it");
  } else if (st.value().signal) {
    return map_tool_error(nsentry_error(errc::child_failed, which), which, tool, pid,
                          "killed by signal " + std::to_string(st.value().signal));
  } else if (st.value().code != 0) {
    return map_tool_error(nsentry_error(errc::child_failed, which), which, tool, pid,
                          "exited with status " + std::to_string(st.value().code));
  }
  auto path = proc_file(pid, name_of(which));
  auto written = read_file(path);
  if (!written)
    return map_tool_error(std::move(written).error(), which, tool, pid,
                          "reading " + path + " back");
  if (written.value().empty())
    return map_tool_error(nsentry_error(errc::child_failed, which), which, tool, pid,
                          "exited 0 but did not write " + path);
  return success();
}

inline result<void> write_map(nsentry::step which, pid_t pid, const id_map& map,
                              const std::optional<std::string>& tool,
                              std::string_view default_tool) {
  if (map.empty()) return success();
  auto path = proc_file(pid, name_of(which));
  auto direct = write_file(path, map.format());
  if (direct) return success();
  if (direct.error() != std::errc::operation_not_permitted)
    return with_step(std::move(direct).error(), which);
  return run_map_tool(which, tool ? *tool : std::string(default_tool), pid, map);
}

}  // namespace detail

// Writes the maps of process `pid` (0: the calling process, for a single self-mapping range).
inline result<void> write_id_maps(pid_t pid, const id_map_request& req) {
  if (req.deny_setgroups) {
    auto r = write_file(detail::proc_file(pid, "setgroups"), "deny");
    if (!r) return with_step(std::move(r).error(), step::setgroups);
  }
  NSENTRY_TRY(detail::write_map(step::uid_map, pid, req.uid_map, req.uidmap_tool, "newuidmap"));
  NSENTRY_TRY(detail::write_map(step::gid_map, pid, req.gid_map, req.gidmap_tool, "newgidmap"));
  return success();
}

}  // namespace nsentry::inline v0
