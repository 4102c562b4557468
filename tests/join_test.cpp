// Joining namespaces against the real kernel, each case in its own forked process: by pid (the
// setns-with-pidfd fast path and the per-fd fallback), by path, by fd; the errors; and the CLI
// `nsentry enter` compared with util-linux nsenter on the same target.
#include "nsentry/join.hpp"

#include <doctest/doctest.h>

#include "nsentry/executor.hpp"
#include "nsentry/probe.hpp"
#include "tests/exec_test_util.hpp"

using namespace nsentry;
using namespace testutil;

namespace {

constexpr ns_set target_kinds{ns_kind::ipc, ns_kind::uts, ns_kind::net, ns_kind::pid, ns_kind::mnt};

std::vector<std::string> target_flags() {
  return {"--pid", "--mount-proc", "--net", "--uts", "--ipc"};
}

// In the calling (child) process: is every kind of `kinds` the target's? `self` must be opened
// before joining.
bool joined_all(const self_ns& self, const target& t, ns_set kinds) {
  for (ns_kind k : kinds) {
    std::string entry = k == ns_kind::pid ? "pid_for_children" : std::string(name_of(k));
    if (self.ino(entry.c_str()) != t.ino(k)) {
      std::fprintf(stderr, "%s: %lu, target %lu\n", entry.c_str(),
                   static_cast<unsigned long>(self.ino(entry.c_str())),
                   static_cast<unsigned long>(t.ino(k)));
      return false;
    }
  }
  return true;
}

int setns_calls = 0;
int setns_counting(int fd, int type) {
  ++setns_calls;
  return sys::real_calls.setns(fd, type);
}

bool is_pidfd(int fd) {
  char link[64] = {};
  auto path = "/proc/self/fd/" + std::to_string(fd);
  if (::readlink(path.c_str(), link, sizeof link - 1) < 0) return false;
  return std::string(link) == "anon_inode:[pidfd]";
}

}  // namespace

TEST_CASE("join_pid: one setns(pidfd) joins every requested namespace") {
  target t(target_flags());
  int rc = in_child([&] {
    self_ns self;
    sys::scoped_override o{&sys::table::setns, &setns_counting};
    setns_calls = 0;
    auto r = join_pid(t.pid(), target_kinds);
    if (!r) std::fprintf(stderr, "%s\n", r.error().message().c_str());
    EXPECT_C(r);
    EXPECT_C(setns_calls == 1);
    EXPECT_C(joined_all(self, t, target_kinds));
    return 0;
  });
  CHECK(rc == 0);
}

TEST_CASE("join_pid: per-fd fallback when setns(pidfd) says EINVAL (Linux < 5.8)") {
  target t(target_flags());
  int rc = in_child([&] {
    self_ns self;
    // A kernel without pidfd setns: EINVAL for a pidfd (several flags at once), fine per file.
    static int pidfd_calls = 0;
    pidfd_calls = 0;
    sys::scoped_override o{&sys::table::setns, [](int fd, int type) {
                             if (__builtin_popcount(static_cast<unsigned>(type)) > 1) {
                               ++pidfd_calls;
                               errno = EINVAL;
                               return -1;
                             }
                             return setns_counting(fd, type);
                           }};
    setns_calls = 0;
    int fds = count_fds();
    auto r = join_pid(t.pid(), target_kinds);
    EXPECT_C(r);
    EXPECT_C(pidfd_calls == 1);
    EXPECT_C(setns_calls == 5);
    EXPECT_C(joined_all(self, t, target_kinds));
    EXPECT_C(count_fds() == fds);
    return 0;
  });
  CHECK(rc == 0);
}

TEST_CASE("join_pid: per-fd fallback when setns(pidfd) itself says EINVAL, and without pidfds") {
  target t(target_flags());
  int rc = in_child([&] {
    self_ns self;
    sys::scoped_override o{&sys::table::setns, [](int fd, int type) {
                             if (is_pidfd(fd)) {
                               errno = EINVAL;
                               return -1;
                             }
                             return sys::real_calls.setns(fd, type);
                           }};
    auto r = join_pid(t.pid(), ns_set{ns_kind::net, ns_kind::uts});
    EXPECT_C(r);
    EXPECT_C(joined_all(self, t, ns_set{ns_kind::net, ns_kind::uts}));
    return 0;
  });
  CHECK(rc == 0);
  rc = in_child([&] {
    self_ns self;
    sys::scoped_override o{&sys::table::pidfd_open, [](pid_t, unsigned) {
                             errno = ENOSYS;
                             return -1;
                           }};
    auto r = join_pid(t.pid(), target_kinds);
    EXPECT_C(r);
    EXPECT_C(joined_all(self, t, target_kinds));
    return 0;
  });
  CHECK(rc == 0);
}

namespace {
int self_dir_opens = 0;
int opens_at_first_file_join = -1;  // self_dir_opens when the first per-file setns came
int openat_counting(int dirfd, const char* path, int flags, mode_t mode) {
  if (std::string_view(path) == "/proc/thread-self/ns") ++self_dir_opens;
  return sys::real_calls.openat(dirfd, path, flags, mode);
}
}  // namespace

