// nsentry/channel.hpp — the one channel between a parent and the child it is setting up.
//
// A child between clone and exec cannot build an nsentry::error (that allocates), and some of
// its steps need work done from outside (id maps are written by the parent; so are time
// offsets). Both travel over one AF_UNIX stream socket as fixed-size `record`s:
//
//   child                                   parent (serve)
//   ask(id_maps)      ── record ──▶         handler for id_maps: write_id_maps(pid)
//                     ◀── ack byte ──
//   send(failure)     ── record ──▶         serve returns the error it stands for
//   exec (CLOEXEC)    ── EOF ──▶            serve returns success
//
// Record types below `record_type::first_client` are nsentry's; a client protocol (runc/) adds
// its own from there on, with handlers of its own.
//
// Contracts: the child-side functions (send, ask, send_fd, receive_fd) are noexcept,
// allocation-free and async-signal-safe; they never raise SIGPIPE (MSG_NOSIGNAL). The
// parent-side functions (read_record, ack, serve) allocate only for errors and are thread-safe
// per channel object. Every descriptor here is CLOEXEC.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <type_traits>

#include "nsentry/error.hpp"
#include "nsentry/fd.hpp"
#include "nsentry/ns_kind.hpp"
#include "nsentry/step.hpp"
#include "nsentry/sys.hpp"

namespace nsentry::inline v0 {

// --- owning pairs ------------------------------------------------------------------------------

// pipe2(flags), for the child side too: noexcept, no allocation, no result<>. make() returns 0,
// or the errno (and both ends stay empty).
struct raw_pipe {
  unique_fd read_end;
  unique_fd write_end;

  [[nodiscard]] int make(int flags) noexcept {
    std::array<int, 2> p{-1, -1};
    if (sys::calls.pipe2(p.data(), flags) == -1) return errno;
    read_end.reset(p[0]);
    write_end.reset(p[1]);
    return 0;
  }
};

// A connected AF_UNIX stream socketpair: one end for the parent, one for the child.
struct socket_pair {
  unique_fd parent_end;
  unique_fd child_end;

  static result<socket_pair> make() {
    std::array<int, 2> sv{-1, -1};
    if (sys::calls.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv.data()) == -1)
      return posix_error(step::socketpair);
    return socket_pair{unique_fd(sv[0]), unique_fd(sv[1])};
  }
};

// pipe2(O_CLOEXEC | extra_flags).
struct pipe_pair {
  unique_fd read_end;
  unique_fd write_end;

  static result<pipe_pair> make(int extra_flags = 0) {
    raw_pipe p;
    if (int e = p.make(O_CLOEXEC | extra_flags); e != 0) return posix_error(step::pipe, e);
    return pipe_pair{std::move(p.read_end), std::move(p.write_end)};
  }
};

// --- the records -------------------------------------------------------------------------------

inline constexpr std::uint8_t no_kind = 0xff;

// A child-side failure: plain data, safe to build and copy between clone and exec.
struct failure {
  nsentry::step step = step::none;
  int err = 0;
  std::uint8_t kind = no_kind;  // an ns_kind, or no_kind
  // Set for errc::not_joined (err == 0): the kinds, as clone flags, that did not take.
  std::uint32_t missing = 0;

  constexpr bool failed() const noexcept { return step != step::none; }
  static constexpr failure at(nsentry::step s, int e) noexcept { return {s, e, no_kind, 0}; }
  static constexpr failure at(nsentry::step s, int e, ns_kind k) noexcept {
    return {s, e, static_cast<std::uint8_t>(k), 0};
  }
};

// What runs in a child: called once between clone and exec, it must not throw or allocate, and
// it returns the failure record (or none, having finished its job).
template <class F>
concept child_function = std::is_nothrow_invocable_r_v<failure, F&>;

