// Fault-injection matrix (issue 9, "Then prove it" 1): for each plan shape, the syscall sites it
// actually uses are recorded in one successful run (every sys::table entry wrapped by a
// counting override, counted across the processes it forks), then each site (the Nth call of
// an entry) x each relevant errno is failed once, in a forked child. Each injection must end in
// success (EINTR retried, an ENOSYS fallback taken) or an error naming its step, with the
// caller's fds, children and thread namespaces unchanged and no process left.
#include "tests/fault_matrix.hpp"

#include <dirent.h>
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <sstream>

#include "nsentry/executor.hpp"
#include "nsentry/join.hpp"
#include "nsentry/scoped_entry.hpp"
#include "nsentry/spawn.hpp"
#include "tests/exec_test_util.hpp"

using namespace nsentry;
using namespace testutil;

namespace {

// What one run of a shape ended in.
struct outcome {
  bool ok = false;
  int status = 0;  // the command's shell status, for shapes that run one
  nsentry::step step = nsentry::step::none;
  std::string message;
};

template <class R>
outcome from(const R& r) {
  outcome o;
  o.ok = static_cast<bool>(r);
  if (!r) {
    o.step = r.error().step;
    o.message = r.error().message();
  }
  return o;
}

outcome run_and_wait(result<child> c) {
  if (!c) return from(c);
  auto st = c.value().wait();
  outcome o = from(st);
  if (st) o.status = st.value().shell_status();
  return o;
}

struct shape {
  std::string name;
  bool thread_moves_on_success;   // a join: the thread is elsewhere afterwards, by design
  std::function<void()> prepare;  // in the child, before the table is installed
  std::function<outcome()> run;
};

// Children of every thread, -1 when /proc/self cannot be read.
int children_now() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/task");
  if (!d) return -1;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::istringstream in(slurp(std::string("/proc/self/task/") + e->d_name + "/children"));
    for (std::string pid; in >> pid;) ++n;
  }
  ::closedir(d);
  return n;
}

const char* thread_entries[] = {
    "cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time", "time_for_children",
    "user",   "uts"};

std::vector<ino_t> thread_inos(int dir) {
  std::vector<ino_t> v;
  for (const char* e : thread_entries) {
    struct stat st {};
    v.push_back(::fstatat(dir, e, &st, 0) == 0 ? st.st_ino : 0);
  }
  return v;
}

std::vector<int> errnos_for(int e) {
  using namespace faults;
  switch (e) {
    case e_getpid:
      return {};
    case e_close:
      return {EINTR};
    case e_clone3:
      return {EPERM, EINVAL, ENOSYS, EINTR, ENOMEM, EAGAIN};
    case e_clone:
    case e_fork:
      return {EPERM, EINVAL, EINTR, ENOMEM, EAGAIN};
    case e_pidfd_open:
    case e_close_range:
    case e_sendfile:
      return {EPERM, EINVAL, ENOSYS, EINTR, ENOMEM};
    default:
      return {EPERM, EINVAL, EINTR, ENOMEM};
  }
}

// ENOSYS where the library documents a fallback: must succeed.
bool fallback_expected(int e, int err) {
  using namespace faults;
  return err == ENOSYS &&
         (e == e_clone3 || e == e_pidfd_open || e == e_close_range || e == e_sendfile);
}

// Child exit codes of one injection.
enum verdict : int {
  v_ok = 0,          // success
  v_error = 1,       // a well-formed error
  v_ok_status = 2,   // success, but the command's status was not 0
  v_partial = 3,     // a join failed after an earlier setns of it succeeded: the thread is
                     // partly moved (setns cannot be undone for user; join_* promise no rollback)
  v_misreport = 4,   // ...and the error says "not joined" although it was (see the bug case)
  v_bad_error = 10,  // step none or empty message
  v_fds = 11,
  v_children = 12,
  v_thread_ns = 13,
  v_fallback = 14,   // ENOSYS with a fallback, yet an error
  v_not_fired = 15,  // the site was not reached this time (not a failure)
};