TEST_CASE("enter_and_exec: /proc/thread-self/ns is opened only for the per-file way") {
  // nsenter's job in this (forked) process: net and uts carry no fork, so the command is
  // exec'd here and reports the namespaces it runs in. With setns(pidfd) the own ns directory
  // is never opened; when setns(pidfd) says EINVAL (Linux < 5.8), it is opened before the
  // per-file joins, which then succeed.
  target t(target_flags());
  for (bool pidfd_works : {true, false}) {
    CAPTURE(pidfd_works);
    char out[] = "/tmp/nsentry-enter-exec-XXXXXX";
    int ofd = ::mkstemp(out);
    REQUIRE(ofd >= 0);
    ::close(ofd);
    int rc = in_child([&] {
      sys::scoped_override o{&sys::table::openat, &openat_counting};
      std::optional<sys::scoped_override<int (*)(int, int)>> no_pidfd;
      if (!pidfd_works)
        no_pidfd.emplace(&sys::table::setns, [](int fd, int type) {
          if (is_pidfd(fd)) {
            errno = EINVAL;
            return -1;
          }
          if (opens_at_first_file_join == -1) opens_at_first_file_join = self_dir_opens;
          return sys::real_calls.setns(fd, type);
        });
      self_dir_opens = 0;
      opens_at_first_file_join = -1;
      enter_request req;
      req.target = t.pid();
      req.kinds = ns_set{ns_kind::net, ns_kind::uts};
      // Runs before the exec: the count so far goes to the file's first line.
      req.before_exec = [&] {
        std::FILE* f = std::fopen(out, "w");
        if (f) std::fprintf(f, "%d %d\n", self_dir_opens, opens_at_first_file_join), std::fclose(f);
      };
      auto cmd = exec_spec::make(
          {"sh", "-c", std::string("stat -L -c %i /proc/self/ns/net /proc/self/ns/uts >> ") + out});
      EXPECT_C(cmd);
      auto st = enter_and_exec(req, cmd.value());  // returns only on failure
      std::fprintf(stderr, "%s\n", st ? "returned" : st.error().message().c_str());
      return 90;
    });
    CHECK(rc == 0);
    std::istringstream in(slurp(out));
    int opens = -1, opens_before_joins = -2;
    unsigned long net = 0, uts = 0;
    in >> opens >> opens_before_joins >> net >> uts;
    CHECK(opens == (pidfd_works ? 0 : 1));
    // The per-file way: opened before its first setns (-1: no per-file setns at all).
    CHECK(opens_before_joins == (pidfd_works ? -1 : 1));
    CHECK(net == t.ino(ns_kind::net));
    CHECK(uts == t.ino(ns_kind::uts));
    ::unlink(out);
  }
}

TEST_CASE("join_pid: a user namespace we share is left out (the kernel would say EINVAL)") {
  target t(target_flags());
  REQUIRE(t.ino(ns_kind::user) == ns_ino("/proc/self/ns/user"));
  int rc = in_child([&] {
    self_ns self;
    auto r = join_pid(t.pid(), target_kinds | ns_set{ns_kind::user});
    EXPECT_C(r);
    EXPECT_C(joined_all(self, t, target_kinds));
    return 0;
  });
  CHECK(rc == 0);
}

TEST_CASE("join_pid: into a user namespace, then setresuid/gid 0 inside it") {
  target t({"--user", "--net", "--uts"});
  map_identity(t.pid());
  REQUIRE(t.ino(ns_kind::user) != ns_ino("/proc/self/ns/user"));
  for (bool pidfd_path : {true, false}) {
    CAPTURE(pidfd_path);
    int rc = in_child([&] {
      self_ns self;
      // Without pidfd setns (Linux < 5.8) the kernel says EINVAL to a pidfd: the per-file way.
      static auto einval_on_pidfd = [](int fd, int type) {
        char link[64] = {};
        auto p = "/proc/self/fd/" + std::to_string(fd);
        if (::readlink(p.c_str(), link, sizeof link - 1) > 0 &&
            std::string(link) == "anon_inode:[pidfd]") {
          errno = EINVAL;
          return -1;
        }
        return ::setns(fd, type);
      };
      std::optional<sys::scoped_override<int (*)(int, int)>> o;
      if (!pidfd_path) o.emplace(&sys::table::setns, +einval_on_pidfd);
      ns_set kinds{ns_kind::user, ns_kind::net, ns_kind::uts};
      auto r = join_pid(t.pid(), kinds);
      if (!r) std::fprintf(stderr, "%s\n", r.error().message().c_str());
      EXPECT_C(r);
      EXPECT_C(joined_all(self, t, kinds));
      EXPECT_C(::getuid() == 0);  // uid 0 inside, mapped to our (root) uid outside
      return 0;
    });
    CHECK(rc == 0);
  }
}

