// Scoped entry against the real kernel, each case in its own forked process: the thread enters,
// and comes back on scope exit, on exception, and after a failed entry; run-time sets with user
// or time are refused; a failed restore is reported, and aborts from the destructor.
#include "nsentry/scoped_entry.hpp"

#include <doctest/doctest.h>

#include <future>
#include <stdexcept>
#include <thread>

#include "tests/exec_test_util.hpp"

using namespace nsentry;
using namespace testutil;

namespace {

std::vector<std::string> target_flags() {
  return {"--pid", "--mount-proc", "--net", "--uts", "--ipc"};
}

}  // namespace

TEST_CASE("enter_scoped<net_ns, uts_ns>(pid): in, then back on scope exit") {
  target t(target_flags());
  int rc = in_child([&] {
    ino_t net = thread_ns_ino("net"), uts = thread_ns_ino("uts"), ipc = thread_ns_ino("ipc");
    int fds = count_fds();
    {
      auto g = enter_scoped<net_ns, uts_ns>(t.pid());
      EXPECT_C(g);
      EXPECT_C(g.value().kinds() == (ns_set{ns_kind::net, ns_kind::uts}));
      EXPECT_C(thread_ns_ino("net") == t.ino(ns_kind::net));
      EXPECT_C(thread_ns_ino("uts") == t.ino(ns_kind::uts));
      EXPECT_C(thread_ns_ino("ipc") == ipc);  // not asked for
    }
    EXPECT_C(thread_ns_ino("net") == net);
    EXPECT_C(thread_ns_ino("uts") == uts);
    EXPECT_C(count_fds() == fds);
    return 0;
  });
  CHECK(rc == 0);
}

TEST_CASE(
    "enter_scoped: back on exception; explicit restore(); by path; other threads unaffected") {
  target t(target_flags());
  int rc = in_child([&] {
    ino_t net = thread_ns_ino("net");
    try {
      auto g = enter_scoped<net_ns>(t.pid());
      EXPECT_C(g);
      EXPECT_C(thread_ns_ino("net") == t.ino(ns_kind::net));
      throw std::runtime_error("boom");
    } catch (const std::runtime_error&) {
    }
    EXPECT_C(thread_ns_ino("net") == net);

    // A thread that already exists stays where it is. (One created *inside* the scope starts
    // in the entered namespaces: the kernel copies its creator's.)
    std::promise<void> go;
    std::future<ino_t> other = std::async(std::launch::async, [f = go.get_future()]() mutable {
      f.wait();
      return thread_ns_ino("ipc");
    });
    std::vector<ns_join> paths{{ns_kind::ipc, proc_ns_path(t.pid(), ns_kind::ipc)}};
    auto g = enter_scoped<ipc_ns>(paths);
    EXPECT_C(g);
    EXPECT_C(thread_ns_ino("ipc") == t.ino(ns_kind::ipc));
    go.set_value();
    EXPECT_C(other.get() != t.ino(ns_kind::ipc));
    EXPECT_C(g.value().restore());
    EXPECT_C(!g.value().active());
    EXPECT_C(thread_ns_ino("ipc") != t.ino(ns_kind::ipc));
    EXPECT_C(g.value().restore());  // idempotent

    auto wrong = enter_scoped<net_ns>(paths);  // paths for ipc, not net
    EXPECT_C(!wrong);
    EXPECT_C(wrong.error() == errc::invalid_argument);
    return 0;
  });
  CHECK(rc == 0);
}

TEST_CASE("enter_scoped<mnt_ns>: works from a multi-threaded process; cwd comes back") {
  target t(target_flags());
  int rc = in_child([&] {
    EXPECT_C(::chdir("/tmp") == 0);
    ino_t mnt = thread_ns_ino("mnt");
    self_ns self;  // /proc/self is the main thread: this one
    std::thread idle([] { std::this_thread::sleep_for(std::chrono::milliseconds(200)); });
    {
      auto g = enter_scoped<mnt_ns, net_ns>(t.pid());
      if (!g) std::fprintf(stderr, "%s\n", g.error().message().c_str());
      EXPECT_C(g);
      EXPECT_C(self.ino("mnt") == t.ino(ns_kind::mnt));
      EXPECT_C(self.ino("net") == t.ino(ns_kind::net));
    }
    idle.join();
    EXPECT_C(thread_ns_ino("mnt") == mnt);
    char cwd[256] = {};
    EXPECT_C(::getcwd(cwd, sizeof cwd) != nullptr);
    EXPECT_C(std::string(cwd) == "/tmp");
    return 0;
  });
  CHECK(rc == 0);
}