int run_one(const shape& s, int entry, int nth, int err) {
  s.prepare();
  ::alarm(20);
  int dir = ::open("/proc/thread-self/ns", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return 50;
  auto before = thread_inos(dir);
  int fds = count_fds();
  int kids = children_now();
  faults::reset(entry, nth, err);
  faults::install();
  outcome o = s.run();
  nsentry::sys::calls = nsentry::sys::real_calls;
  bool fired = faults::state()->fired.load() != 0;
  int code = o.ok ? (o.status == 0 ? v_ok : v_ok_status) : v_error;
  auto say = [&](const char* what) {
    std::fprintf(stderr, "[%s] %s#%d %s: %s (%s)\n", s.name.c_str(), faults::entry_names[entry],
                 nth, strerrorname_np(err), what, o.ok ? "ok" : o.message.c_str());
  };
  if (!o.ok && (o.step == step::none || o.message.empty())) {
    say("error without a step or message");
    return v_bad_error;
  }
  if (count_fds() != fds) {
    say("fd count changed");
    return v_fds;
  }
  // Processes: give an exiting child a moment to be reaped.
  int k = children_now();
  for (int i = 0; i < 50 && k != kids; ++i) {
    ::usleep(10000);
    k = children_now();
  }
  if (k != kids) {
    say("child count changed");
    return v_children;
  }
  if ((!o.ok || !s.thread_moves_on_success) && thread_inos(dir) != before) {
    if (s.thread_moves_on_success && !o.ok) return o.step == step::verify ? v_misreport : v_partial;
    say("thread namespaces changed");
    return v_thread_ns;
  }
  if (fired && fallback_expected(entry, err) && !o.ok) {
    say("ENOSYS fallback not taken");
    return v_fallback;
  }
  if (!fired) return v_not_fired;
  if (code == v_ok_status)
    say(("run_plan/spawn succeeded, the command's status is " + std::to_string(o.status)).c_str());
  return code;
}

struct totals {
  int injections = 0, sites = 0, failures = 0;
};

totals matrix(const shape& s, int cap = 6) {
  // 1. Record: which entries, how many calls, in one successful run.
  int rec = in_child([&] {
    s.prepare();
    faults::reset();
    faults::install();
    outcome o = s.run();
    if (!o.ok)
      std::fprintf(stderr, "[%s] record run failed: %s\n", s.name.c_str(), o.message.c_str());
    return o.ok && o.status == 0 ? 0 : 1;
  });
  REQUIRE_MESSAGE(rec == 0, s.name);
  int counts[faults::entry_count];
  for (int e = 0; e < faults::entry_count; ++e) counts[e] = faults::state()->counts[e].load();
  // 2. Inject.
  totals t;
  std::map<int, int> by_verdict;
  std::ostringstream used;
  for (int e = 0; e < faults::entry_count; ++e) {
    if (counts[e] == 0 || errnos_for(e).empty()) continue;
    int n_sites = std::min(counts[e], cap);
    used << faults::entry_names[e] << "x" << counts[e] << " ";
    t.sites += n_sites;
    for (int nth = 1; nth <= n_sites; ++nth) {
      for (int err : errnos_for(e)) {
        int v = in_child([&] { return run_one(s, e, nth, err); });
        ++by_verdict[v];
        if (v == v_not_fired) continue;
        ++t.injections;
        bool good =
            v == v_ok || v == v_error || v == v_ok_status || v == v_partial || v == v_misreport;
        if (!good) ++t.failures;
        CHECK_MESSAGE(good, s.name, ": ", faults::entry_names[e], " call ", nth, " ",
                      strerrorname_np(err), " -> verdict ", v);
      }
    }
  }
  MESSAGE(s.name, ": ", t.sites, " sites (", used.str(), "), ", t.injections,
          " injections: ", by_verdict[v_ok], " ok, ", by_verdict[v_error], " errors, ",
          by_verdict[v_ok_status], " ok with a nonzero command status, ", by_verdict[v_partial],
          " partial joins, ", by_verdict[v_misreport], " joined-but-reported-not-joined, ",
          by_verdict[v_not_fired], " not reached, ", t.failures, " failed checks");
  return t;
}

id_map ranges3(std::uint32_t a, std::uint32_t b, std::uint32_t c) {
  auto m = id_map::from_ranges({{0, a, 1}, {1, b, 1000}, {5000, c, 100}});
  REQUIRE_OK(m);
  return m.value();
}

}  // namespace