TEST_CASE("join_paths / join_fd: by file, all opened first, then verified") {
  target t(target_flags());
  int rc = in_child([&] {
    self_ns self;
    std::vector<ns_join> joins;
    for (ns_kind k : target_kinds) joins.push_back({k, proc_ns_path(t.pid(), k)});
    int fds = count_fds();
    auto r = join_paths(joins);
    EXPECT_C(r);
    EXPECT_C(joined_all(self, t, target_kinds));
    EXPECT_C(count_fds() == fds);
    return 0;
  });
  CHECK(rc == 0);
  rc = in_child([&] {
    self_ns self;
    int fd = ::open(proc_ns_path(t.pid(), ns_kind::net).c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_C(fd >= 0);
    EXPECT_C(join_fd(ns_kind::net, fd));
    EXPECT_C(::fcntl(fd, F_GETFD) != -1);  // the caller's fd stays the caller's
    EXPECT_C(joined_all(self, t, ns_set{ns_kind::net}));
    return 0;
  });
  CHECK(rc == 0);
}

TEST_CASE("join_fds: EPERM is skipped until after the user namespace, then retried") {
  target t({"--user", "--net", "--uts"});
  map_identity(t.pid());
  int rc = in_child([&] {
    self_ns self;
    // The first attempt at net is refused (as for an unprivileged caller before it joins the
    // owning user namespace); the retry after the user join must make it.
    static int net_tries = 0;
    sys::scoped_override o{&sys::table::setns, [](int fd, int type) {
                             if (type == CLONE_NEWNET && net_tries++ == 0) {
                               errno = EPERM;
                               return -1;
                             }
                             return sys::real_calls.setns(fd, type);
                           }};
    std::vector<ns_join> joins{{ns_kind::net, proc_ns_path(t.pid(), ns_kind::net)},
                               {ns_kind::user, proc_ns_path(t.pid(), ns_kind::user)},
                               {ns_kind::uts, proc_ns_path(t.pid(), ns_kind::uts)}};
    EXPECT_C(join_paths(joins));
    EXPECT_C(net_tries == 2);
    EXPECT_C(joined_all(self, t, ns_set{ns_kind::net, ns_kind::uts, ns_kind::user}));
    return 0;
  });
  CHECK(rc == 0);
}

TEST_CASE("join errors name the step, kind, path or pid; nothing leaks; thread stays put") {
  target t(target_flags());
  int rc = in_child([&] {
    self_ns self;
    int fds = count_fds();
    ino_t net = ns_ino("/proc/self/ns/net");

    auto missing = join_paths(std::vector<ns_join>{
        {ns_kind::net, proc_ns_path(t.pid(), ns_kind::net)}, {ns_kind::uts, "/nonexistent/uts"}});
    EXPECT_C(!missing);
    EXPECT_C(missing.error() == std::errc::no_such_file_or_directory);
    EXPECT_C(missing.error().kind == ns_kind::uts);
    EXPECT_C(missing.error().path == "/nonexistent/uts");
    EXPECT_C(ns_ino("/proc/self/ns/net") == net);  // nothing joined: paths are opened first

    auto wrong = join_paths(std::vector<ns_join>{{ns_kind::net, "/etc/passwd"}});
    EXPECT_C(!wrong);
    EXPECT_C(wrong.error() == std::errc::invalid_argument);  // refused before any setns
    EXPECT_C(wrong.error().message() ==
             "join: setns(net) on /etc/passwd: Invalid argument (open: not a namespace file: "
             "invalid argument)");

    auto nopid = join_pid(999999999, ns_set{ns_kind::net});
    EXPECT_C(!nopid);
    EXPECT_C(nopid.error() == std::errc::no_such_process);  // pidfd_open comes first

    {
      sys::scoped_override o{&sys::table::setns, [](int, int) {
                               errno = EPERM;
                               return -1;
                             }};
      auto denied = join_pid(t.pid(), ns_set{ns_kind::net});
      EXPECT_C(!denied);
      EXPECT_C(denied.error() == std::errc::operation_not_permitted);
      EXPECT_C(denied.error().pid == t.pid());
      auto denied2 =
          join_paths(std::vector<ns_join>{{ns_kind::uts, proc_ns_path(t.pid(), ns_kind::uts)}});
      EXPECT_C(!denied2);
      EXPECT_C(denied2.error().kind == ns_kind::uts);
    }
    {
      // setns "succeeds" on a file but nothing moved: not_joined names the kinds still outside.
      // (setns(pidfd, flags) commits all or nothing, so join_pid's fast path checks nothing.)
      sys::scoped_override o{&sys::table::setns, [](int, int) { return 0; }};
      auto liar2 =
          join_paths(std::vector<ns_join>{{ns_kind::uts, proc_ns_path(t.pid(), ns_kind::uts)}});
      EXPECT_C(!liar2);
      EXPECT_C(liar2.error() == errc::not_joined);
      EXPECT_C(liar2.error().detail == "still outside uts");
    }
    EXPECT_C(ns_ino("/proc/self/ns/net") == net);
    EXPECT_C(count_fds() == fds);
    return 0;
  });
  CHECK(rc == 0);
}
