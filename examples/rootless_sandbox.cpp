// rootless_sandbox: an unprivileged user runs a command in new user, mount, pid, uts and ipc
// namespaces with a 3-range uid/gid map, written by newuidmap/newgidmap from /etc/subuid and
// /etc/subgid.
//
//   rootless_sandbox [CMD [ARGS...]]      (run as a user with a subordinate range of >= 2000 ids;
//                                          default CMD: show uid_map, gid_map and `id -u`)
//
// The map: 0 → the caller's own id, 1..1000 → the first 1000 subordinate ids, and 1001 and up
// → the rest of the range. An unprivileged process may write only a one-line map of its own
// id; run_plan tries the direct write, gets EPERM, and runs the setuid helpers (any number of
// ranges), which check every range against /etc/subuid. rootless_euid makes it write "deny" to
// setgroups first, as runc does for a rootless container.
#include <pwd.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "nsentry/nsentry.hpp"

using namespace nsentry;

namespace {

// The first "name:start:count" line of /etc/subuid or /etc/subgid for `user`.
result<std::pair<std::uint32_t, std::uint32_t>> subordinate_range(const char* file,
                                                                  const std::string& user) {
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    auto a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos || line.substr(0, a) != user) continue;
    return std::pair{static_cast<std::uint32_t>(std::stoul(line.substr(a + 1, b - a - 1))),
                     static_cast<std::uint32_t>(std::stoul(line.substr(b + 1)))};
  }
  return nsentry_error(errc::invalid_argument, step::id_map,
                       std::string("no range for ") + user + " in " + file);
}

// 0 → own id; 1..1000 → start..start+999; 1001.. → the rest.
result<id_map> three_ranges(std::uint32_t own, std::pair<std::uint32_t, std::uint32_t> sub,
                            step which) {
  auto [start, count] = sub;
  if (count < 2000)
    return nsentry_error(errc::invalid_argument, which, "subordinate range smaller than 2000");
  return id_map::from_ranges({{0, own, 1}, {1, start, 1000}, {1001, start + 1000, count - 1000}},
                             which);
}

result<int> run_sandboxed(std::vector<std::string> argv) {
  const passwd* pw = ::getpwuid(::getuid());
  if (!pw) return posix_error(step::id_map, "getpwuid");
  const std::string user = pw->pw_name;

  plan p;
  p.create = ns_set::of<user_ns, mnt_ns, pid_ns, uts_ns, ipc_ns>();
  NSENTRY_TRY(auto subuid, subordinate_range("/etc/subuid", user));
  NSENTRY_TRY(auto subgid, subordinate_range("/etc/subgid", user));
  NSENTRY_TRY(p.uid_map, three_ranges(::getuid(), subuid, step::uid_map));
  NSENTRY_TRY(p.gid_map, three_ranges(::getgid(), subgid, step::gid_map));
  p.rootless_euid = true;                // setgroups "deny" before the maps
  p.uidmap_tool = "/usr/bin/newuidmap";  // the defaults are looked up in PATH
  p.gidmap_tool = "/usr/bin/newgidmap";

  NSENTRY_TRY(auto cmd, exec_spec::make(std::move(argv)));
  NSENTRY_TRY(auto c, run_plan(p, cmd));
  NSENTRY_TRY(auto status, c.wait());
  return status.shell_status();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> cmd(argv + 1, argv + argc);
  if (cmd.empty())
    cmd = {"sh", "-c", "cat /proc/self/uid_map; echo ---; cat /proc/self/gid_map; echo ---; id -u"};
  auto r = run_sandboxed(std::move(cmd));
  if (!r) {
    std::fprintf(stderr, "rootless_sandbox: %s\n", r.error().message().c_str());
    return 125;
  }
  return r.value();
}
