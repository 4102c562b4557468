// nsentry/version.hpp — the library's version: the one place it is written. CMake reads the
// three NSENTRY_VERSION_* lines below (CMakeLists.txt), `nsentry --version` prints
// version_string, and #if NSENTRY_VERSION >= 200 (0.2.0) tests it in the preprocessor.
// Contract: constexpr data only; no syscalls; async-signal-safe.
#pragma once

#include <string_view>

#define NSENTRY_VERSION_MAJOR 0
#define NSENTRY_VERSION_MINOR 2
#define NSENTRY_VERSION_PATCH 0

#define NSENTRY_VERSION \
  (NSENTRY_VERSION_MAJOR * 10000 + NSENTRY_VERSION_MINOR * 100 + NSENTRY_VERSION_PATCH)

#define NSENTRY_DETAIL_STRINGIZE2(x) #x
#define NSENTRY_DETAIL_STRINGIZE(x) NSENTRY_DETAIL_STRINGIZE2(x)
#define NSENTRY_VERSION_STRING                                                      \
  NSENTRY_DETAIL_STRINGIZE(NSENTRY_VERSION_MAJOR)                                   \
  "." NSENTRY_DETAIL_STRINGIZE(NSENTRY_VERSION_MINOR) "." NSENTRY_DETAIL_STRINGIZE( \
      NSENTRY_VERSION_PATCH)

namespace nsentry::inline v0 {

inline constexpr int version_major = NSENTRY_VERSION_MAJOR;
inline constexpr int version_minor = NSENTRY_VERSION_MINOR;
inline constexpr int version_patch = NSENTRY_VERSION_PATCH;
inline constexpr std::string_view version_string = NSENTRY_VERSION_STRING;  // "0.2.0"

}  // namespace nsentry::inline v0
