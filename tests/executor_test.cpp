// run_plan and `nsentry run` against the real kernel: maps read back by the command, time
// offsets, oom_score_adj, failures naming their step (parent and child side) with no leaked fd
// or child, run_sequence, and the rootless path through newuidmap/newgidmap.
#include "nsentry/executor.hpp"

#include <doctest/doctest.h>
#include <grp.h>
#include <pwd.h>

#include <algorithm>
#include <cstring>

#include "nsentry/trace.hpp"
#include "tests/exec_test_util.hpp"
#include "tests/testing.hpp"

using namespace nsentry;
using namespace testutil;

TEST_CASE("run_plan: new user namespace with a 3-range map; the command reads it back") {
  int fds = count_fds(), kids = count_children();
  plan p;
  p.create = ns_set{ns_kind::user, ns_kind::mnt, ns_kind::uts, ns_kind::ipc, ns_kind::net};
  p.uid_map = three_ranges(0);
  p.gid_map = three_ranges(0);
  auto r = run_plan_script(p,
                           "cat /proc/self/uid_map; echo ---; cat /proc/self/gid_map; echo ---; "
                           "cat /proc/self/setgroups; id -u; readlink /proc/self/ns/net");
  CHECK(r.status == 0);
  auto parts = r.out;
  auto a = parts.find("---\n"), b = parts.find("---\n", a + 4);
  REQUIRE(b != std::string::npos);
  CHECK(normalize_map(parts.substr(0, a)) == p.uid_map.format());
  CHECK(normalize_map(parts.substr(a + 4, b - a - 4)) == p.gid_map.format());
  auto rest = parts.substr(b + 4);
  CHECK(rest.rfind("allow\n0\nnet:[", 0) == 0);  // root policy: setgroups stays allowed
  CHECK(rest.find("net:[" + std::to_string(ns_ino("/proc/self/ns/net")) + "]") ==
        std::string::npos);
  CHECK(count_fds() == fds);
  CHECK(count_children() == kids);
}

TEST_CASE("run_plan: rootless setgroups rule writes deny; oom_score_adj; pid+time fork") {
  plan p;
  p.create = ns_set{ns_kind::user, ns_kind::pid, ns_kind::time, ns_kind::mnt};
  p.uid_map = three_ranges(0);
  p.gid_map = three_ranges(0);
  p.rootless_euid = true;  // and setgroups false: deny
  p.oom_score_adj = 321;
  p.time_offsets = {{time_clock::monotonic, 86400, 5}, {time_clock::boottime, 7200, 0}};
  auto r = run_plan_script(p,
                           "cat /proc/self/setgroups /proc/self/oom_score_adj; echo $$; "
                           "cat /proc/self/timens_offsets");
  CHECK(r.status == 0);
  std::istringstream in(r.out);
  std::string setgroups, oom, pid, clock1, clock2;
  long long s1 = 0, n1 = 0, s2 = 0, n2 = 0;
  in >> setgroups >> oom >> pid >> clock1 >> s1 >> n1 >> clock2 >> s2 >> n2;
  CHECK(setgroups == "deny");
  CHECK(oom == "321");
  CHECK(pid == "1");  // the command is the new pid namespace's first process
  CHECK(clock1 == "monotonic");
  CHECK(s1 == 86400);
  CHECK(n1 == 5);
  CHECK(clock2 == "boottime");
  CHECK(s2 == 7200);
}

TEST_CASE("run_plan: joins existing namespaces and mirrors the command's status") {
  target t({"--net", "--uts", "--pid", "--mount-proc"});
  plan p;
  p.join = {{ns_kind::net, proc_ns_path(t.pid(), ns_kind::net)},
            {ns_kind::pid, proc_ns_path(t.pid(), ns_kind::pid)}};
  auto r = run_plan_script(p, "readlink /proc/self/ns/net; exit 3");
  CHECK(r.status == 3);
  CHECK(r.out == "net:[" + std::to_string(t.ino(ns_kind::net)) + "]\n");
  auto killed = run_plan_script(p, "kill -KILL $$");
  CHECK(killed.status == 128 + SIGKILL);
}

