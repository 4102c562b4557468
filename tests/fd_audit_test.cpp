// fd audit from inside (issue 9, "Then prove it" 4): for every entry path the spawned command
// lists its own descriptors (`ls -l /proc/self/fd`, ls's own directory fd left out): only 0, 1,
// 2 and the fds passed on purpose (mount sources included; runc-init: what stage-2 execs,
// without the init and log pipes the runc-style parent gave it as fds 3 and 4). And after
// injected failures in the parent (an id-map write, a socketpair, a clone3) the caller has
// leaked no fd and no child.
#include <doctest/doctest.h>
#include <linux/close_range.h>

#include <set>
#include <sstream>

#include "nsentry/bootstrap.hpp"
#include "nsentry/executor.hpp"
#include "nsentry/spawn.hpp"
#include "tests/exec_test_util.hpp"
#include "tests/runc_parent.hpp"

using namespace nsentry;
using namespace testutil;

namespace {

const std::vector<std::string> list_fds = {"/bin/ls", "-l", "/proc/self/fd"};

// `ls -l /proc/self/fd` output -> the fd numbers, without ls's own directory fd.
std::set<int> parse_ls(const std::string& out) {
  std::set<int> fds;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    auto arrow = line.find(" -> ");
    if (arrow == std::string::npos) continue;
    auto target = line.substr(arrow + 4);
    if (target.rfind("/proc/", 0) == 0 && target.size() > 3 &&
        target.substr(target.size() - 3) == "/fd")
      continue;  // ls reading the directory
    auto sp = line.rfind(' ', arrow - 1);
    fds.insert(std::stoi(line.substr(sp + 1, arrow - sp - 1)));
  }
  return fds;
}

std::string str(const std::set<int>& s) {
  std::string o;
  for (int f : s) o += std::to_string(f) + " ";
  return o;
}

// In a forked child with only 0, 1, 2 open (plus `extra`, without CLOEXEC, on purpose, and a
// few CLOEXEC fds that must not reach the command): runs `go`, which starts the command with
// stdout to a file, then reads that file. Returns the fds the command saw, or {-1} on error.
template <class Go>
std::set<int> audit(Go go, std::set<int> extra = {}) {
  char path[] = "/tmp/nsentry-fd-audit-XXXXXX";
  int tmp = ::mkstemp(path);
  REQUIRE(tmp >= 0);
  ::close(tmp);
  int rc = in_child([&] {
    ::syscall(SYS_close_range, 3U, ~0U, 0U);
    int out = ::open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    EXPECT_C(out >= 0);
    EXPECT_C(::dup2(out, 1) == 1);
    ::close(out);
    for (int f : extra) EXPECT_C(::dup2(0, f) == f);  // inherited on purpose
    // CLOEXEC fds the caller holds: none may reach the command.
    int keep[2];
    EXPECT_C(::pipe2(keep, O_CLOEXEC) == 0);
    EXPECT_C(::open("/etc/passwd", O_RDONLY | O_CLOEXEC) >= 0);
    int fds = count_fds();
    int kids = count_children();
    int st = go();
    EXPECT_C(count_fds() == fds);
    EXPECT_C(count_children() == kids);
    return st;
  });
  std::string text = slurp(path);
  ::unlink(path);
  if (rc != 0) {
    FAIL_CHECK("child exit " << rc << " output: " << text);
    return {-1};
  }
  return parse_ls(text);
}

int wait_ok(result<child> c) {
  if (!c) {
    std::fprintf(stderr, "%s\n", c.error().message().c_str());
    return 3;
  }
  auto s = c.value().wait();
  if (!s || s.value().shell_status() != 0) return 4;
  return 0;
}

id_map three_ranges() {
  auto m = id_map::from_ranges({{0, 100000, 1000}, {1000, 0, 1}, {2000, 300000, 10}});
  REQUIRE_OK(m);
  return m.value();
}

}  // namespace

