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
//  - `send_fd` / `receive_fd`: one descriptor over an AF_UNIX socket with SCM_RIGHTS (one byte of
//    payload per descriptor). Self-contained: no other nsentry state, async-signal-safe, no
//    allocation — usable between clone and exec and on any channel.
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
#include <initializer_list>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "nsentry/error.hpp"
#include "nsentry/fd.hpp"
#include "nsentry/sys.hpp"

namespace nsentry::runc {

inline constexpr const char* mount_fds_var = "_LIBCONTAINER_MOUNT_FDS";

// `_LIBCONTAINER_MOUNT_FDS`, strictly: `[` int (`,` int)* `]` or `[]`, JSON whitespace allowed
// between tokens; each int is -1 or in [0, INT_MAX]; no leading zeros, no `+`, nothing after.
inline result<std::vector<int>> parse_mount_fds(std::string_view text) {
  auto bad = [&](const char* why) {
    return nsentry_error(errc::invalid_plan, mount_fds_var,
                         std::string(text) + ": " + why);
  };
  std::vector<int> out;
  std::size_t i = 0;
  auto skip_ws = [&] {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' ||
                               text[i] == '\r'))
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
    return nsentry_error(errc::invalid_plan, mount_fds_var,
                         std::to_string(fds.size()) + " fds for " +
                             std::to_string(sources.size()) + " mounts in MOUNT_SOURCES");
  mount_fd_targets out;
  for (std::size_t i = 0; i < sources.size(); ++i) {
    const std::string& s = sources[i];
    int fd = fds[i];
    if (s.empty() && fd == -1) continue;
    if (s.empty())
      return nsentry_error(errc::invalid_plan, mount_fds_var,
                           "fd " + std::to_string(fd) + " for mount " + std::to_string(i) +
                               ", which has no source");
    if (fd == -1)
      return nsentry_error(errc::invalid_plan, mount_fds_var, "no fd for mount source " + s);
    if (fd <= 2)
      return nsentry_error(errc::invalid_plan, mount_fds_var,
                           "fd " + std::to_string(fd) + " for mount source " + s +
                               " is a standard stream");
    for (int r : reserved)
      if (fd == r)
        return nsentry_error(errc::invalid_plan, mount_fds_var,
                             "fd " + std::to_string(fd) + " for mount source " + s +
                                 " is the init's own pipe");
    for (int t : out.targets)
      if (t == fd)
        return nsentry_error(errc::invalid_plan, mount_fds_var,
                             "fd " + std::to_string(fd) + " for mount source " + s +
                                 " is used twice");
    out.sources.push_back(s.c_str());
    out.targets.push_back(fd);
  }
  return out;
}

// Sends `fd` over `sock` with SCM_RIGHTS and one payload byte. 0, or the errno.
// Async-signal-safe, no allocation.
inline int send_fd(int sock, int fd) noexcept {
  char byte = 'F';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  for (;;) {
    ssize_t n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n == 1) return 0;
    if (n == -1 && errno == EINTR) continue;
    return n == -1 ? errno : EIO;
  }
}

// Receives one descriptor sent by send_fd, close-on-exec. The fd, or -1 with errno set (EIO: the
// peer closed the socket or sent no descriptor). Async-signal-safe, no allocation.
inline int receive_fd(int sock) noexcept {
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  while ((n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) == -1 && errno == EINTR) {
  }
  if (n == -1) return -1;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (n != 1 || c == nullptr || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
      c->cmsg_len != CMSG_LEN(sizeof(int)) || (msg.msg_flags & MSG_CTRUNC)) {
    errno = EIO;
    return -1;
  }
  int fd;
  std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
  return fd;
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
    return posix_error("setns(CLONE_NEWNS)", path);
  result<void> sent = success();
  for (const char* s : m.sources) {
    int fd = ::open(s, O_PATH | O_CLOEXEC);
    if (fd == -1) {
      sent = posix_error("open mount source", s);
      break;
    }
    int err = send_fd(sock, fd);
    sys::calls.close(fd);
    if (err != 0) {
      errno = err;
      sent = posix_error("send mount source fd", s);
      break;
    }
  }
  if (sys::calls.setns(own_ns.get(), CLONE_NEWNS) == -1)
    return posix_error("setns(CLONE_NEWNS) back", "/proc/self/ns/mnt");
  if (::fchdir(cwd.get()) == -1) return posix_error("fchdir back");
  return sent;
}

}  // namespace nsentry::runc
