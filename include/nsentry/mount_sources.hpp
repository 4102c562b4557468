// nsentry/mount_sources.hpp — mount sources: paths the parent opens O_PATH inside the child's
// mount namespace and hands over as descriptors on the numbers the child's command expects.
//
//   p.mount_sources = {"/srv/data", "", "/etc/app.conf"};  // "": a mount without a source
//   NSENTRY_TRY(auto c, run_plan(p, cmd));  // the command holds them on fds 3 and 4
//
// Why: a child in a new user namespace is root only there, and may no longer reach a path its
// parent can. So the parent opens each source with O_PATH|O_CLOEXEC from inside the child's
// mount namespace (the one it created or joined: a path that exists only there works), sends
// the descriptor over the entry sequence's channel (SCM_RIGHTS), and the child dup3s it onto its
// number without CLOEXEC (child_side/sequence.hpp, step 6b), for its command to mount from
// /proc/self/fd/N. This is runc 1.1's MOUNT_SOURCES; runc/mount_sources.hpp adds runc's
// `_LIBCONTAINER_MOUNT_FDS`, and run_plan takes the numbers from run_options::mount_fds.
//
//  - `mount_fd_list(sources, base)`: the default numbers, consecutive from `base` for the
//    non-empty sources, -1 for "";
//  - `format_mount_fds(fds)`: "[3,-1,4]", the JSON array runc's `_LIBCONTAINER_MOUNT_FDS` and
//    `nsentry run`'s `NSENTRY_MOUNT_FDS` (mount_fds_env) carry;
//  - `pair_mount_sources(sources, fds, field)`: one number per source (-1 for ""), checked; the
//    result, `mount_fd_targets`, is what the child needs without allocating;
//  - `open_mount_sources_in(pid, targets, sock)` and `mount_sources_handler`: the parent's side.
//
// Contract: parent side (allocates). open_mount_sources_in works on a thread of its own that
// unshares its fs_struct and setns()es into /proc/<pid>/ns/mnt, so the caller may be
// multi-threaded and its own mount namespace, root and working directory never change. That
// setns needs CAP_SYS_ADMIN over the child's mount namespace and CAP_SYS_ADMIN + CAP_SYS_CHROOT
// in the caller's user namespace: a root caller (a rootless one gets setns EPERM).
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <exception>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "nsentry/channel.hpp"
#include "nsentry/error.hpp"
#include "nsentry/fd.hpp"
#include "nsentry/ns_kind.hpp"
#include "nsentry/sys.hpp"

namespace nsentry::inline v0 {

// Where `nsentry run` tells its command the numbers: format_mount_fds of them.
inline constexpr const char* mount_fds_env = "NSENTRY_MOUNT_FDS";

// One number per source: base, base+1, ... for the non-empty ones, -1 for "".
inline std::vector<int> mount_fd_list(const std::vector<std::string>& sources, int base = 3) {
  std::vector<int> out;
  for (const auto& s : sources) out.push_back(s.empty() ? -1 : base++);
  return out;
}

// "[3,-1,4]".
inline std::string format_mount_fds(const std::vector<int>& fds) {
  std::string out = "[";
  for (std::size_t i = 0; i < fds.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(fds[i]);
  }
  return out + "]";
}

// What the child needs, prepared by the parent: source i (for error lines) goes to fd target i.
struct mount_fd_targets {
  std::vector<const char*> sources;  // point into the caller's strings
  std::vector<int> targets;
};

// Pairs the sources (one per mount, "" for none) with their numbers (one per mount, -1 for
// none): every non-empty source has a number > 2 and vice versa, no number twice. Errors name
// `field` (the input the numbers came from) and the source.
inline result<mount_fd_targets> pair_mount_sources(const std::vector<std::string>& sources,
                                                   const std::vector<int>& fds,
                                                   nsentry::step field) {
  auto bad = [field](std::string what) {
    return nsentry_error(errc::invalid_plan, field, std::move(what));
  };
  if (sources.size() != fds.size())
    return bad(std::to_string(fds.size()) + " fds for " + std::to_string(sources.size()) +
               " mounts");
  mount_fd_targets out;
  for (std::size_t i = 0; i < sources.size(); ++i) {
    const std::string& s = sources[i];
    int fd = fds[i];
    if (s.empty() && fd == -1) continue;
    if (s.empty())
      return bad("fd " + std::to_string(fd) + " for mount " + std::to_string(i) +
                 ", which has no source");
    if (fd == -1) return bad("no fd for mount source " + s);
    if (fd <= 2)
      return bad("fd " + std::to_string(fd) + " for mount source " + s + " is a standard stream");
    for (int t : out.targets)
      if (t == fd)
        return bad("fd " + std::to_string(fd) + " for mount source " + s + " is used twice");
    out.sources.push_back(s.c_str());
    out.targets.push_back(fd);
  }
  return out;
}

namespace detail {
// On a thread of its own: leave the process's fs_struct, enter the mount namespace `ns`, open
// and send every source. The thread's namespace, root and cwd end with it.
inline result<void> open_and_send(int ns, const std::string& ns_path, const mount_fd_targets& m,
                                  int sock) {
  if (sys::calls.unshare(CLONE_FS) == -1)
    return with_context(posix_error(step::unshare), "mount_sources");
  if (sys::calls.setns(ns, CLONE_NEWNS) == -1)
    return with_context(with_kind(posix_error(step::setns, ns_path), ns_kind::mnt),
                        "mount_sources");
  for (const char* s : m.sources) {
    int fd = sys::calls.openat(AT_FDCWD, s, O_PATH | O_CLOEXEC, 0);
    if (fd == -1) return with_context(posix_error(step::open, s), "mount_sources");
    auto r = send_fd(sock, fd);
    sys::calls.close(fd);
    if (!r) return with_context(with_path(std::move(r).error(), s), "mount_sources");
  }
  return success();
}
}  // namespace detail

// The parent's side: opens each source inside /proc/<pid>/ns/mnt with O_PATH|O_CLOEXEC and
// sends it over `sock`, in order. A failure names the source: "mount_sources: open on /nope:
// No such file or directory".
inline result<void> open_mount_sources_in(pid_t pid, const mount_fd_targets& m, int sock) {
  const std::string path = "/proc/" + std::to_string(pid) + "/ns/mnt";
  NSENTRY_TRY(auto theirs, open_file(path, O_RDONLY));
  result<void> out = success();
  try {
    std::thread t([&]() noexcept {
      try {
        out = detail::open_and_send(theirs.get(), path, m, sock);
      } catch (const std::exception&) {  // std::bad_alloc building an error
        out = with_context(posix_error(step::open, ENOMEM), "mount_sources");
      }
    });
    t.join();
  } catch (const std::system_error& e) {  // no thread
    return with_context(posix_error(step::clone, e.code().value()), "mount_sources");
  }
  return out;
}

// serve()'s answer to the sequence's mount-sources request: open_mount_sources_in for the child
// being served, then the ack. `m` must outlive the exchange; `sock` is the parent's channel end.
inline handler mount_sources_handler(const mount_fd_targets& m, int sock) {
  return {record_type::mount_sources, [&m, sock](const record&, pid_t pid) -> result<reply> {
            NSENTRY_TRY(open_mount_sources_in(pid, m, sock));
            return reply::ack;
          }};
}

}  // namespace nsentry::inline v0
