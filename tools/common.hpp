// tools/common.hpp — what every nsentry subcommand shares: exit codes, the one error renderer,
// reading an input file, and --trace. Library logic does not live here.
#pragma once

#include <cstddef>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "nsentry/bootstrap.hpp"
#include "nsentry/error.hpp"
#include "nsentry/exec_spec.hpp"
#include "nsentry/fd.hpp"
#include "nsentry/trace.hpp"
#include "tools/args.hpp"

namespace nsentry::cli {

// Exit statuses. decode/encode: 0 or bad_input. enter/run: the command's own status, or
// the library's exit_runner_failed / exit_cannot_execute / exit_not_found (exec_spec.hpp).
// runc-init: 1 on any failure of the init, as runc's.
inline constexpr int bad_input = 2;
inline constexpr int nsentry_failed = exit_runner_failed;
inline constexpr int runc_init_failed = 1;

// The one renderer: one line on stderr, "nsentry: <what>".
inline void report(std::string_view what) {
  std::fprintf(stderr, "nsentry: %.*s\n", static_cast<int>(what.size()), what.data());
}

inline void report(const error& e) { report(e.message()); }

// Reports `e` and returns the exit status the subcommand chose for it.
inline int fail(const error& e, int status) {
  report(e);
  return status;
}
inline int fail(std::string_view what, int status) {
  report(what);
  return status;
}

// --help: the command's help on stdout, exit 0.
inline int print_help(const command& c) {
  std::string h = c.help();
  std::fwrite(h.data(), 1, h.size(), stdout);
  return 0;
}

// The --runc option's value (checked by the parser to be 1.1 or 1.2).
inline runc_protocol protocol_of(const std::string& v) {
  return runc_protocol_from_name(v).value_or(runc_protocol::v1_2);
}

// FILE, or stdin for "-", up to the codec's size limit.
inline result<std::string> read_input(const std::string& file) {
  return read_file(file, bootstrap::default_max_size);
}

inline std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// --trace[=FILE]: a table on stderr, or JSON lines to FILE.
struct trace_request {
  std::string file;  // "": no trace; "-": table on stderr; else JSON lines to this file

  result<std::optional<step_trace>> make() const {
    if (file.empty()) return std::optional<step_trace>{};
    NSENTRY_TRY(auto t, step_trace::make());
    return std::optional<step_trace>{std::move(t)};
  }
  void report(const std::optional<step_trace>& t) const {
    if (!t) return;
    if (file == "-") {
      std::fputs(t->table().c_str(), stderr);
      return;
    }
    if (FILE* f = std::fopen(file.c_str(), "w")) {
      std::fputs(t->json_lines().c_str(), f);
      std::fclose(f);
    } else {
      cli::report(posix_error(step::open, file));
    }
  }
};

// --trace (a table on stderr) or --trace=FILE (JSON lines to FILE).
inline option trace_option(trace_request& t) {
  return {0, "trace", "[=FILE]", "per-step latency: a table on stderr, or JSON lines to FILE",
          [&t](std::string_view v) -> std::optional<std::string> {
            t.file = v.empty() ? "-" : std::string(v);
            return std::nullopt;
          }};
}

}  // namespace nsentry::cli