TEST_CASE("every entry path: the command holds only 0, 1, 2 and what was passed on purpose") {
  target t({"--pid", "--mount-proc", "--net", "--uts", "--ipc"});
  auto ls = exec_spec::make(list_fds);
  REQUIRE_OK(ls);
  const std::set<int> std3{0, 1, 2};

  SUBCASE("run_plan: joins") {
    auto seen = audit([&] {
      plan p;
      p.join = {{ns_kind::net, proc_ns_path(t.pid(), ns_kind::net)},
                {ns_kind::uts, proc_ns_path(t.pid(), ns_kind::uts)},
                {ns_kind::ipc, proc_ns_path(t.pid(), ns_kind::ipc)}};
      return wait_ok(run_plan(p, ls.value()));
    });
    CHECK_MESSAGE(seen == std3, str(seen));
  }
  SUBCASE("run_plan: creates with 3-range maps") {
    auto seen = audit([&] {
      plan p;
      p.create = ns_set{ns_kind::user, ns_kind::mnt, ns_kind::uts, ns_kind::net, ns_kind::ipc};
      p.uid_map = three_ranges();
      p.gid_map = three_ranges();
      return wait_ok(run_plan(p, ls.value()));
    });
    CHECK_MESSAGE(seen == std3, str(seen));
  }
  SUBCASE("run_plan: pid (through the mirror), joined and created") {
    auto seen = audit([&] {
      plan p;
      p.join = {{ns_kind::net, proc_ns_path(t.pid(), ns_kind::net)}};
      p.create = ns_set{ns_kind::pid, ns_kind::uts};
      return wait_ok(run_plan(p, ls.value()));
    });
    CHECK_MESSAGE(seen == std3, str(seen));
    auto seen2 = audit([&] {
      plan p;
      p.join = {{ns_kind::pid, proc_ns_path(t.pid(), ns_kind::pid)}};
      return wait_ok(run_plan(p, ls.value()));
    });
    CHECK_MESSAGE(seen2 == std3, str(seen2));
  }
  SUBCASE("run_plan and spawn_exec: an fd passed on purpose gets through, alone") {
    auto seen = audit(
        [&] {
          plan p;
          p.create = ns_set{ns_kind::pid, ns_kind::uts};
          return wait_ok(run_plan(p, ls.value()));
        },
        {7});
    CHECK_MESSAGE(seen == (std::set<int>{0, 1, 2, 7}), str(seen));
    auto seen2 = audit([&] { return wait_ok(spawn_exec(ls.value())); }, {5, 9});
    CHECK_MESSAGE(seen2 == (std::set<int>{0, 1, 2, 5, 9}), str(seen2));
  }
  SUBCASE("run_plan: mount sources on their numbers, even on the channel's own") {
    temp_dir d;
    const std::vector<std::string> sources{d.path, "", "/etc/passwd"};
    auto seen = audit([&] {
      plan p;
      p.create = ns_set{ns_kind::user, ns_kind::mnt};
      p.uid_map = three_ranges();
      p.gid_map = three_ranges();
      p.mount_sources = sources;
      return wait_ok(run_plan(p, ls.value()));
    });
    // 3 and 4 hold CLOEXEC fds of the caller here: the sources replace them in the command.
    CHECK_MESSAGE(seen == (std::set<int>{0, 1, 2, 3, 4}), str(seen));
    // Targets on the numbers the channel's socketpair takes (6 and 7 in audit()'s child, where
    // 3, 4, 5 are taken): its child end moves out of the way.
    auto seen2 = audit([&] {
      int a = ::dup(0), b = ::dup(0);
      ::close(a);
      ::close(b);
      if (a != 6 || b != 7) return 9;  // audit()'s fd layout changed: adjust the expectation
      plan p;
      p.create = ns_set{ns_kind::user, ns_kind::mnt};
      p.uid_map = three_ranges();
      p.gid_map = three_ranges();
      p.mount_sources = sources;
      run_options opt;
      opt.mount_fds = {b, -1, a};
      return wait_ok(run_plan(p, ls.value(), opt));
    });
    CHECK_MESSAGE(seen2 == (std::set<int>{0, 1, 2, 6, 7}), str(seen2));
    // With a join, the sequence opens its /proc ns directory on the number the channel's parent
    // end left free in the child (the join file takes 6, the socketpair 7 and 8): a source
    // placed there must survive the sequence closing that directory.
    auto seen3 = audit([&] {
      plan p;
      p.join = {{ns_kind::net, proc_ns_path(t.pid(), ns_kind::net)}};
      p.mount_sources = std::vector<std::string>{"/etc/passwd"};
      run_options opt;
      opt.mount_fds = {7};
      return wait_ok(run_plan(p, ls.value(), opt));
    });
    CHECK_MESSAGE(seen3 == (std::set<int>{0, 1, 2, 7}), str(seen3));
  }
  SUBCASE("spawn_exec, both the vfork-style and the copying child") {
    auto seen = audit([&] { return wait_ok(spawn_exec(ls.value())); });
    CHECK_MESSAGE(seen == std3, str(seen));
    auto seen2 = audit([&] {
      spawn_options o;
      o.share_memory = false;
      return wait_ok(spawn_exec(ls.value(), o));
    });
    CHECK_MESSAGE(seen2 == std3, str(seen2));
  }
  SUBCASE("nsentry enter (the CLI), with and without a pid namespace") {
    for (std::string kinds : {"--net --uts --ipc", "--pid --net"}) {
      INFO(kinds);
      auto seen = audit([&] {
        // exec: sh -c replaced by nsentry, so no shell holds anything either.
        std::string line = "exec env ASAN_OPTIONS=detect_leaks=0 " + nsentry_bin() + " enter -t " +
                           std::to_string(t.pid()) + " " + kinds + " -- /bin/ls -l /proc/self/fd";
        pid_t pid = spawn_argv({"/bin/sh", "-c", line});
        int st = 0;
        if (::waitpid(pid, &st, 0) != pid) return 5;
        return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 6;
      });
      CHECK_MESSAGE(seen == std3, str(seen));
    }
  }
}