enum class record_type : std::uint8_t {
  failure = 1,        // the child failed: (step, kind, errno)
  id_maps = 2,        // please write my setgroups/uid_map/gid_map
  time_offsets = 3,   // please write my time namespace's offsets
  mount_sources = 4,  // please send me my mount sources' descriptors (SCM_RIGHTS), then ack
  first_client = 32   // client protocols (runc/) number their own records from here
};

// The wire record: fixed size, sent whole (one sendmsg; a stream socket never splits it
// between two writers because each writer waits for its ack before sending again).
struct record {
  std::uint8_t type = 0;
  std::uint8_t step = 0;
  std::uint8_t kind = no_kind;
  std::uint8_t pad = 0;
  std::int32_t value = 0;  // errno of a failure, or a client record's number (a pid)
  std::uint32_t missing = 0;

  constexpr nsentry::failure as_failure() const noexcept {
    return {static_cast<nsentry::step>(step), value, kind, missing};
  }
};
static_assert(sizeof(record) == 12);

// --- child side --------------------------------------------------------------------------------
// Each of these is noexcept, allocation-free and async-signal-safe.

namespace detail {
inline ssize_t send_bytes(int fd, const void* data, std::size_t n, int cmsg_fd = -1) noexcept {
  iovec iov{const_cast<void*>(data), n};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  if (cmsg_fd >= 0) {
    std::memset(control, 0, sizeof control);
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &cmsg_fd, sizeof(int));
  }
  ssize_t r;
  while ((r = sys::calls.sendmsg(fd, &msg, MSG_NOSIGNAL)) == -1 && errno == EINTR) {
  }
  if (r == -1 && errno == ENOTSOCK && cmsg_fd < 0) {  // a report pipe (spawn's own channel)
    while ((r = sys::calls.write(fd, data, n)) == -1 && errno == EINTR) {
    }
  }
  return r;
}
}  // namespace detail

// Sends one record. Returns false when the other side is gone (the caller decides what then).
inline bool send(int fd, record_type t, const failure& f = {}, std::int32_t value = 0) noexcept {
  record r;
  r.type = static_cast<std::uint8_t>(t);
  r.step = static_cast<std::uint8_t>(f.step);
  r.kind = f.kind;
  r.value = f.failed() ? f.err : value;
  r.missing = f.missing;
  return detail::send_bytes(fd, &r, sizeof r) == static_cast<ssize_t>(sizeof r);
}

// Reads the one-byte ack (or go-ahead) the parent sends. A failure names step::sync: EPIPE when
// the parent closed the channel without answering (it reports why itself).
inline failure wait_ack(int fd) noexcept {
  char ack = 0;
  ssize_t n;
  while ((n = sys::calls.read(fd, &ack, 1)) == -1 && errno == EINTR) {
  }
  if (n == 1) return {};
  return failure::at(step::sync, n == 0 ? EPIPE : errno);
}

// A request to the parent: send `t`, return once the parent has acknowledged it.
inline failure ask(int fd, record_type t) noexcept {
  if (!send(fd, t)) return failure::at(step::sync, errno);
  return wait_ack(fd);
}

