// tools/common.hpp — what every nsentry subcommand shares: exit codes, the one error renderer,
// and reading an input file. Library logic does not live here.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>

#include "nsentry/bootstrap.hpp"
#include "nsentry/error.hpp"
#include "nsentry/exec_spec.hpp"
#include "nsentry/fd.hpp"
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

}  // namespace nsentry::cli
