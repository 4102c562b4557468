// nsentry/runc/mount_sources.hpp — runc 1.1's MOUNT_SOURCES: bind-mount sources opened by
// stage-0 inside the container's new mount namespace and handed to stage-1 as fds.
//
// Why (spec §5): with a user namespace, the Go init in stage-2 may no longer be able to reach a
// bind mount's source (it is root only in the new user namespace), so runc 1.1 has stage-0 — still
// the host's root — open each source with O_PATH from inside stage-1's new mount namespace and
// pass the fd; the Go init mounts from /proc/self/fd/N. The fd numbers are reserved by runc's
// parent (placeholder fds) and listed in `_LIBCONTAINER_MOUNT_FDS`, a JSON array of ints with
// one entry per mount of the config: -1 where the mount has no source.
//
//  - `parse_mount_fds(text)`: the env value, strictly (a JSON array of integers, each -1 or a
//    descriptor number >= 0 that fits an int; nothing else);
//  - `pair_mount_sources(sources, fds)`: the message's MOUNT_SOURCES (one entry per mount, ""
//    for none) against that list; every non-empty source must have a number and vice versa, no
//    number twice. The result, `mount_fd_targets`, is what stage-1 needs without allocating;
//  - the descriptors travel over the library's channel (channel.hpp: send_fd / receive_fd), and
//    stage-1 places them with the entry sequence's mount-source step (child_side/sequence.hpp);
//  - `open_mount_sources_in(pid, ...)`: stage-0's side — setns into /proc/<pid>/ns/mnt, open
//    each source O_PATH|O_CLOEXEC, send it, setns back to the original mount namespace (and
//    working directory). Errors name the source.
// Contract: stage-0's side must run single-threaded (setns(CLONE_NEWNS)) with CAP_SYS_ADMIN over
// the target's user namespace; parse/pair allocate (stage-0 only). Any Linux with setns (3.8).
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "nsentry/channel.hpp"
#include "nsentry/error.hpp"
#include "nsentry/fd.hpp"
#include "nsentry/ns_kind.hpp"
#include "nsentry/sys.hpp"

