// nsentry/runc/env.hpp — the environment contract between runc's Go parent and its init.
//
// runc tells `runc init` where its pipes are with three variables:
//   _LIBCONTAINER_INITPIPE  fd of the bootstrap socket. Unset or empty: not an init process.
//   _LIBCONTAINER_LOGPIPE   fd for JSON-lines logging (optional).
//   _LIBCONTAINER_LOGLEVEL  logrus level 0..6 (panic fatal error warning info debug trace);
//                           debug (5) when unset or empty.
// Values are decimal, digits only (no sign, no blanks); anything else is an error naming the
// variable and its value. runc itself accepts any non-negative level; nsentry rejects > 6
// because runc's Go side only ever sends 0..6.
//
// The descriptors are examined too, before anything is read or written on them. runc (1.1 and
// 1.2) passes one end of socketpair(AF_UNIX, SOCK_STREAM) as the init pipe and the write end of
// pipe(2) as the log pipe, both at fds >= 3. The rules:
//   _LIBCONTAINER_INITPIPE  open, a socket, AF_UNIX and SOCK_STREAM;
//   _LIBCONTAINER_LOGPIPE   open, a pipe or a socket, open for writing (O_WRONLY or O_RDWR),
//                           and not the same open file as the init pipe (same number, or a
//                           dup of it: same st_dev and st_ino), so that no log line can land
//                           in the init socket.
// Reasons: "not an open file descriptor", "not a socket", "not a unix stream socket",
// "not a pipe or socket", "not open for writing", "same open file as _LIBCONTAINER_INITPIPE=N",
// and "fstat failed: <errno text>" for an fstat error other than EBADF.
//
// Order: the init pipe decides first whether this is an init at all, so a process that merely
// inherited a stray _LIBCONTAINER_LOGPIPE never fails (runc 1.1 would bail). When it is an init,
// the log pipe is parsed and examined first, then the level, then the init pipe, so that an
// error about the level or the init pipe can still be reported on a valid log pipe
// (`env_scan::env.log_pipe`/`level` are filled as far as they are valid, even on error); an
// error about the log pipe leaves `log_pipe` empty (report it on stderr).
//
// Contract: everything here is noexcept, allocation-free and async-signal-safe except
// `to_result` (parent side; it builds an nsentry::error); the examination is fstat(2),
// fcntl(F_GETFL) and getsockopt(2). `scan_environ()` reads `environ`,
// which glibc sets before running ELF constructors, so it is usable from
// `__attribute__((constructor))` code before main; `scan_env(envp)` takes the envp that glibc
// passes to constructors, for callers that prefer not to touch the global. No getenv() (whose
// contract is not async-signal-safe), no locale, no strtol. Thread-safe as long as no other
// thread modifies the environment meanwhile.
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "nsentry/error.hpp"
#include "nsentry/sys.hpp"

namespace nsentry::inline v0::runc {

// logrus numbering; the order is the wire format.
enum class log_level : int {
  panic = 0,
  fatal = 1,
  error = 2,
  warning = 3,
  info = 4,
  debug = 5,
  trace = 6
};

inline constexpr std::string_view name_of(log_level l) noexcept {
  constexpr std::string_view names[] = {"panic", "fatal", "error", "warning",
                                        "info",  "debug", "trace"};
  return names[static_cast<int>(l)];
}

inline constexpr const char* init_pipe_var = "_LIBCONTAINER_INITPIPE";
inline constexpr const char* log_pipe_var = "_LIBCONTAINER_LOGPIPE";
inline constexpr const char* log_level_var = "_LIBCONTAINER_LOGLEVEL";

// What a runc init needs to know about its pipes.
struct init_env {
  int init_pipe = -1;
  std::optional<int> log_pipe;
  log_level level = log_level::debug;
};

// The outcome of scanning the environment: not an init, an init, or an invalid setting.
struct env_scan {
  enum class status { not_init, init, invalid };
  status state = status::not_init;
  init_env env;  // complete when `init`; when `invalid`, the log fields that did parse
  // When `invalid`: the variable, its value (pointing into the environment block) and why.
  const char* bad_variable = nullptr;
  const char* bad_value = nullptr;
  const char* reason = nullptr;
  // When the reason is a failed call ("fstat failed"): its errno, else 0.
  int reason_errno = 0;
  // When the reason is about another variable too ("same open file as"): that one and its value.
  const char* other_variable = nullptr;
  const char* other_value = nullptr;
};

namespace detail {

// The value of `name` in `envp`, or nullptr. First match wins, like getenv.
inline const char* env_lookup(char* const* envp, const char* name) noexcept {
  if (envp == nullptr) return nullptr;
  for (; *envp != nullptr; ++envp) {
    const char* e = *envp;
    const char* n = name;
    while (*n != '\0' && *e == *n) {
      ++e;
      ++n;
    }
    if (*n == '\0' && *e == '=') return e + 1;
  }
  return nullptr;
}

// Decimal digits only, in [0, max]; otherwise nullptr is returned and `value` untouched.
inline const char* parse_decimal(const char* text, int max, int& value) noexcept {
  if (*text == '\0') return "empty";
  long long v = 0;
  for (const char* p = text; *p != '\0'; ++p) {
    if (*p < '0' || *p > '9') return "not a non-negative decimal integer";
    v = v * 10 + (*p - '0');
    if (v > max) return max == INT_MAX ? "out of range" : "out of range (0..6)";
  }
  value = static_cast<int>(v);
  return nullptr;
}

inline constexpr const char fstat_failed[] = "fstat failed";

// fstat(fd) into `st`; why it failed, or nullptr. On "fstat failed", errno is fstat's.
inline const char* fstat_problem(int fd, struct stat& st) noexcept {
  if (sys::calls.fstat(fd, &st) == 0) return nullptr;
  return errno == EBADF ? "not an open file descriptor" : fstat_failed;
}

// Why `fd` cannot be the log pipe, or nullptr. `st` is its fstat when it is open.
inline const char* log_pipe_problem(int fd, struct stat& st) noexcept {
  if (const char* why = fstat_problem(fd, st)) return why;
  if (!S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode)) return "not a pipe or socket";
  // fcntl(F_GETFL) and getsockopt are plain queries outside sys::calls (whose table has neither):
  // every answer they can give is made in the tests with a real descriptor.
  const int fl = ::fcntl(fd, F_GETFL);
  if (fl == -1 || ((fl & O_ACCMODE) != O_WRONLY && (fl & O_ACCMODE) != O_RDWR))
    return "not open for writing";
  return nullptr;
}

// Why an open `fd` (fstat in `st`) cannot be the init pipe, or nullptr.
inline const char* init_pipe_problem(int fd, const struct stat& st) noexcept {
  if (!S_ISSOCK(st.st_mode)) return "not a socket";
  int domain = 0, type = 0;
  socklen_t dl = sizeof domain, tl = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dl) == -1 ||
      ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == -1 || domain != AF_UNIX ||
      type != SOCK_STREAM)
    return "not a unix stream socket";
  return nullptr;
}

}  // namespace detail

