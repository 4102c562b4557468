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
// The mechanism is the library's (nsentry/mount_sources.hpp: pairing, open_mount_sources_in,
// the entry sequence's step 6b); what is runc's is here:
//  - `parse_mount_fds(text)`: the env value, strictly (a JSON array of integers, each -1 or a
//    descriptor number >= 0 that fits an int; nothing else);
//  - `pair_mount_sources(sources, fds, reserved)`: the message's MOUNT_SOURCES against that
//    list, errors naming `_LIBCONTAINER_MOUNT_FDS`, and no target on the init's own pipes.
// Contract: parse/pair allocate (stage-0 only).
#pragma once

#include <climits>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "nsentry/error.hpp"
#include "nsentry/mount_sources.hpp"

namespace nsentry::inline v0::runc {

inline constexpr const char* mount_fds_var = "_LIBCONTAINER_MOUNT_FDS";

// `_LIBCONTAINER_MOUNT_FDS`, strictly: `[` int (`,` int)* `]` or `[]`, JSON whitespace allowed
// between tokens; each int is -1 or in [0, INT_MAX]; no leading zeros, no `+`, nothing after.
inline result<std::vector<int>> parse_mount_fds(std::string_view text) {
  auto bad = [&](const char* why) {
    return nsentry_error(errc::invalid_plan, step::mount_fds, std::string(text) + ": " + why);
  };
  std::vector<int> out;
  std::size_t i = 0;
  auto skip_ws = [&] {
    while (i < text.size() &&
           (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
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

// Pairs the message's sources with the env's fd numbers (nsentry/mount_sources.hpp's rules,
// errors naming `_LIBCONTAINER_MOUNT_FDS`); `reserved` are numbers the init itself uses (init
// pipe, log pipe), which a target must not be.
inline result<mount_fd_targets> pair_mount_sources(const std::vector<std::string>& sources,
                                                   const std::vector<int>& fds,
                                                   std::initializer_list<int> reserved = {}) {
  NSENTRY_TRY(auto out, nsentry::pair_mount_sources(sources, fds, step::mount_fds));
  for (std::size_t i = 0; i < out.targets.size(); ++i)
    for (int r : reserved)
      if (out.targets[i] == r)
        return nsentry_error(errc::invalid_plan, step::mount_fds,
                             "fd " + std::to_string(r) + " for mount source " + out.sources[i] +
                                 " is the init's own pipe");
  return out;
}

}  // namespace nsentry::inline v0::runc