namespace nsentry::inline v0::runc {

inline constexpr const char* mount_fds_var = "_LIBCONTAINER_MOUNT_FDS";

// `_LIBCONTAINER_MOUNT_FDS`, strictly: `[` int (`,` int)* `]` or `[]`, JSON whitespace allowed
// between tokens; each int is -1 or in [0, INT_MAX]; no leading zeros, no `+`, nothing after.
inline result<std::vector<int>> parse_mount_fds(std::string_view text) {
  auto bad = [&](const char* why) {
    return nsentry_error(errc::invalid_plan, step::mount_fds, std::string(text) + ": " + why);
  };
  std::vector<int> out;
  std::size_t i = 0;
  auto skip_ws = [&] {
    while (i < text.size() &&
           (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
      ++i;
  };
  skip_ws();
  if (i == text.size() || text[i] != '[') return bad("missing '['");
  ++i;
  skip_ws();
  if (i < text.size() && text[i] == ']') {
    ++i;
  } else {
    for (;;) {
      skip_ws();
      bool neg = i < text.size() && text[i] == '-';
      if (neg) ++i;
      std::size_t start = i;
      long long v = 0;
      while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
        v = v * 10 + (text[i] - '0');
        if (v > INT_MAX) return bad("fd out of range");
        ++i;
      }
      if (i == start) return bad("not a number");
      if (i - start > 1 && text[start] == '0') return bad("leading zero");
      if (neg && v != 1) return bad("fd out of range");
      out.push_back(neg ? -1 : static_cast<int>(v));
      skip_ws();
      if (i == text.size()) return bad("missing ']'");
      if (text[i] == ']') {
        ++i;
        break;
      }
      if (text[i] != ',') return bad("expected ',' or ']'");
      ++i;
    }
  }
  skip_ws();
  if (i != text.size()) return bad("text after ']'");
  return out;
}

// What stage-1 needs, prepared by stage-0: source i (for error lines) goes to fd target i.
struct mount_fd_targets {
  std::vector<const char*> sources;  // point into the plan's strings
  std::vector<int> targets;
};

// Pairs the message's sources with the env's fd numbers; `reserved` are numbers the init itself
// uses (init pipe, log pipe), which a target must not be.
inline result<mount_fd_targets> pair_mount_sources(const std::vector<std::string>& sources,
                                                   const std::vector<int>& fds,
                                                   std::initializer_list<int> reserved = {}) {
  if (sources.size() != fds.size())
    return nsentry_error(errc::invalid_plan, step::mount_fds,
                         std::to_string(fds.size()) + " fds for " + std::to_string(sources.size()) +
                             " mounts in MOUNT_SOURCES");
  mount_fd_targets out;
  for (std::size_t i = 0; i < sources.size(); ++i) {
    const std::string& s = sources[i];
    int fd = fds[i];
    if (s.empty() && fd == -1) continue;
    if (s.empty())
      return nsentry_error(
          errc::invalid_plan, step::mount_fds,
          "fd " + std::to_string(fd) + " for mount " + std::to_string(i) + ", which has no source");
    if (fd == -1)
      return nsentry_error(errc::invalid_plan, step::mount_fds, "no fd for mount source " + s);
    if (fd <= 2)
      return nsentry_error(
          errc::invalid_plan, step::mount_fds,
          "fd " + std::to_string(fd) + " for mount source " + s + " is a standard stream");
    for (int r : reserved)
      if (fd == r)
        return nsentry_error(
            errc::invalid_plan, step::mount_fds,
            "fd " + std::to_string(fd) + " for mount source " + s + " is the init's own pipe");
    for (int t : out.targets)
      if (t == fd)
        return nsentry_error(
            errc::invalid_plan, step::mount_fds,
            "fd " + std::to_string(fd) + " for mount source " + s + " is used twice");
    out.sources.push_back(s.c_str());
    out.targets.push_back(fd);
  }
  return out;
}

// Stage-0's side: opens each source inside /proc/<pid>/ns/mnt with O_PATH|O_CLOEXEC and sends
// it over `sock`, in order; returns to this process's mount namespace and working directory
// whether or not that worked (failing to return is an error too).
inline result<void> open_mount_sources_in(pid_t pid, const mount_fd_targets& m, int sock) {
  NSENTRY_TRY(auto own_ns, open_file("/proc/self/ns/mnt", O_RDONLY));
  NSENTRY_TRY(auto cwd, open_file(".", O_PATH | O_DIRECTORY));
  std::string path = "/proc/" + std::to_string(pid) + "/ns/mnt";
  NSENTRY_TRY(auto theirs, open_file(path, O_RDONLY));
  if (sys::calls.setns(theirs.get(), CLONE_NEWNS) == -1)
    return with_kind(posix_error(step::setns, path), ns_kind::mnt);
  result<void> sent = success();
  for (const char* s : m.sources) {
    int fd = ::open(s, O_PATH | O_CLOEXEC);
    if (fd == -1) {
      sent = with_context(posix_error(step::open, s), "mount source");
      break;
    }
    auto r = send_fd(sock, fd);
    sys::calls.close(fd);
    if (!r) {
      sent = with_context(with_path(std::move(r).error(), s), "mount source");
      break;
    }
  }
  if (sys::calls.setns(own_ns.get(), CLONE_NEWNS) == -1)
    return with_context(with_kind(posix_error(step::setns, "/proc/self/ns/mnt"), ns_kind::mnt),
                        "back to our own mount namespace");
  if (sys::calls.fchdir(cwd.get()) == -1)
    return with_context(posix_error(step::fchdir), "back to our own working directory");
  return sent;
}

}  // namespace nsentry::inline v0::runc
