// nsentry/probe.hpp — cached probes of what the running kernel offers.
//
// Each probe asks the kernel once (through sys::calls, so tests can inject ENOSYS/EINVAL; the
// one release-number probe, exec_enters_time_namespace, reads uname(2) instead) and
// caches the answer in an atomic: thread-safe, lock-free, async-signal-safe to *read* once
// probed. `reset_probe_cache()` is for tests that inject a different answer.
//
// A probe never changes the caller: no setns, no unshare, no credential change. (There is no
// probe for setns(pidfd): a pidfd names the *process*, so re-entering "our own" namespace
// through it moves a non-main thread into the main thread's; join_pid takes the real call's
// EINVAL as the answer instead.)
#pragma once

#include <sys/utsname.h>

#include <atomic>
#include <charconv>
#include <cstring>
#include <string_view>

#include "nsentry/fd.hpp"
#include "nsentry/sys.hpp"

namespace nsentry::inline v0 {

enum class feature : int {
  clone3,             // Linux >= 5.3
  pidfd_open,         // Linux >= 5.3
  time_namespace,     // Linux >= 5.6
  clone_into_cgroup,  // Linux >= 5.7 (clone_args v2); assumed with clone3 on a cgroup v2 host
  // Linux >= 6.0: execve moves a task into its time_for_children namespace even when it shares
  // its parent's memory (CLONE_VM). Before that a vfork-style child of a process that entered a
  // time namespace exec'd in the old one. Not observable without a time namespace to enter, so
  // this one reads the kernel's release (uname) instead of calling the feature.
  exec_enters_time_namespace,
};

// "6.1.0-18-amd64" -> true for >= major.minor; false when the release does not parse.
constexpr bool release_at_least(std::string_view release, int major, int minor) noexcept {
  int parts[2] = {0, 0};
  const char* p = release.data();
  const char* end = p + release.size();
  for (int i = 0; i < 2; ++i) {
    auto [next, ec] = std::from_chars(p, end, parts[i]);
    if (ec != std::errc{}) return false;
    p = next;
    if (i == 0) {
      if (p == end || *p != '.') return false;
      ++p;
    }
  }
  return parts[0] != major ? parts[0] > major : parts[1] >= minor;
}

namespace detail {
inline constexpr int feature_count = 5;
inline std::atomic<signed char> probe_cache[feature_count] = {};  // 0 unknown, 1 yes, -1 no

inline bool probe_uncached(feature f) noexcept {
  switch (f) {
    case feature::clone3:
    case feature::clone_into_cgroup: {
      // A zero-sized clone_args is EINVAL where clone3 exists and ENOSYS where it does not.
      errno = 0;
      long r = sys::calls.clone3(nullptr, 0);
      return r == -1 && errno != ENOSYS;
    }
    case feature::pidfd_open: {
      int fd = sys::calls.pidfd_open(::getpid(), 0);
      if (fd < 0) return false;
      sys::calls.close(fd);
      return true;
    }
    case feature::time_namespace: {
      int fd = sys::calls.openat(AT_FDCWD, "/proc/self/ns/time", O_RDONLY | O_CLOEXEC, 0);
      if (fd < 0) return false;
      sys::calls.close(fd);
      return true;
    }
    case feature::exec_enters_time_namespace: {
      struct utsname u;
      if (::uname(&u) != 0) return false;
      return release_at_least({u.release, ::strnlen(u.release, sizeof u.release)}, 6, 0);
    }
  }
  return false;
}
}  // namespace detail

// Cached: the first call for a feature probes, later calls read the cache.
inline bool kernel_has(feature f) noexcept {
  auto& slot = detail::probe_cache[static_cast<int>(f)];
  signed char v = slot.load(std::memory_order_relaxed);
  if (v == 0) {
    v = detail::probe_uncached(f) ? 1 : -1;
    slot.store(v, std::memory_order_relaxed);
  }
  return v > 0;
}

inline void reset_probe_cache() noexcept {
  for (auto& slot : detail::probe_cache) slot.store(0, std::memory_order_relaxed);
}

}  // namespace nsentry::inline v0
