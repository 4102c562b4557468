// Namespace kinds, traits and sets — checked against what the kernel reports.
#include "nsentry/ns.hpp"

#include <doctest/doctest.h>
#include <sched.h>
#include <sys/stat.h>

#include <atomic>
#include <thread>
#include <vector>

#include "nsentry/fd.hpp"
#include "tests/testing.hpp"

using namespace nsentry;

static_assert(net_ns::clone_flag == CLONE_NEWNET);
static_assert(user_ns::name == "user");
static_assert(!user_ns::thread_enterable && !time_ns::thread_enterable);
static_assert(mnt_ns::thread_enterable && mnt_ns::needs_unshared_fs);
static_assert(pid_ns::children_only && time_ns::children_only && !net_ns::children_only);
static_assert(ns_set::of<net_ns, uts_ns>() == ns_set{ns_kind::uts, ns_kind::net});
static_assert(ns_set{CLONE_NEWNET | CLONE_NEWNS}.contains(ns_kind::mnt));
static_assert(ns_set{CLONE_NEWNET | CLONE_NEWNS}.size() == 2);
static_assert(thread_ns_set<net_ns, mnt_ns>::needs_unshared_fs);
static_assert(!thread_ns_set<net_ns, ipc_ns>::needs_unshared_fs);
static_assert(namespace_type<cgroup_ns> && !namespace_type<int>);

TEST_CASE("every kind's /proc/self/ns entry exists and is a distinct namespace file") {
  for (ns_kind k : all_ns_kinds) {
    CAPTURE(name_of(k));
    std::string path = "/proc/self/ns/" + std::string(name_of(k));
    auto fd = open_file(path, O_RDONLY);
    REQUIRE_OK(fd);
    // NS_GET_NSTYPE (0xb703) returns the CLONE_NEW* flag of the namespace behind the fd.
    CHECK(::ioctl(fd.value().get(), 0xb703) == clone_flag_of(k));
  }
}

TEST_CASE("setns names the expected type: a net fd refused as uts with EINVAL") {
  auto fd = open_file("/proc/self/ns/net", O_RDONLY);
  REQUIRE_OK(fd);
  errno = 0;
  CHECK(sys::calls.setns(fd.value().get(), clone_flag_of(ns_kind::uts)) == -1);
  CHECK(errno == EINVAL);
}

TEST_CASE("the kernel refuses a new user namespace in a multi-threaded process") {
  // The rule behind thread_enterable(user): the kernel wants a single-threaded caller.
  std::atomic<bool> stop{false};
  std::thread t([&] {
    while (!stop) std::this_thread::yield();
  });
  errno = 0;
  int r = ::unshare(CLONE_NEWUSER);
  int err = errno;
  stop = true;
  t.join();
  CHECK(r == -1);
  CHECK(err == EINVAL);
  CHECK_FALSE(thread_enterable(ns_kind::user));
}

TEST_CASE("names and flags round-trip") {
  for (ns_kind k : all_ns_kinds) {
    CHECK(ns_kind_from_name(name_of(k)) == k);
    CHECK(ns_kind_from_flag(static_cast<unsigned>(clone_flag_of(k))) == k);
  }
  CHECK_FALSE(ns_kind_from_name("network").has_value());
  CHECK_FALSE(ns_kind_from_flag(CLONE_VM).has_value());
}

TEST_CASE("ns_set iterates in runc's join order and names its kinds") {
  ns_set s{ns_kind::time, ns_kind::net, ns_kind::user, ns_kind::mnt};
  std::vector<ns_kind> seen(s.begin(), s.end());
  CHECK(seen == std::vector<ns_kind>{ns_kind::user, ns_kind::net, ns_kind::mnt, ns_kind::time});
  CHECK(s.names() == "user,net,mnt,time");
  CHECK(ns_set{}.names().empty());
  CHECK((s - ns_set{ns_kind::user}).names() == "net,mnt,time");
  CHECK(not_thread_enterable(s) == ns_set{ns_kind::user, ns_kind::time});
  CHECK(children_only_kinds(s) == ns_set{ns_kind::time});
}

TEST_CASE("from_clone_flags accepts namespace bits and names stray ones") {
  auto ok = ns_set::from_clone_flags(0x7e020080);  // the spec's worked example: all 8 kinds
  REQUIRE_OK(ok);
  CHECK(ok.value().size() == 8);
  CHECK(ok.value().clone_flags() == 0x7e020080u);
  auto bad = ns_set::from_clone_flags(CLONE_NEWNET | CLONE_VM | CLONE_FILES);
  REQUIRE(bad.has_error());
  CHECK(bad.error() == errc::invalid_plan);
  CHECK(bad.error().message() == "clone_flags: non-namespace bits 0x500: invalid plan");
  auto high = ns_set::from_clone_flags(0x100000000ULL);
  REQUIRE(high.has_error());
  CHECK(high.error().detail == "non-namespace bits 0x100000000");
}
