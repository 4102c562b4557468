// nsentry/error.hpp — the one error story: result<T>, its context payload, nsentry's category.
//
// Every fallible call in nsentry returns `nsentry::result<T>`, a Boost.Outcome std_result whose
// error is an `nsentry::error`: a std::error_code (errno in std::generic_category(), or one of
// nsentry's own `errc` values) plus the context a reader needs to act on it — the step that
// failed (a closed enum, nsentry/step.hpp), the namespace kind, the path or pid it acted on,
// free detail text, the operation it happened in (`context`, rendered as a prefix), and the
// error it wraps, if any (`cause`: a failed restore keeps the errno that made it fail).
//
//   join: setns(net) on /proc/42/ns/net: Operation not permitted
//   ^context ^step ^kind  ^path          ^code
//
// Contract: parent-side only (building an error may allocate). Child-side code between clone and
// exec never builds one; it reports (step, errno) to the parent (over a pipe or a channel, or in
// shared memory on the vfork path), and the parent builds it.
#pragma once

#include <sys/types.h>

#include <boost/outcome/std_result.hpp>
#include <boost/outcome/try.hpp>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "nsentry/ns_kind.hpp"
#include "nsentry/step.hpp"

namespace nsentry::inline v0 {

namespace outcome = BOOST_OUTCOME_V2_NAMESPACE;

// Failures that are nsentry's own rather than an errno. 0 is never an error.
enum class errc : int {
  malformed_message = 1,  // a bootstrap message that breaks the wire format
  invalid_id_map,         // id-map text or ranges the kernel would refuse
  invalid_plan,           // a plan that is self-contradictory or names unknown things
  unsupported_kernel,     // the running kernel lacks a feature and there is no fallback
  not_joined,             // setns reported success but /proc/self/ns disagrees
  child_failed,           // a helper or child process exited non-zero or was killed
  restore_failed,         // a scoped entry could not put the thread back
  invalid_argument,       // an API or CLI argument that cannot be honoured
  too_large,              // an input over its size limit
  short_transfer,         // a copy or write that moved fewer bytes than it had to
  no_child,               // a child handle that holds no process
  multi_threaded,         // the kinds asked for need a single-threaded caller
  invalid_environment,    // a _LIBCONTAINER_* (or nsentry) environment variable is malformed
  sigchld_ignored,        // SIGCHLD is ignored (SIG_IGN / SA_NOCLDWAIT): a child's status is lost
};

class nsentry_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "nsentry"; }
  std::string message(int c) const override {
    switch (static_cast<errc>(c)) {
      case errc::malformed_message:
        return "malformed bootstrap message";
      case errc::invalid_id_map:
        return "invalid id map";
      case errc::invalid_plan:
        return "invalid plan";
      case errc::unsupported_kernel:
        return "kernel lacks a required feature";
      case errc::not_joined:
        return "namespace not joined";
      case errc::child_failed:
        return "child process failed";
      case errc::restore_failed:
        return "could not restore the thread's namespace";
      case errc::invalid_argument:
        return "invalid argument";
      case errc::too_large:
        return "input too large";
      case errc::short_transfer:
        return "short transfer";
      case errc::no_child:
        return "no child process";
      case errc::multi_threaded:
        return "needs a single-threaded caller";
      case errc::invalid_environment:
        return "invalid environment";
      case errc::sigchld_ignored:
        return "SIGCHLD is ignored (SIG_IGN or SA_NOCLDWAIT), so the child's exit status is lost; "
               "restore SIGCHLD to SIG_DFL";
    }
    return "unknown nsentry error";
  }
};

inline const std::error_category& nsentry_category() noexcept {
  static const nsentry_category_impl cat;
  return cat;
}

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), nsentry_category()};
}

}  // namespace nsentry::inline v0

template <>
struct std::is_error_code_enum<nsentry::errc> : std::true_type {};