// Scans `envp` (a NULL-terminated "NAME=value" array).
inline env_scan scan_env(char* const* envp) noexcept {
  env_scan out;
  const char* init = detail::env_lookup(envp, init_pipe_var);
  if (init == nullptr || *init == '\0') return out;  // not an init: nothing else matters

  auto fail = [&out](const char* var, const char* value, const char* why) {
    out.reason_errno = why == detail::fstat_failed ? errno : 0;
    out.state = env_scan::status::invalid;
    out.bad_variable = var;
    out.bad_value = value;
    out.reason = why;
    return out;
  };

  const char* log = detail::env_lookup(envp, log_pipe_var);
  struct stat log_st {};
  if (log != nullptr && *log != '\0') {
    int fd = -1;
    if (const char* why = detail::parse_decimal(log, INT_MAX, fd))
      return fail(log_pipe_var, log, why);
    if (const char* why = detail::log_pipe_problem(fd, log_st)) return fail(log_pipe_var, log, why);
    out.env.log_pipe = fd;
  }
  const char* level = detail::env_lookup(envp, log_level_var);
  if (level != nullptr && *level != '\0') {
    int l = 0;
    if (const char* why = detail::parse_decimal(level, 6, l))
      return fail(log_level_var, level, why);
    out.env.level = static_cast<log_level>(l);
  }
  int fd = -1;
  if (const char* why = detail::parse_decimal(init, INT_MAX, fd))
    return fail(init_pipe_var, init, why);
  struct stat init_st {};
  if (const char* why = detail::fstat_problem(fd, init_st)) return fail(init_pipe_var, init, why);
  // Same st_dev/st_ino: for a socket, the same socket (a dup or the same number); for a pipe,
  // either end of the same pipe. Either way nothing may be reported on the log pipe.
  const bool same =
      out.env.log_pipe && log_st.st_dev == init_st.st_dev && log_st.st_ino == init_st.st_ino;
  if (const char* why = detail::init_pipe_problem(fd, init_st)) {
    if (same) out.env.log_pipe.reset();
    return fail(init_pipe_var, init, why);
  }
  if (same) {
    out.env.log_pipe.reset();
    out.other_variable = init_pipe_var;
    out.other_value = init;
    return fail(log_pipe_var, log, "same open file as");
  }
  out.env.init_pipe = fd;
  out.state = env_scan::status::init;
  return out;
}

// Scans the process environment (`environ`); see the contract above.
inline env_scan scan_environ() noexcept { return scan_env(environ); }

// Parent-side view: nullopt = not an init; an error names the variable, value and reason:
//   "environment: _LIBCONTAINER_LOGLEVEL=abc: not a non-negative decimal integer: invalid
//   environment", "environment: _LIBCONTAINER_LOGPIPE=5: same open file as
//   _LIBCONTAINER_INITPIPE=5: invalid environment"
inline result<std::optional<init_env>> to_result(const env_scan& s) {
  switch (s.state) {
    case env_scan::status::not_init:
      return std::optional<init_env>();
    case env_scan::status::init:
      return std::optional<init_env>(s.env);
    case env_scan::status::invalid:
      break;
  }
  std::string detail(s.bad_variable);
  detail += '=';
  detail += s.bad_value;
  detail += ": ";
  detail += s.reason;
  if (s.reason_errno != 0) {
    detail += ": ";
    detail += std::strerror(s.reason_errno);
  }
  if (s.other_variable != nullptr) {
    detail += ' ';
    detail += s.other_variable;
    detail += '=';
    detail += s.other_value;
  }
  return nsentry_error(errc::invalid_environment, step::environment, std::move(detail));
}

}  // namespace nsentry::inline v0::runc