// Receives one descriptor sent with SCM_RIGHTS (its one data byte is discarded). -1 + errno on
// failure; EPROTO when a message came without a descriptor.
inline int receive_fd(int fd) noexcept {
  char byte;
  iovec iov{&byte, 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  while ((n = sys::calls.recvmsg(fd, &msg, MSG_CMSG_CLOEXEC)) == -1 && errno == EINTR) {
  }
  if (n == -1) return -1;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (n == 0 || c == nullptr || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
      c->cmsg_len != CMSG_LEN(sizeof(int)) || (msg.msg_flags & MSG_CTRUNC)) {
    errno = n == 0 ? EPIPE : EPROTO;
    return -1;
  }
  int out;
  std::memcpy(&out, CMSG_DATA(c), sizeof out);
  return out;
}

// --- parent side -------------------------------------------------------------------------------

// The nsentry::error a failure record stands for.
inline error error_from(const failure& f) {
  error e = f.err != 0 ? posix_error(f.step, f.err) : nsentry_error(errc::not_joined, f.step);
  if (f.kind < ns_kind_count) e.kind = static_cast<ns_kind>(f.kind);
  if (f.missing != 0) {
    std::string names;
    for (const auto& r : ns_kinds)
      if (f.missing & static_cast<std::uint32_t>(r.clone_flag)) {
        if (!names.empty()) names += ',';
        names += r.name;
      }
    e.detail = "still outside " + names;
  }
  return e;
}

// Reads one record; nullopt at end of file (the child exec'd or exited).
inline result<std::optional<record>> read_record(int fd) {
  record r;
  NSENTRY_TRY(auto n, read_full(fd, std::as_writable_bytes(std::span(&r, 1))));
  if (n == 0) return std::optional<record>{};
  if (n != sizeof r)
    return nsentry_error(errc::child_failed, step::recv, "short record from child");
  return std::optional<record>{r};
}

// The one-byte answer to a request. No SIGPIPE: a child that died is an error naming it.
inline result<void> ack(int fd, char byte = '+') {
  if (detail::send_bytes(fd, &byte, 1) != 1) return posix_error(step::send);
  return success();
}

// Sends `payload_fd` with SCM_RIGHTS (one data byte). Parent side.
inline result<void> send_fd(int fd, int payload_fd) {
  char byte = 'F';
  if (detail::send_bytes(fd, &byte, 1, payload_fd) != 1) return posix_error(step::send);
  return success();
}

// What a handler tells serve() to do after it has done its work.
enum class reply {
  ack,   // send the one-byte ack and read on
  none,  // read on without answering (the handler answered, or no answer is expected)
  stop,  // the exchange is complete: serve returns success
};

// Answers one record type; called with the record and the pid of the child being served.
struct handler {
  using function = std::function<result<reply>(const record&, pid_t child)>;
  std::uint8_t type;
  function fn;

  handler(record_type t, function f) : type(static_cast<std::uint8_t>(t)), fn(std::move(f)) {}
  handler(std::uint8_t t, function f) : type(t), fn(std::move(f)) {}
};

// The parent's side of an exchange: answers requests through `handlers` until the child's end
// reaches EOF (every holder exec'd or exited: success) or a handler says stop. A failure record
// becomes the error `to_error` makes of it (by default error_from), with `pid` attached. A
// handler's error ends the exchange with that error.
inline result<void> serve(int fd, pid_t pid, std::span<const handler> handlers,
                          const std::function<error(const failure&)>& to_error = {}) {
  auto failed = [&](const record& r) {
    error e = to_error ? to_error(r.as_failure()) : error_from(r.as_failure());
    if (e.pid == 0) e.pid = pid;
    return e;
  };
  for (;;) {
    NSENTRY_TRY(auto rec, read_record(fd));
    if (!rec) return success();
    if (rec->type == static_cast<std::uint8_t>(record_type::failure)) return failed(*rec);
    const handler* h = nullptr;
    for (const auto& c : handlers)
      if (c.type == rec->type) h = &c;
    if (h == nullptr)
      return with_pid(nsentry_error(errc::child_failed, step::recv,
                                    "unexpected record " + std::to_string(rec->type)),
                      pid);
    NSENTRY_TRY(auto what, h->fn(*rec, pid));
    if (what == reply::stop) return success();
    if (what == reply::ack) {
      if (auto a = ack(fd); !a) {
        // The child failed while we answered (waiting for this ack, say): its failure record,
        // already sent, is the cause; our EPIPE is only its consequence.
        if (a.error().errno_value() == EPIPE) {
          auto next = read_record(fd);
          if (next && next.value() &&
              next.value()->type == static_cast<std::uint8_t>(record_type::failure))
            return failed(*next.value());
        }
        return std::move(a).error();
      }
    }
  }
}

}  // namespace nsentry::inline v0
