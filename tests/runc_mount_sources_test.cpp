// runc 1.1's MOUNT_SOURCES pieces: _LIBCONTAINER_MOUNT_FDS parsed strictly, sources paired with fd
// numbers (errors name the source), descriptors passed with SCM_RIGHTS, and stage-0's opening of
// the sources inside another process's mount namespace (privileged: unshare + setns).
#include <doctest/doctest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <string>
#include <vector>

#include "nsentry/runc/mount_sources.hpp"

using namespace nsentry;
using namespace nsentry::runc;

TEST_CASE("parse_mount_fds: a JSON array of -1 and descriptor numbers, nothing else") {
  CHECK(parse_mount_fds("[]").value().empty());
  CHECK(parse_mount_fds("[-1,5,-1,12]").value() == std::vector<int>{-1, 5, -1, 12});
  CHECK(parse_mount_fds(" [ 0 , 2147483647 ] ").value() == std::vector<int>{0, 2147483647});
  const std::pair<const char*, const char*> bad[] = {
      {"", "missing '['"},
      {"5", "missing '['"},
      {"[5", "missing ']'"},
      {"[5,", "not a number"},
      {"[,5]", "not a number"},
      {"[5 6]", "expected ',' or ']'"},
      {"[-2]", "out of range"},
      {"[2147483648]", "out of range"},
      {"[99999999999999999999]", "out of range"},
      {"[+5]", "not a number"},
      {"[05]", "leading zero"},
      {"[-]", "not a number"},
      {"[5]x", "text after ']'"},
      {"[5.0]", "expected ',' or ']'"},
  };
  for (auto [text, why] : bad) {
    CAPTURE(text);
    auto r = parse_mount_fds(text);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message().find("_LIBCONTAINER_MOUNT_FDS") != std::string::npos);
    CHECK(r.error().message().find(why) != std::string::npos);
  }
}

TEST_CASE("pair_mount_sources: every source has a number, every number a source, errors name it") {
  std::vector<std::string> src{"", "/a", "", "/b"};
  auto ok = pair_mount_sources(src, {-1, 7, -1, 9}, {3, 4});
  REQUIRE(ok.has_value());
  CHECK(ok.value().targets == std::vector<int>{7, 9});
  REQUIRE(ok.value().sources.size() == 2);
  CHECK(std::string(ok.value().sources[1]) == "/b");
  auto msg = [&](std::vector<int> fds) {
    auto r = pair_mount_sources(src, fds, {3, 4});
    REQUIRE_FALSE(r.has_value());
    return r.error().message();
  };
  CHECK(msg({-1, 7, -1}).find("3 fds for 4 mounts") != std::string::npos);
  CHECK(msg({-1, -1, -1, 9}).find("no fd for mount source /a") != std::string::npos);
  CHECK(msg({5, 7, -1, 9}).find("fd 5 for mount 0, which has no source") != std::string::npos);
  CHECK(msg({-1, 7, -1, 7}).find("fd 7 for mount source /b is used twice") != std::string::npos);
  CHECK(msg({-1, 4, -1, 9}).find("fd 4 for mount source /a is the init's own pipe") !=
        std::string::npos);
  CHECK(msg({-1, 1, -1, 9}).find("fd 1 for mount source /a is a standard stream") !=
        std::string::npos);
}

TEST_CASE(
    "open_mount_sources_in: opened in the target's mount namespace, then back; errors name the "
    "source") {
  // The target: a child in a new mount namespace where a tmpfs hides /mnt's host contents.
  int ready[2], go[2];
  REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(go, O_CLOEXEC) == 0);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(go[1]);  // else the read below never sees end of file
    char c = 0;
    bool ok = ::unshare(CLONE_NEWNS) == 0 &&
              ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
              ::mount("tmpfs", "/mnt", "tmpfs", 0, "mode=0755") == 0 &&
              ::mkdir("/mnt/only-inside", 0700) == 0;
    c = ok ? 'y' : 'n';
    if (::write(ready[1], &c, 1) != 1) ::_exit(2);
    if (::read(go[0], &c, 1) < 0) ::_exit(2);
    ::_exit(0);
  }
  ::close(ready[1]);
  ::close(go[0]);
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  REQUIRE(c == 'y');
  struct stat own_before {};
  REQUIRE(::stat("/proc/self/ns/mnt", &own_before) == 0);
  char cwd_before[4096];
  REQUIRE(::getcwd(cwd_before, sizeof cwd_before) != nullptr);

  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  unique_fd a(sv[0]), b(sv[1]);
  std::vector<std::string> src{"/mnt/only-inside"};
  auto m = pair_mount_sources(src, {7});
  REQUIRE(m.has_value());
  auto r = open_mount_sources_in(child, m.value(), a.get());
  CHECK_MESSAGE(r.has_value(), (r ? "" : r.error().message()));
  int got = receive_fd(b.get());
  CHECK(got >= 0);
  unique_fd g(got);
  CHECK(::access("/mnt/only-inside", F_OK) == -1);  // not on the host: it was opened inside
  struct stat own_after {};
  REQUIRE(::stat("/proc/self/ns/mnt", &own_after) == 0);
  CHECK(own_after.st_ino == own_before.st_ino);
  char cwd_after[4096];
  REQUIRE(::getcwd(cwd_after, sizeof cwd_after) != nullptr);
  CHECK(std::string(cwd_after) == cwd_before);

  std::vector<std::string> missing{"/mnt/not-there"};
  auto m2 = pair_mount_sources(missing, {7});
  REQUIRE(m2.has_value());
  auto r2 = open_mount_sources_in(child, m2.value(), a.get());
  REQUIRE_FALSE(r2.has_value());
  CHECK(r2.error().message().find("/mnt/not-there") != std::string::npos);
  REQUIRE(::stat("/proc/self/ns/mnt", &own_after) == 0);
  CHECK(own_after.st_ino == own_before.st_ino);

  ::close(go[1]);
  ::close(ready[0]);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
}