TEST_CASE("runc-init: the command stage-2 execs holds only 0, 1, 2 (not the init's fds 3, 4)") {
  target t({"--pid", "--mount-proc", "--net", "--uts", "--ipc"});
  plan joins;
  joins.join = {{ns_kind::net, proc_ns_path(t.pid(), ns_kind::net)},
                {ns_kind::uts, proc_ns_path(t.pid(), ns_kind::uts)},
                {ns_kind::ipc, proc_ns_path(t.pid(), ns_kind::ipc)},
                {ns_kind::pid, proc_ns_path(t.pid(), ns_kind::pid)}};
  plan creates;
  creates.create = ns_set{ns_kind::user, ns_kind::mnt, ns_kind::uts, ns_kind::pid};
  creates.uid_map = three_ranges();
  creates.gid_map = three_ranges();
  for (const plan* p : {&joins, &creates}) {
    const std::string what =
        p == &joins ? "joins net, uts, ipc, pid" : "creates user, mnt, uts, pid";
    INFO(what);
    auto msg = bootstrap::encode(*p, runc_protocol::v1_2);
    REQUIRE_OK(msg);
    std::string bytes(reinterpret_cast<const char*>(msg.value().data()), msg.value().size());
    auto seen = audit([&] {
      test::runc_parent_options o;
      o.argv = {nsentry_bin(), "runc-init", "--"};
      o.argv.insert(o.argv.end(), list_fds.begin(), list_fds.end());
      o.env = {"ASAN_OPTIONS=detect_leaks=0"};  // see enter_cli_test's bin_for_pid
      o.log_pipe = true;
      o.message = {bytes};
      auto r = test::run_runc_init(o);
      if (!r) {
        std::fprintf(stderr, "harness: %s\n", r.error().message().c_str());
        return 7;
      }
      const test::runc_run& x = r.value();
      if (!x.stage0.exited_zero() || !x.pids || !x.stage1.exited_zero() ||
          !x.stage2.exited_zero() || !x.strays.empty() || x.timed_out) {
        std::fprintf(stderr, "runc-init failed: %s %s\n", x.log_bytes.c_str(),
                     x.stderr_text.c_str());
        return 8;
      }
      return 0;
    });
    CHECK_MESSAGE(seen == (std::set<int>{0, 1, 2}), str(seen));
  }
}

TEST_CASE("after injected failures in the parent, the caller holds no new fd and no child") {
  auto truth = exec_spec::make({"/bin/true"});
  REQUIRE_OK(truth);
  plan p;
  p.create = ns_set{ns_kind::user, ns_kind::uts, ns_kind::pid};
  p.uid_map = three_ranges();
  p.gid_map = three_ranges();
  static int calls = 0;
  auto fail_on = [&](auto&& install) {
    int rc = in_child([&] {
      int fds = count_fds();
      int kids = count_children();
      auto guard = install();
      auto c = run_plan(p, truth.value());
      EXPECT_C(!c);
      EXPECT_C(c.error().step != step::none);
      EXPECT_C(count_fds() == fds);
      EXPECT_C(count_children() == kids);
      return 0;
    });
    CHECK(rc == 0);
  };
  SUBCASE("the uid_map write fails") {
    fail_on([] {
      return std::make_unique<sys::scoped_override<ssize_t (*)(int, const void*, size_t)>>(
          &sys::table::write, [](int fd, const void* b, size_t n) -> ssize_t {
            char link[128] = {};
            auto l = "/proc/self/fd/" + std::to_string(fd);
            (void)!::readlink(l.c_str(), link, sizeof link - 1);
            if (std::strstr(link, "uid_map")) {
              errno = EPERM;
              return -1;
            }
            return sys::real_calls.write(fd, b, n);
          });
    });
  }
  SUBCASE("the uid_map open fails") {
    fail_on([] {
      return std::make_unique<sys::scoped_override<int (*)(int, const char*, int, mode_t)>>(
          &sys::table::openat, [](int d, const char* path, int f, mode_t m) -> int {
            if (std::strstr(path, "uid_map")) {
              errno = EACCES;
              return -1;
            }
            return sys::real_calls.openat(d, path, f, m);
          });
    });
  }
  SUBCASE("socketpair, clone3 fail") {
    fail_on([] {
      return std::make_unique<sys::scoped_override<int (*)(int, int, int, int*)>>(
          &sys::table::socketpair, [](int, int, int, int*) -> int {
            errno = EMFILE;
            return -1;
          });
    });
    fail_on([] {
      return std::make_unique<sys::scoped_override<long (*)(sys::clone_args*, size_t)>>(
          &sys::table::clone3, [](sys::clone_args*, size_t) -> long {
            ++calls;
            errno = EAGAIN;
            return -1;
          });
    });
  }
}