TEST_CASE("fault matrix: every syscall site x errno of every plan shape") {
  REQUIRE(faults::state() != MAP_FAILED);  // mapped here, shared with every child
  target t({"--pid", "--mount-proc", "--net", "--uts", "--ipc"});
  target u({"--user", "--net", "--uts"});
  map_identity(u.pid());
  test_user tu = ensure_user();
  auto truth = exec_spec::make({"/bin/true"});
  REQUIRE_OK(truth);
  const exec_spec& cmd = truth.value();
  auto nothing = [] {};
  std::vector<ns_join> user_paths{{ns_kind::user, proc_ns_path(u.pid(), ns_kind::user)},
                                  {ns_kind::net, proc_ns_path(u.pid(), ns_kind::net)},
                                  {ns_kind::uts, proc_ns_path(u.pid(), ns_kind::uts)}};
  std::vector<ns_join> scoped_paths{{ns_kind::net, proc_ns_path(t.pid(), ns_kind::net)},
                                    {ns_kind::uts, proc_ns_path(t.pid(), ns_kind::uts)}};

  std::vector<shape> shapes;
  shapes.push_back({"join_pid", true, nothing, [&] {
                      return from(join_pid(
                          t.pid(), ns_set{ns_kind::net, ns_kind::uts, ns_kind::ipc, ns_kind::pid}));
                    }});
  shapes.push_back(
      {"join_paths+user", true, nothing, [&] { return from(join_paths(user_paths)); }});
  shapes.push_back({"run_plan join+user", false, nothing, [&] {
                      plan p;
                      for (const auto& j : user_paths) p.join.push_back(j);
                      return run_and_wait(run_plan(p, cmd));
                    }});
  shapes.push_back({"run_plan create user+3 ranges", false, nothing, [&] {
                      plan p;
                      p.create = ns_set{ns_kind::user, ns_kind::mnt, ns_kind::uts, ns_kind::net};
                      p.uid_map = ranges3(0, 100000, 300000);
                      p.gid_map = ranges3(0, 100000, 300000);
                      return run_and_wait(run_plan(p, cmd));
                    }});
  shapes.push_back({"run_plan rootless newuidmap", false,
                    [&] {
                      if (::setgroups(0, nullptr) != 0 || ::setgid(tu.gid) != 0 ||
                          ::setuid(tu.uid) != 0 || ::chdir("/tmp") != 0)
                        ::_exit(60);
                    },
                    [&] {
                      plan p;
                      p.create = ns_set{ns_kind::user, ns_kind::uts, ns_kind::net};
                      p.uid_map = ranges3(tu.uid, tu.subuid, tu.subuid + 1000);
                      p.gid_map = ranges3(tu.gid, tu.subgid, tu.subgid + 1000);
                      p.rootless_euid = true;
                      p.uidmap_tool = "/usr/bin/newuidmap";
                      p.gidmap_tool = "/usr/bin/newgidmap";
                      return run_and_wait(run_plan(p, cmd));
                    }});
  shapes.push_back({"run_plan create pid (mirror)", false, nothing, [&] {
                      plan p;
                      p.create = ns_set{ns_kind::pid, ns_kind::uts};
                      return run_and_wait(run_plan(p, cmd));
                    }});
  shapes.push_back({"spawn_exec", false, nothing, [&] { return run_and_wait(spawn_exec(cmd)); }});
  shapes.push_back({"enter_scoped", false, nothing, [&] {
                      auto g = enter_scoped<net_ns, uts_ns>(t.pid());
                      if (!g) return from(g);
                      return from(g.value().restore());
                    }});
  shapes.push_back({"ns_home", false, nothing, [&] {
                      auto home = ns_home::open(ns_set::of<net_ns, uts_ns>());
                      if (!home) return from(home);
                      auto target_fds = opened_namespaces::open(scoped_paths);
                      if (!target_fds) return from(target_fds);
                      auto g = home.value().enter(target_fds.value());
                      if (!g) return from(g);
                      return from(g.value().restore());
                    }});

  const char* only = std::getenv("NSENTRY_MATRIX_SHAPE");
  int injections = 0, sites = 0;
  for (const auto& s : shapes) {
    if (only && s.name != only) continue;
    totals tt = matrix(s);
    injections += tt.injections;
    sites += tt.sites;
  }
  MESSAGE("fault matrix: ", injections, " injections over ", sites, " sites");
  std::printf("fault matrix: %d injections over %d sites\n", injections, sites);
  std::fflush(stdout);
  CHECK(injections > 0);
}

// Found by the matrix: a failed fstatat of /proc/thread-self/ns/<kind> during verification was
// taken for "not in the namespace" (errc::not_joined, errno lost). It is an error naming
// step::verify with the errno.
TEST_CASE("a failed verification stat is reported with its errno, not as 'not joined'") {
  target t({"--net", "--uts"});
  REQUIRE(faults::state() != MAP_FAILED);
  int rc = in_child([&] {
    std::vector<ns_join> paths{{ns_kind::net, proc_ns_path(t.pid(), ns_kind::net)}};
    // fstatat calls: the open checks, then verification; fail the last one (the verify).
    faults::reset();
    faults::install();
    nsentry::sys::calls = nsentry::sys::real_calls;
    int verify_call = 0;
    {
      int kid = in_child([&] {
        faults::install();
        (void)join_paths(paths);
        return 0;
      });
      if (kid != 0) return 90;
      verify_call = faults::state()->counts[faults::e_fstatat].load();
    }
    faults::reset(faults::e_fstatat, verify_call, EACCES);
    faults::install();
    auto r = join_paths(paths);
    nsentry::sys::calls = nsentry::sys::real_calls;
    EXPECT_C(!r);
    EXPECT_C(thread_ns_ino("net") == t.ino(ns_kind::net));  // it did join
    EXPECT_C(r.error() != errc::not_joined);
    EXPECT_C(r.error().errno_value() == EACCES);
    return 0;
  });
  CHECK(rc == 0);
}
