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
// Order: the init pipe decides first whether this is an init at all, so a process that merely
// inherited a stray _LIBCONTAINER_LOGPIPE never fails (runc 1.1 would bail). When it is an init,
// the log variables are parsed before the init pipe's value is judged, so that an error about
// the init pipe can still be reported on a valid log pipe (`env_scan::log_pipe`/`level` are
// filled as far as they parsed, even on error).
//
// Contract: everything here is noexcept, allocation-free and async-signal-safe except
// `to_result` (parent side; it builds an nsentry::error). `scan_environ()` reads `environ`,
// which glibc sets before running ELF constructors, so it is usable from
// `__attribute__((constructor))` code before main; `scan_env(envp)` takes the envp that glibc
// passes to constructors, for callers that prefer not to touch the global. No getenv() (whose
// contract is not async-signal-safe), no locale, no strtol. Thread-safe as long as no other
// thread modifies the environment meanwhile.
#pragma once

#include <unistd.h>

#include <climits>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "nsentry/error.hpp"

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

}  // namespace detail

// Scans `envp` (a NULL-terminated "NAME=value" array).
inline env_scan scan_env(char* const* envp) noexcept {
  env_scan out;
  const char* init = detail::env_lookup(envp, init_pipe_var);
  if (init == nullptr || *init == '\0') return out;  // not an init: nothing else matters

  auto fail = [&out](const char* var, const char* value, const char* why) {
    out.state = env_scan::status::invalid;
    out.bad_variable = var;
    out.bad_value = value;
    out.reason = why;
    return out;
  };

  const char* log = detail::env_lookup(envp, log_pipe_var);
  if (log != nullptr && *log != '\0') {
    int fd = -1;
    if (const char* why = detail::parse_decimal(log, INT_MAX, fd))
      return fail(log_pipe_var, log, why);
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
  out.env.init_pipe = fd;
  out.state = env_scan::status::init;
  return out;
}

// Scans the process environment (`environ`); see the contract above.
inline env_scan scan_environ() noexcept { return scan_env(environ); }

// Parent-side view: nullopt = not an init; an error names the variable, value and reason:
//   "_LIBCONTAINER_LOGLEVEL=abc: not a non-negative decimal integer: invalid usage"
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
  return nsentry_error(errc::invalid_environment, step::environment, std::move(detail));
}

}  // namespace nsentry::inline v0::runc
