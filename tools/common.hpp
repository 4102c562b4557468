// tools/common.hpp — what every nsentry subcommand shares: exit codes and the error line.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "nsentry/bootstrap.hpp"
#include "nsentry/error.hpp"
#include "nsentry/fd.hpp"

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

// The --runc option's value (checked by CLI11 to be 1.1 or 1.2).
inline runc_protocol protocol_of(const std::string& v) {
  return v == "1.1" ? runc_protocol::v1_1 : runc_protocol::v1_2;
}

// Reads all of FILE (or stdin for "-"), refusing more than `limit` bytes.
inline result<std::vector<std::byte>> read_input(const std::string& file, std::size_t limit) {
  unique_fd owned;
  int fd = STDIN_FILENO;
  if (file != "-") {
    NSENTRY_TRY(owned, open_file(file, O_RDONLY));
    fd = owned.get();
  }
  std::vector<std::byte> out;
  std::byte chunk[65536];
  for (;;) {
    auto n = read_some(fd, chunk);
    if (!n) return with_path(std::move(n).error(), file == "-" ? "stdin" : file);
    if (n.value() == 0) break;
    out.insert(out.end(), chunk, chunk + n.value());
    if (out.size() > limit)
      return nsentry_error(errc::usage, "read", (file == "-" ? "stdin" : file) +
                                                    " is over the limit of " +
                                                    std::to_string(limit) + " bytes");
  }
  return out;
}

}  // namespace nsentry::cli
