// tools/common.hpp — what every nsentry subcommand shares: exit codes and the error line.
#pragma once

#include <cstdio>
#include <string_view>

#include "nsentry/error.hpp"

namespace nsentry::cli {

// Exit statuses. decode/encode: 0 or bad_input. enter/run/runc-init: the command's own status,
// or nsentry_failed / cannot_execute / not_found, as nsenter and container runtimes do.
inline constexpr int bad_input = 2;
inline constexpr int nsentry_failed = 125;
inline constexpr int cannot_execute = 126;
inline constexpr int not_found = 127;

// One line on stderr: "nsentry: <what>".
inline void report(std::string_view what) {
  std::fprintf(stderr, "nsentry: %.*s\n", static_cast<int>(what.size()), what.data());
}

inline void report(const error& e) { report(e.message()); }

}  // namespace nsentry::cli
