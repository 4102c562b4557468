// nsentry/error.hpp — the one error story: result<T>, its context payload, nsentry's category.
//
// Every fallible call in nsentry returns `nsentry::result<T>`, a Boost.Outcome std_result whose
// error is an `nsentry::error`: a std::error_code (errno in std::generic_category(), or one of
// nsentry's own `errc` values) plus the context a reader needs to act on it — the step that
// failed, the namespace kind, the path or pid it acted on, and free detail text.
//
// Contract: parent-side only (building an error may allocate). Child-side code between clone and
// exec never builds one; it reports (step, errno) over a pipe and the parent builds it.
#pragma once

#include <boost/outcome/std_result.hpp>
#include <boost/outcome/try.hpp>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <system_error>
#include <utility>

#include "nsentry/ns_kind.hpp"

namespace nsentry {

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
  usage,                  // an API or CLI argument that cannot be honoured
};

class nsentry_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "nsentry"; }
  std::string message(int c) const override {
    switch (static_cast<errc>(c)) {
      case errc::malformed_message: return "malformed bootstrap message";
      case errc::invalid_id_map: return "invalid id map";
      case errc::invalid_plan: return "invalid plan";
      case errc::unsupported_kernel: return "kernel lacks a required feature";
      case errc::not_joined: return "namespace not joined";
      case errc::child_failed: return "child process failed";
      case errc::restore_failed: return "could not restore the thread's namespace";
      case errc::usage: return "invalid usage";
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

}  // namespace nsentry

template <>
struct std::is_error_code_enum<nsentry::errc> : std::true_type {};

namespace nsentry {

// The error of every nsentry::result. Cheap to move; copying copies two short strings.
struct error {
  std::error_code code;
  std::string_view step;           // e.g. "setns", "open", "uid_map"; always a string literal
  std::optional<ns_kind> kind;     // the namespace concerned, if any
  std::string path;                // the file concerned, if any
  pid_t pid = 0;                   // the process concerned, if any (0 = none)
  std::string detail;              // extra words for nsentry's own errors (offsets, line numbers)

  int errno_value() const noexcept {
    return code.category() == std::generic_category() ? code.value() : 0;
  }

  // "setns(net) on /proc/42/ns/net: Operation not permitted"
  // "uid_map line 2: ranges overlap outside: invalid id map"
  std::string message() const {
    std::string out(step.empty() ? std::string_view("nsentry") : step);
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

// The three-line syscall wrapper idiom: `if (call(...) == -1) return posix_error("step");`.
// Reads errno at once, so call it before anything else can clobber it.
inline error posix_error(std::string_view step, int err = errno) {
  return error{std::error_code(err, std::generic_category()), step, {}, {}, 0, {}};
}

inline error posix_error(std::string_view step, std::string path, int err = errno) {
  return error{std::error_code(err, std::generic_category()), step, {}, std::move(path), 0, {}};
}

inline error nsentry_error(errc c, std::string_view step, std::string detail = {}) {
  return error{make_error_code(c), step, {}, {}, 0, std::move(detail)};
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
inline error with_step(error e, std::string_view s) {
  e.step = s;
  return e;
}

}  // namespace nsentry

// Keep multi-step setup linear: NSENTRY_TRY(auto fd, open_ns(...));
#define NSENTRY_TRY BOOST_OUTCOME_TRY