namespace nsentry::inline v0 {

// The error of every nsentry::result. Cheap to move; copying copies two short strings.
struct error {
  std::error_code code;
  nsentry::step step = step::none;     // what was being done
  std::optional<ns_kind> kind;         // the namespace concerned, if any
  std::string path;                    // the file concerned, if any
  pid_t pid = 0;                       // the process concerned, if any (0 = none)
  std::string detail;                  // extra words for nsentry's own errors (offsets, lines)
  std::string_view context;            // the operation around the step ("join"); a literal
  std::shared_ptr<const error> cause;  // the error this one wraps, if any

  // The errno behind this error, or behind the one it wraps; 0 for nsentry's own codes.
  int errno_value() const noexcept {
    if (code.category() == std::generic_category()) return code.value();
    return cause ? cause->errno_value() : 0;
  }

  // "join: setns(net) on /proc/42/ns/net: Operation not permitted"
  // "uid_map line 2: ranges overlap outside: invalid id map"
  // "restore: setns(net): could not restore the thread's namespace (setns(net): Bad file ...)"
  std::string message() const {
    std::string out;
    if (!context.empty()) {
      out += context;
      out += ": ";
    }
    out += name_of(step);
    if (kind) {
      out += '(';
      out += name_of(*kind);
      out += ')';
    }
    if (!path.empty()) {
      out += " on ";
      out += path;
    } else if (pid != 0) {
      out += " on pid ";
      out += std::to_string(pid);
    }
    if (!detail.empty()) {
      out += ": ";
      out += detail;
    }
    out += ": ";
    out += code.message();
    if (cause) {
      out += " (";
      out += cause->message();
      out += ')';
    }
    return out;
  }

  friend bool operator==(const error& e, std::error_code c) noexcept { return e.code == c; }
  friend bool operator==(const error& e, std::errc c) noexcept { return e.code == c; }
  friend bool operator==(const error& e, errc c) noexcept { return e.code == c; }
};

// Outcome's ADL hooks: an nsentry::error is an error_code with a payload.
inline const std::error_code& make_error_code(const error& e) noexcept { return e.code; }

[[noreturn]] inline void outcome_throw_as_system_error_with_payload(const error& e) {
  throw std::system_error(e.code, e.message());
}

template <class T>
using result = outcome::std_result<T, error>;

using outcome::success;

// The three-line syscall wrapper idiom: `if (call(...) == -1) return posix_error(step::open);`.
// Reads errno at once, so call it before anything else can clobber it.
inline error posix_error(nsentry::step s, int err = errno) {
  error e;
  e.code = std::error_code(err, std::generic_category());
  e.step = s;
  return e;
}

inline error posix_error(nsentry::step s, std::string path, int err = errno) {
  error e = posix_error(s, err);
  e.path = std::move(path);
  return e;
}

inline error nsentry_error(errc c, nsentry::step s, std::string detail = {}) {
  error e;
  e.code = make_error_code(c);
  e.step = s;
  e.detail = std::move(detail);
  return e;
}

// Builder-style context, for adding what the caller knows and the callee did not.
inline error with_kind(error e, ns_kind k) {
  e.kind = k;
  return e;
}
inline error with_path(error e, std::string p) {
  e.path = std::move(p);
  return e;
}
inline error with_pid(error e, pid_t p) {
  e.pid = p;
  return e;
}
inline error with_step(error e, nsentry::step s) {
  e.step = s;
  return e;
}
// The operation the step was part of, rendered as a prefix: "join: setns(net) ...".
inline error with_context(error e, std::string_view context) {
  e.context = context;
  return e;
}
// A new error (code `c` at step `s`) that keeps `inner` as its cause.
inline error wrapping(errc c, nsentry::step s, error inner) {
  error e = nsentry_error(c, s);
  e.kind = inner.kind;
  e.cause = std::make_shared<const error>(std::move(inner));
  return e;
}

}  // namespace nsentry::inline v0

// Keep multi-step setup linear: NSENTRY_TRY(auto fd, open_ns(...));
#define NSENTRY_TRY BOOST_OUTCOME_TRY
