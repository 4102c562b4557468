// create_namespaces against the real kernel: each case in a forked child, asserting the inodes
// of /proc/self/ns; failures injected through sys::scoped_override; the multi-threaded refusal.
#include "nsentry/create.hpp"

#include <doctest/doctest.h>

#include <thread>

#include "tests/exec_test_util.hpp"

using namespace nsentry;
using namespace testutil;

namespace {}  // namespace

TEST_CASE("uts, ipc and net: the thread's namespaces change, the others do not") {
  int rc = in_child([] {
    ino_t uts = self_ns_ino("uts"), ipc = self_ns_ino("ipc"), net = self_ns_ino("net");
    ino_t mnt = self_ns_ino("mnt"), user = self_ns_ino("user"), pid = self_ns_ino("pid");
    EXPECT_C(uts && ipc && net && mnt && user && pid);
    auto r = create_namespaces({ns_kind::uts, ns_kind::ipc, ns_kind::net});
    if (!r) std::fprintf(stderr, "%s\n", r.error().message().c_str());
    EXPECT_C(r);
    EXPECT_C(self_ns_ino("uts") != uts);
    EXPECT_C(self_ns_ino("ipc") != ipc);
    EXPECT_C(self_ns_ino("net") != net);
    EXPECT_C(self_ns_ino("mnt") == mnt);
    EXPECT_C(self_ns_ino("user") == user);
    EXPECT_C(self_ns_ino("pid") == pid);
    return 0;
  });
  CHECK(rc == 0);
}

