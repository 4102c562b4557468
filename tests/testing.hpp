// tests/testing.hpp — matchers every test uses: a failing check on a result prints the error's
// message (what failed, on what, why), not just "false".
//
//   REQUIRE_OK(r);                                   // r holds a value; else prints r's error
//   CHECK_ERROR(r, std::errc::permission_denied, step::setns);
//   CHECK_ERROR_KIND(r, errc::not_joined, step::verify, ns_kind::net);
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <string>

#include "nsentry/error.hpp"

namespace testing {

// "ok", or the error's message (for a result); "empty" for anything else that tests false.
template <class R>
std::string describe(const R& r) {
  if (r) return "ok";
  if constexpr (requires { r.error().message(); })
    return r.error().message();
  else
    return "empty";
}

template <class R, class Code>
bool is_error(const R& r, Code code, nsentry::step s) {
  return !r && r.error() == code && r.error().step == s;
}

// Open descriptors, probed with fcntl so that it works in any mount namespace (a joined one
// may have a /proc where we are not visible).
inline int count_fds() {
  int n = 0;
  for (int fd = 0; fd < 4096; ++fd) n += ::fcntl(fd, F_GETFD) != -1;
  return n;
}

// A whole file, bytes as they are ("" when it cannot be read).
inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// The one way tests read a namespace's identity: the inode of a /proc ns entry (0 if none).
inline ino_t ns_ino(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_ino;
}
inline ino_t ns_ino(pid_t pid, const char* entry) {
  return ns_ino("/proc/" + std::to_string(pid) + "/ns/" + entry);
}
inline ino_t self_ns_ino(const char* entry) {
  return ns_ino(std::string("/proc/self/ns/") + entry);
}
inline ino_t thread_ns_ino(const char* entry) {
  return ns_ino(std::string("/proc/thread-self/ns/") + entry);
}

// What a command run by a test printed and how it ended.
struct run_result {
  int status = -1;
  std::string out, err;
};

}  // namespace testing

#define REQUIRE_OK(r) REQUIRE_MESSAGE(static_cast<bool>(r), ::testing::describe(r))
#define CHECK_OK(r) CHECK_MESSAGE(static_cast<bool>(r), ::testing::describe(r))
#define CHECK_ERROR(r, code, s) \
  CHECK_MESSAGE(::testing::is_error((r), (code), (s)), ::testing::describe(r))
#define CHECK_ERROR_KIND(r, code, s, k)                                             \
  CHECK_MESSAGE((::testing::is_error((r), (code), (s)) && (r).error().kind == (k)), \
                ::testing::describe(r))