TEST_CASE("run_plan with a trace: every step of the sequence, in order, with durations") {
  target t({"--net"});
  plan p;
  p.join = {{ns_kind::net, proc_ns_path(t.pid(), ns_kind::net)}};
  p.create = ns_set{ns_kind::user, ns_kind::uts, ns_kind::pid};
  auto one = id_map::parse("0 0 1\n", step::uid_map);
  REQUIRE_OK(one);
  p.uid_map = one.value();
  p.gid_map = p.uid_map;
  auto cmd = exec_spec::make({"true"});
  REQUIRE_OK(cmd);
  auto tr = step_trace::make();
  REQUIRE_OK(tr);
  run_options opt;
  opt.trace = &tr.value();
  auto c = run_plan(p, cmd.value(), opt);
  REQUIRE_OK(c);
  REQUIRE_OK(c.value().wait());
  std::string steps;  // "step(kind) step ..." in start order
  for (const auto& e : tr.value().in_start_order()) {
    if (!steps.empty()) steps += ' ';
    steps += name_of(e.step);
    if (e.kind < ns_kind_count)
      steps += "(" + std::string(name_of(static_cast<ns_kind>(e.kind))) + ")";
    CHECK(e.err == 0);
    CHECK(e.duration_ns > 0);
    CHECK(e.duration_ns < 10'000'000'000u);
  }
  // Each step below begins only after the one before it began: the child exists only once the
  // parent's clone started, and the child's own steps run one after another (its id_map step
  // is its wait for the parent to write the maps). So the timeline is this exact sequence
  // however parent and child were scheduled, although events() (record order) can hold the
  // parent's clone after the child's first steps.
  CHECK(steps == "open clone3 setns(net) unshare(user) id_map unshare fork exec");
  auto json = tr.value().json_lines();
  CHECK(json.find("{\"step\":\"setns\",\"kind\":\"net\",") != std::string::npos);
  CHECK(tr.value().table().find("unshare(user)") != std::string::npos);

  // Without a trace nothing is recorded anywhere (the sequence's sites test a null pointer).
  tr.value().clear();
  auto plain = run_plan(p, cmd.value());
  REQUIRE_OK(plain);
  REQUIRE_OK(plain.value().wait());
  CHECK(tr.value().events().empty());
}

TEST_CASE("run_plan failures name the step, kind and path; no fd or child is left") {
  int fds = count_fds(), kids = count_children();
  auto cmd = exec_spec::make({"true"});
  REQUIRE_OK(cmd);
  {
    plan p;
    p.join = {{ns_kind::net, "/nonexistent/net"}};
    auto c = run_plan(p, cmd.value());
    REQUIRE_FALSE(c);
    CHECK(c.error().message() == "open(net) on /nonexistent/net: No such file or directory");
  }
  {
    plan p;
    p.join = {{ns_kind::uts, "/etc/hostname"}};  // not a namespace file: setns in the child
    auto c = run_plan(p, cmd.value());
    REQUIRE_FALSE(c);
    CHECK(c.error().step == step::setns);
    CHECK(c.error().kind == ns_kind::uts);
    CHECK(c.error().path == "/etc/hostname");
    CHECK(c.error() == std::errc::invalid_argument);
  }
  {
    plan p;
    p.create = ns_set{ns_kind::net};
    auto missing = exec_spec::make({"/nonexistent/cmd"});
    REQUIRE_OK(missing);
    auto c = run_plan(p, missing.value());
    REQUIRE_FALSE(c);
    CHECK(c.error().step == step::exec);
    CHECK(c.error().path == "/nonexistent/cmd");
    p.create = ns_set{ns_kind::pid};  // from the grandchild, too
    c = run_plan(p, missing.value());
    REQUIRE_FALSE(c);
    CHECK(c.error().step == step::exec);
  }
  {
    // The kernel refuses the maps (outside ids overlap is caught earlier; here: a map the
    // kernel rejects as a second write is simulated by a bad tool on EPERM).
    plan p;
    p.create = ns_set{ns_kind::user};
    p.uid_map = three_ranges(0);
    p.uidmap_tool = "/bin/false";
    sys::scoped_override o{&sys::table::write, [](int fd, const void* b, size_t n) -> ssize_t {
                             char link[64] = {};
                             auto path = "/proc/self/fd/" + std::to_string(fd);
                             if (::readlink(path.c_str(), link, sizeof link - 1) < 0)
                               link[0] = '\0';
                             if (std::strstr(link, "uid_map")) {
                               errno = EPERM;
                               return -1;
                             }
                             return sys::real_calls.write(fd, b, n);
                           }};
    auto c = run_plan(p, cmd.value());
    REQUIRE_FALSE(c);
    CHECK(c.error() == errc::child_failed);
    CHECK(c.error().message() ==
          "uid_map on /bin/false: exited with status 1: child process failed");
  }
  {
    plan p;
    p.create = ns_set{ns_kind::net, ns_kind::uts};
    sys::scoped_override o{&sys::table::unshare, [](int) {
                             errno = EPERM;
                             return -1;
                           }};
    auto c = run_plan(p, cmd.value());
    REQUIRE_FALSE(c);
    CHECK(c.error().step == step::unshare);
    CHECK(c.error() == std::errc::operation_not_permitted);
  }
  {
    plan p;
    p.create = ns_set{ns_kind::net};
    p.join = {{ns_kind::net, "/proc/self/ns/net"}};
    auto c = run_plan(p, cmd.value());
    REQUIRE_FALSE(c);
    CHECK(c.error() == errc::invalid_plan);
  }
  CHECK(count_fds() == fds);
  CHECK(count_children() == kids);
}

TEST_CASE("spawn_entry: a sequence composed by hand joins, creates and runs a function") {
  const int fds = count_fds(), kids = count_children();
  {
    target t({"--uts"});
    std::vector<ns_join> paths{{ns_kind::uts, proc_ns_path(t.pid(), ns_kind::uts)}};
    auto files = opened_namespaces::open(paths);
    REQUIRE_OK(files);
    auto out = pipe_pair::make();
    REQUIRE_OK(out);
    child_side::entry_program prog;
    prog.join_files = files.value().fds();
    prog.create = ns_set{ns_kind::ipc};
    const int w = out.value().write_end.get();
    // The final step: report the uts and ipc inodes this process ended up in, then return.
    auto report = [w]() noexcept {
      struct stat uts {
      }, ipc{};
      ::stat("/proc/self/ns/uts", &uts);
      ::stat("/proc/self/ns/ipc", &ipc);
      ino_t both[2] = {uts.st_ino, ipc.st_ino};
      if (::write(w, both, sizeof both) != sizeof both) return failure::at(step::write, errno);
      return failure{};
    };
    auto c = spawn_entry(prog, report, {});
    REQUIRE_OK(c);
    out.value().write_end.reset();
    ino_t both[2] = {};
    REQUIRE(::read(out.value().read_end.get(), both, sizeof both) == sizeof both);
    CHECK(both[0] == t.ino(ns_kind::uts));
    CHECK(both[1] != ns_ino("/proc/self/ns/ipc"));
    auto st = c.value().wait();
    REQUIRE_OK(st);
    CHECK(st.value().success());

    // A failing final step: the error names its step and errno, and no child is left.
    auto bad = spawn_entry(prog, []() noexcept { return failure::at(step::exec, ENOENT); }, {});
    REQUIRE_FALSE(bad);
    CHECK(bad.error().step == step::exec);
    CHECK(bad.error() == std::errc::no_such_file_or_directory);
  }
  CHECK(count_fds() == fds);
  CHECK(count_children() == kids);
}
