// The syscall indirection and the kernel feature probes.
#include "nsentry/sys.hpp"

#include <doctest/doctest.h>
#include <sys/utsname.h>

#include <cstdio>

#include "nsentry/probe.hpp"

using namespace nsentry;

TEST_CASE("scoped_override replaces one entry and restores it") {
  auto before = sys::calls.setns;
  {
    sys::scoped_override o{&sys::table::setns, [](int, int) {
                             errno = ENOMEM;
                             return -1;
                           }};
    CHECK((sys::calls.setns != before));
    errno = 0;
    CHECK(sys::calls.setns(0, 0) == -1);
    CHECK(errno == ENOMEM);
  }
  CHECK((sys::calls.setns == before));
}

TEST_CASE("probes agree with the running kernel") {
  reset_probe_cache();
  utsname u{};
  REQUIRE(::uname(&u) == 0);
  int major = 0, minor = 0;
  REQUIRE(std::sscanf(u.release, "%d.%d", &major, &minor) == 2);
  int version = major * 100 + minor;
  CAPTURE(u.release);
  CHECK(kernel_has(feature::clone3) == (version >= 503));
  CHECK(kernel_has(feature::pidfd_open) == (version >= 503));
  CHECK(kernel_has(feature::time_namespace) == (version >= 506));
  CHECK(kernel_has(feature::exec_enters_time_namespace) == (version >= 600));
}

TEST_CASE("release_at_least reads major.minor and refuses what does not parse") {
  CHECK(release_at_least("6.0.0", 6, 0));
  CHECK(release_at_least("6.18.0-nsentry", 6, 0));
  CHECK(release_at_least("10.1", 6, 0));
  CHECK_FALSE(release_at_least("5.19.17-amd64", 6, 0));
  CHECK_FALSE(release_at_least("5.99", 6, 0));
  CHECK(release_at_least("5.12.0", 5, 12));
  CHECK_FALSE(release_at_least("5.4.0", 5, 12));
  CHECK_FALSE(release_at_least("", 6, 0));
  CHECK_FALSE(release_at_least("6", 6, 0));
  CHECK_FALSE(release_at_least("6.", 6, 0));
  CHECK_FALSE(release_at_least("x.y", 6, 0));
}

TEST_CASE("injected ENOSYS turns a probe off; the answer is cached") {
  reset_probe_cache();
  {
    sys::scoped_override o{&sys::table::clone3, [](sys::clone_args*, size_t) -> long {
                             errno = ENOSYS;
                             return -1;
                           }};
    sys::scoped_override p{&sys::table::pidfd_open, [](pid_t, unsigned) {
                             errno = ENOSYS;
                             return -1;
                           }};
    CHECK_FALSE(kernel_has(feature::clone3));
    CHECK_FALSE(kernel_has(feature::pidfd_open));
  }
  CHECK_FALSE(kernel_has(feature::clone3));  // cached
  reset_probe_cache();
  CHECK(kernel_has(feature::clone3));
}

TEST_CASE("no probe changes the caller: none calls setns or unshare") {
  reset_probe_cache();
  static int calls = 0;
  sys::scoped_override o{&sys::table::setns, [](int, int) {
                           ++calls;
                           errno = EINVAL;
                           return -1;
                         }};
  sys::scoped_override u{&sys::table::unshare, [](int) {
                           ++calls;
                           errno = EINVAL;
                           return -1;
                         }};
  for (int i = 0; i < detail::feature_count; ++i) (void)kernel_has(static_cast<feature>(i));
  CHECK(calls == 0);
  reset_probe_cache();
}