TEST_CASE("pid: only pid_for_children changes") {
  int rc = in_child([] {
    ino_t pid = self_ns_ino("pid"), for_children = self_ns_ino("pid_for_children");
    EXPECT_C(pid != 0 && pid == for_children);
    pid_t before = ::getpid();
    auto r = create_namespaces({ns_kind::pid});
    if (!r) std::fprintf(stderr, "%s\n", r.error().message().c_str());
    EXPECT_C(r);
    EXPECT_C(self_ns_ino("pid") == pid);
    EXPECT_C(::getpid() == before);
    // pid_for_children names the new namespace only once a child is in it.
    pid_t c = ::fork();
    EXPECT_C(c >= 0);
    if (c == 0) ::_exit(::getpid() == 1 ? 0 : 1);
    int st = 0;
    EXPECT_C(::waitpid(c, &st, 0) == c);
    EXPECT_C(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return 0;
  });
  CHECK(rc == 0);
}

TEST_CASE("pid: pid_for_children differs from pid while a child lives in it") {
  int rc = in_child([] {
    ino_t pid = self_ns_ino("pid");
    EXPECT_C(create_namespaces({ns_kind::pid}));
    int p[2];
    EXPECT_C(::pipe(p) == 0);
    pid_t c = ::fork();
    EXPECT_C(c >= 0);
    if (c == 0) {
      char b;
      ::close(p[1]);
      (void)!::read(p[0], &b, 1);
      ::_exit(0);
    }
    ::close(p[0]);
    ino_t for_children = self_ns_ino("pid_for_children");
    ino_t child_pid = ns_ino(c, "pid");
    ::close(p[1]);
    int st = 0;
    ::waitpid(c, &st, 0);
    EXPECT_C(for_children != 0 && for_children != pid);
    EXPECT_C(child_pid == for_children);
    EXPECT_C(self_ns_ino("pid") == pid);
    return 0;
  });
  CHECK(rc == 0);
}

TEST_CASE("a user namespace created alone") {
  int rc = in_child([] {
    ino_t user = self_ns_ino("user"), uts = self_ns_ino("uts"), net = self_ns_ino("net");
    auto r = create_namespaces({ns_kind::user});
    if (!r) std::fprintf(stderr, "%s\n", r.error().message().c_str());
    EXPECT_C(r);
    EXPECT_C(self_ns_ino("user") != user);
    EXPECT_C(self_ns_ino("uts") == uts);
    EXPECT_C(self_ns_ino("net") == net);
    // Nobody is mapped yet: the kernel shows the overflow id.
    EXPECT_C(::getuid() == 65534);
    EXPECT_C(testutil::slurp("/proc/self/uid_map").empty());
    return 0;
  });
  CHECK(rc == 0);
}

TEST_CASE("user and others: the user namespace owns the others") {
  int rc = in_child([] {
    ino_t user = self_ns_ino("user"), uts = self_ns_ino("uts");
    EXPECT_C(create_namespaces({ns_kind::user, ns_kind::uts}));
    EXPECT_C(self_ns_ino("user") != user);
    EXPECT_C(self_ns_ino("uts") != uts);
    return 0;
  });
  CHECK(rc == 0);
}

TEST_CASE("an unshare failure names step::unshare with context \"create\"") {
  sys::scoped_override o{&sys::table::unshare, [](int) {
                           errno = EPERM;
                           return -1;
                         }};
  ino_t uts = self_ns_ino("uts");
  SUBCASE("one kind: the error names it") {
    auto r = create_namespaces({ns_kind::uts});
    CHECK_ERROR(r, std::errc::operation_not_permitted, step::unshare);
    CHECK(r.error().kind == ns_kind::uts);
    REQUIRE(!r);
    CHECK(r.error().context == "create");
    CHECK(r.error().message().find("create") != std::string::npos);
  }
  SUBCASE("several kinds: the detail lists them") {
    auto r = create_namespaces({ns_kind::uts, ns_kind::ipc});
    CHECK_ERROR(r, std::errc::operation_not_permitted, step::unshare);
    REQUIRE(!r);
    CHECK(r.error().context == "create");
    CHECK(!r.error().kind);
    CHECK(r.error().detail.find("uts") != std::string::npos);
    CHECK(r.error().detail.find("ipc") != std::string::npos);
  }
  SUBCASE("the user namespace step") {
    auto r = create_namespaces({ns_kind::user, ns_kind::uts});
    CHECK_ERROR(r, std::errc::operation_not_permitted, step::unshare);
    CHECK(r.error().kind == ns_kind::user);
    REQUIRE(!r);
    CHECK(r.error().context == "create");
  }
  CHECK(self_ns_ino("uts") == uts);
}

TEST_CASE("the second unshare failing after the user namespace was made") {
  int rc = in_child([] {
    static int calls = 0;
    sys::scoped_override o{&sys::table::unshare, [](int flags) {
                             if (++calls == 1) return ::unshare(flags);
                             errno = ENOSPC;
                             return -1;
                           }};
    auto r = create_namespaces({ns_kind::user, ns_kind::net});
    EXPECT_C(!r);
    EXPECT_C(r.error() == std::errc::no_space_on_device);
    EXPECT_C(r.error().step == step::unshare);
    EXPECT_C(r.error().kind == ns_kind::net);
    EXPECT_C(r.error().context == "create");
    EXPECT_C(calls == 2);
    return 0;
  });
  CHECK(rc == 0);
}

TEST_CASE("a multi-threaded caller asking for user: errc::multi_threaded, nothing changed") {
  int rc = in_child([] {
    int p[2];
    EXPECT_C(::pipe(p) == 0);
    std::thread t([fd = p[0]] {
      char b;
      (void)!::read(fd, &b, 1);
    });
    ino_t user = self_ns_ino("user"), uts = self_ns_ino("uts");
    auto r = create_namespaces({ns_kind::user, ns_kind::uts});
    ::close(p[1]);
    t.join();
    ::close(p[0]);
    if (r) std::fprintf(stderr, "create_namespaces succeeded\n");
    EXPECT_C(!r);
    EXPECT_C(r.error() == errc::multi_threaded);
    EXPECT_C(r.error().step == step::create);
    EXPECT_C(r.error().detail.find("user") != std::string::npos);
    EXPECT_C(self_ns_ino("user") == user);
    EXPECT_C(self_ns_ino("uts") == uts);
    return 0;
  });
  CHECK(rc == 0);
}

TEST_CASE("a multi-threaded caller may create uts") {
  int rc = in_child([] {
    int p[2];
    EXPECT_C(::pipe(p) == 0);
    std::thread t([fd = p[0]] {
      char b;
      (void)!::read(fd, &b, 1);
    });
    ino_t uts = self_ns_ino("uts");
    auto r = create_namespaces({ns_kind::uts});
    ::close(p[1]);
    t.join();
    ::close(p[0]);
    EXPECT_C(r);
    EXPECT_C(self_ns_ino("uts") != uts);
    return 0;
  });
  CHECK(rc == 0);
}