TEST_CASE("run-time sets: user and time refused; failed entries roll back and leak nothing") {
  target t(target_flags());
  int rc = in_child([&] {
    int fds = count_fds();
    ino_t net = thread_ns_ino("net"), uts = thread_ns_ino("uts");
    auto u = enter_scoped(ns_set{ns_kind::net, ns_kind::user}, t.pid());
    EXPECT_C(!u);
    EXPECT_C(u.error() == errc::invalid_argument);
    EXPECT_C(u.error().detail == "user cannot be entered by one thread of a process");
    auto tm = enter_scoped(ns_set{ns_kind::time}, t.pid());
    EXPECT_C(!tm);
    EXPECT_C(tm.error() == errc::invalid_argument);
    EXPECT_C(!enter_scoped(ns_set{}, t.pid()));

    auto nopid = enter_scoped(ns_set{ns_kind::net}, 999999999);
    EXPECT_C(!nopid);
    EXPECT_C(nopid.error() == std::errc::no_such_process);

    {
      // uts goes in, the target's net is refused: the thread must be back in its own uts.
      static ino_t refused = 0;
      refused = t.ino(ns_kind::net);
      sys::scoped_override o{&sys::table::setns, [](int fd, int type) {
                               struct stat st {};
                               if (::fstat(fd, &st) == 0 && st.st_ino == refused) {
                                 errno = EPERM;
                                 return -1;
                               }
                               return sys::real_calls.setns(fd, type);
                             }};
      std::vector<ns_join> paths{{ns_kind::uts, proc_ns_path(t.pid(), ns_kind::uts)},
                                 {ns_kind::net, proc_ns_path(t.pid(), ns_kind::net)}};
      auto half = enter_scoped(paths);
      EXPECT_C(!half);
      EXPECT_C(half.error() == std::errc::operation_not_permitted);
      EXPECT_C(half.error().kind == ns_kind::net);
    }
    EXPECT_C(thread_ns_ino("uts") == uts);
    EXPECT_C(thread_ns_ino("net") == net);
    EXPECT_C(count_fds() == fds);
    return 0;
  });
  CHECK(rc == 0);
}

TEST_CASE("a failed restore is reported by restore() and aborts from the destructor") {
  target t(target_flags());
  int rc = in_child([&] {
    auto g = enter_scoped<uts_ns>(t.pid());
    EXPECT_C(g);
    {
      sys::scoped_override o{&sys::table::setns, [](int, int) {
                               errno = ENOMEM;
                               return -1;
                             }};
      auto r = g.value().restore();
      EXPECT_C(!r);
      EXPECT_C(r.error() == errc::restore_failed);
      EXPECT_C(r.error().kind == ns_kind::uts);
      EXPECT_C(r.error().errno_value() == ENOMEM);  // the cause keeps it
      EXPECT_C(r.error().cause && r.error().cause->step == step::setns);
      EXPECT_C(g.value().active());  // still owes a restore
    }
    EXPECT_C(g.value().restore());
    return 0;
  });
  CHECK(rc == 0);
  int aborted = in_child([&] {
    ::signal(SIGABRT, SIG_DFL);  // not doctest's crash handler: the parent checks the signal
    static bool fail = false;
    sys::scoped_override o{&sys::table::setns, [](int fd, int type) {
                             if (fail) {
                               errno = ENOMEM;
                               return -1;
                             }
                             return sys::real_calls.setns(fd, type);
                           }};
    auto g = enter_scoped<uts_ns>(t.pid());
    EXPECT_C(g);
    fail = true;
    return 0;  // g's destructor runs here, with setns failing
  });
  CHECK(aborted == 1000 + SIGABRT);
}

TEST_CASE("ns_home: many entries on held fds, each one setns in and one out") {
  target t(target_flags());
  int rc = in_child([&] {
    int fds = count_fds();
    ino_t net = thread_ns_ino("net"), uts = thread_ns_ino("uts");
    {
      auto home = ns_home::open(ns_set::of<net_ns, uts_ns>());
      EXPECT_C(home);
      std::vector<ns_join> paths{{ns_kind::net, proc_ns_path(t.pid(), ns_kind::net)},
                                 {ns_kind::uts, proc_ns_path(t.pid(), ns_kind::uts)}};
      auto target_fds = opened_namespaces::open(paths);
      EXPECT_C(target_fds);
      static int setns_calls = 0;
      sys::scoped_override o{&sys::table::setns, [](int fd, int type) {
                               ++setns_calls;
                               return sys::real_calls.setns(fd, type);
                             }};
      for (int i = 0; i < 1000; ++i) {
        setns_calls = 0;
        {
          auto g = home.value().enter(target_fds.value());
          EXPECT_C(g);
          EXPECT_C(thread_ns_ino("net") == t.ino(ns_kind::net));
          EXPECT_C(thread_ns_ino("uts") == t.ino(ns_kind::uts));
        }
        EXPECT_C(thread_ns_ino("net") == net);
        EXPECT_C(thread_ns_ino("uts") == uts);
        EXPECT_C(setns_calls == 4);  // two in, two out: nothing else
      }
      // A kind the home did not open, and an entry that fails half way, rolled back.
      std::vector<ns_join> ipc{{ns_kind::ipc, proc_ns_path(t.pid(), ns_kind::ipc)}};
      auto other = opened_namespaces::open(ipc);
      EXPECT_C(other);
      auto wrong = home.value().enter(other.value());
      EXPECT_C(!wrong);
      EXPECT_C(wrong.error() == errc::invalid_argument);
      {
        sys::scoped_override refuse{&sys::table::setns, [](int fd, int type) {
                                      if (type == CLONE_NEWUTS && setns_calls++ == 0) {
                                        errno = EPERM;
                                        return -1;
                                      }
                                      return sys::real_calls.setns(fd, type);
                                    }};
        setns_calls = 0;
        auto half = home.value().enter(target_fds.value());
        EXPECT_C(!half);
        EXPECT_C(half.error() == std::errc::operation_not_permitted);
        EXPECT_C(half.error().kind == ns_kind::uts);
      }
      EXPECT_C(thread_ns_ino("net") == net);
      EXPECT_C(thread_ns_ino("uts") == uts);
      // Another thread may not use this home.
      bool refused = false;
      std::thread other_thread([&] {
        auto g = home.value().enter(target_fds.value());
        refused = !g && g.error() == errc::invalid_argument;
      });
      other_thread.join();
      EXPECT_C(refused);
    }
    EXPECT_C(count_fds() == fds);
    return 0;
  });
  CHECK(rc == 0);
}
