// Fault-injection matrix (issue 9, "Then prove it" 1): for each plan shape, the syscall sites it
// actually uses are recorded in one successful run (every sys::table entry wrapped by a
// counting override, counted across the processes it forks), then each site (the Nth call of
// an entry) x each relevant errno is failed once, in a forked child. Each injection must end in
// success (EINTR retried, an ENOSYS fallback taken) or an error naming its step (the failed
// call's, or the operation it served: names_right_step), with the caller's fds, children and
// thread namespaces unchanged and no process left. The shapes include runc-init's three stages
// under a runc-style parent (its exit and log contract). NSENTRY_MATRIX_SHAPE=<name> runs one
// shape; NSENTRY_MATRIX_VERBOSE=1 prints every error with the step it names.
#include "tests/fault_matrix.hpp"

#include <dirent.h>
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <sstream>

#include "nsentry/bootstrap.hpp"
#include "nsentry/executor.hpp"
#include "nsentry/join.hpp"
#include "nsentry/runc/container_command.hpp"
#include "nsentry/runc/init.hpp"
#include "nsentry/scoped_entry.hpp"
#include "nsentry/spawn.hpp"
#include "tests/exec_test_util.hpp"
#include "tests/runc_parent.hpp"

using namespace nsentry;
using namespace testutil;
using namespace nsentry::test;

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
  // ENOSYS from clone3 and pidfd_open has a fallback; runc-init has none (Linux >= 5.3).
  bool pidfd_fallbacks = true;
  bool check_step = true;  // the error must name the failed call's step (names_right_step)
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
bool fallback_expected(const shape& s, int e, int err) {
  using namespace faults;
  return err == ENOSYS && (((e == e_clone3 || e == e_pidfd_open) && s.pidfd_fallbacks) ||
                           e == e_close_range || e == e_sendfile);
}

// The steps an error may name when call `e` failed: the call's own, the operation it was part
// of (a /proc file written for a process, the pid report, a scoped entry's restore), or the
// channel exchange it served.
bool names_right_step(int e, nsentry::step st) {
  using namespace faults;
  using nsentry::step;
  for (step op : {step::oom_score_adj, step::setgroups, step::uid_map, step::gid_map, step::id_map,
                  step::timens_offsets, step::pid_report})
    if (st == op) return true;
  auto any = [st](std::initializer_list<step> l) {
    for (step s : l)
      if (s == st) return true;
    return false;
  };
  switch (e) {
    case e_openat:
      return any({step::open});
    case e_close:
      return any({step::close});
    case e_read:
      return any({step::read, step::recv, step::sync, step::bootstrap});
    case e_write:
      return any({step::write, step::send});
    case e_fstat:
    case e_fstatfs:
      return any({step::fstat});
    case e_fstatat:
      return any({step::stat, step::verify});
    case e_socketpair:
      return any({step::socketpair});
    case e_pipe2:
      return any({step::pipe});
    case e_setns:
      return any({step::setns, step::restore});
    case e_unshare:
      return any({step::unshare});
    case e_clone3:
    case e_clone:
    case e_fork:
      return any({step::clone3, step::clone, step::fork});
    case e_pidfd_open:
      return any({step::pidfd_open});
    case e_kill:
      return any({step::kill});
    case e_waitid:
      return any({step::wait});
    case e_setresuid:
      return any({step::setresuid});
    case e_setresgid:
      return any({step::setresgid});
    case e_setgroups:
      return any({step::setgroups});
    case e_setsid:
      return any({step::setsid});
    case e_prctl:
      return any({step::prctl});
    case e_execve:
      return any({step::exec});
    case e_sendmsg:
      return any({step::send, step::sync});
    case e_recvmsg:
      return any({step::recv, step::sync});
    case e_sigaction:
      return any({step::sigaction});
    case e_thread_sigmask:
      return any({step::sigprocmask});
    default:
      return false;
  }
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
  v_fallback = 14,    // ENOSYS with a fallback, yet an error
  v_not_fired = 15,   // the site was not reached this time (not a failure)
  v_wrong_step = 16,  // the error names a step the failed call was no part of
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
  if (fired && fallback_expected(s, entry, err) && !o.ok) {
    say("ENOSYS fallback not taken");
    return v_fallback;
  }
  if (!fired) return v_not_fired;
  if (s.check_step && !o.ok && !names_right_step(entry, o.step)) {
    say(("names step " + std::string(name_of(o.step))).c_str());
    return v_wrong_step;
  }
  if (std::getenv("NSENTRY_MATRIX_VERBOSE") && !o.ok) say(std::string(name_of(o.step)).c_str());
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

// --- runc-init: stage-0 in a forked child of a runc-style parent (tests/runc_parent.hpp) -----

// The step a runc-init fatal line names: the longest step name in it that is followed by '(',
// ':' or ' ' ("setns(net) on /proc/1/ns/net: ...", "stage-1: clone3: ...", "exec /bin/true:
// ..."); step::none when none is. A name that ends the text is not one: that is the errno text's
// last word (a stderr "FATAL: ... fstat failed: Invalid argument" line has no closing quote).
nsentry::step step_named_in(const std::string& text) {
  nsentry::step best = nsentry::step::none;
  std::size_t best_len = 0;
  for (std::size_t i = 1; i < step_names.size(); ++i) {
    const std::string_view name = step_names[i];
    for (std::size_t at = text.find(name); at != std::string::npos; at = text.find(name, at + 1)) {
      const std::size_t end = at + name.size();
      const bool starts = at == 0 || text[at - 1] == ' ' || text[at - 1] == '"';
      const bool ends =
          end < text.size() && (text[end] == '(' || text[end] == ':' || text[end] == ' ');
      if (starts && ends && name.size() > best_len) {
        best = static_cast<nsentry::step>(i);
        best_len = name.size();
      }
    }
  }
  return best;
}

// runc's contract, seen from its parent: success is a pid report and three clean exits; a
// failure is stage-0 exiting 1 (or, past stage-0's part, stage-2 exiting 126/127 after a failed
// exec) with a "fatal" JSON line on the log pipe (or "FATAL:" on stderr when the log pipe
// itself is unusable) that names the step; every stage the init
// started is dead and reaped (CLONE_PARENT: they are the parent's children), none timed out.
outcome from_runc(const result<runc_run>& rr) {
  outcome o;
  if (!rr) {
    o.step = rr.error().step;
    o.message = "harness: " + rr.error().message();
    return o;
  }
  const runc_run& r = rr.value();
  std::string fatal, first_fatal;
  bool lines_ok = true;
  for (const auto& l : r.log_lines) {
    if (l.rfind("{\"level\":\"", 0) != 0 || l.back() != '}') lines_ok = false;
    if (l.rfind("{\"level\":\"fatal\"", 0) != 0) continue;
    if (fatal.empty()) first_fatal = l;
    fatal += (fatal.empty() ? "" : " | ") + l;
  }
  // A log pipe the init cannot use (its examination failed): "FATAL: <message>" on stderr.
  if (fatal.empty()) {
    std::istringstream err(r.stderr_text);
    for (std::string l; std::getline(err, l);)
      if (l.rfind("FATAL: ", 0) == 0 && fatal.empty()) fatal = first_fatal = l;
  }
  // Stages stage-0 never reported (no pid report): dead and reaped, whether they had done
  // their part (0), failed (1) or were killed.
  bool strays_dead = true;
  for (const auto& st : r.strays)
    strays_dead &= (st.signal == 0 && (st.code == 0 || st.code == 1)) || st.signal == SIGKILL;
  const bool all_zero = r.stage0.exited_zero() && r.pids && r.stage1.exited_zero() &&
                        r.stage2.exited_zero() && r.strays.empty();
  if (r.timed_out || !lines_ok || !strays_dead) {
    // Not runc's contract: reported as an error without a step (a failed check).
    o.message = std::string(r.timed_out ? "timed out; " : "") +
                (lines_ok ? "" : "a log line is not JSON; ") +
                (strays_dead ? "" : "a stage exited otherwise than 1 or SIGKILL; ") +
                "log: " + r.log_bytes;
    return o;
  }
  if (all_zero && fatal.empty()) {
    o.ok = true;
    return o;
  }
  const bool stage0_failed = r.stage0.reaped && r.stage0.code == 1;
  const bool exec_failed =
      r.stage0.exited_zero() && r.stage2.reaped && (r.stage2.code == 126 || r.stage2.code == 127);
  o.message = fatal;
  if ((stage0_failed || exec_failed) && !fatal.empty()) {
    // The first fatal line is the failing stage's own (a stage-0 that then finds the stage
    // gone may add one of its own, e.g. "send: Broken pipe" for the ack it could not give).
    o.step = step_named_in(first_fatal);
  } else {
    o.message += " (stage-0 exit " + std::to_string(r.stage0.code) + ", signal " +
                 std::to_string(r.stage0.signal) + "; stage-2 exit " +
                 std::to_string(r.stage2.code) + "; log: " + r.log_bytes + ")";
  }
  return o;
}

// A whole `runc init` (runc::init, then the container command /bin/true) under the harness,
// with the counting table installed in stage-0 only (the harness itself stays on the real
// calls: its fds and waits are not the init's sites).
outcome run_runc(const std::string& message, const exec_spec& cmd) {
  nsentry::sys::calls = nsentry::sys::real_calls;
  runc_parent_options o;
  o.log_pipe = true;
  o.message = {message};
  o.timeout = std::chrono::milliseconds(8000);
  o.run_in_child = [&](char* const* envp) {
    environ = const_cast<char**>(envp);  // exec_container_command scans environ
    faults::install();
    runc::init_options opt;
    opt.protocol = runc_protocol::v1_1;
    opt.envp = envp;
    if (runc::init(opt) == runc::init_role::container) runc::exec_container_command(cmd);
    return 99;  // not an init: the environment was not seen
  };
  auto rr = run_runc_init(o);
  // A stage that stage-0 could not kill ends by itself once stage-0's channel is gone: give it
  // a bounded moment and reap it as a stray. (The process runs nothing else: every child is a
  // stage.) One still running after that is left behind: run_one's child count fails.
  for (int i = 0; rr && i < 200 && children_now() > 0; ++i) {
    siginfo_t info{};
    if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG) == -1) break;
    if (info.si_pid == 0) {
      ::usleep(10000);
      continue;
    }
    process_status st;
    st.pid = info.si_pid;
    st.reaped = true;
    (info.si_code == CLD_EXITED ? st.code : st.signal) = info.si_status;
    rr.value().strays.push_back(st);
  }
  return from_runc(rr);
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

  // runc-init: stage-0 (message, oom, opens, clone), stage-1 (joins, user namespace and its
  // maps through stage-0, unshares, the stage-2 clone), stage-2 (setsid, ids, groups, exec).
  auto true_cmd = runc::container_command({"/bin/true"}, nullptr);
  REQUIRE_OK(true_cmd);
  const exec_spec& runc_cmd = true_cmd.value();
  std::string runc_join_msg, runc_create_msg;
  {
    plan p;
    p.join = {{ns_kind::net, proc_ns_path(t.pid(), ns_kind::net)},
              {ns_kind::uts, proc_ns_path(t.pid(), ns_kind::uts)},
              {ns_kind::ipc, proc_ns_path(t.pid(), ns_kind::ipc)},
              {ns_kind::pid, proc_ns_path(t.pid(), ns_kind::pid)}};
    p.oom_score_adj = 10;
    auto b = bootstrap::encode(p, runc_protocol::v1_1);
    REQUIRE_OK(b);
    runc_join_msg.assign(reinterpret_cast<const char*>(b.value().data()), b.value().size());
  }
  {
    plan p;
    p.create = ns_set{ns_kind::user, ns_kind::mnt, ns_kind::uts, ns_kind::ipc, ns_kind::pid};
    p.join = {{ns_kind::net, proc_ns_path(t.pid(), ns_kind::net)}};
    p.uid_map = ranges3(0, 100000, 300000);
    p.gid_map = ranges3(0, 100000, 300000);
    auto b = bootstrap::encode(p, runc_protocol::v1_1);
    REQUIRE_OK(b);
    runc_create_msg.assign(reinterpret_cast<const char*>(b.value().data()), b.value().size());
  }
  shapes.push_back({"runc-init join net+uts+ipc+pid, oom", false, nothing,
                    [&] { return run_runc(runc_join_msg, runc_cmd); }, false, true});
  shapes.push_back({"runc-init create user+mnt+uts+ipc+pid, 3-range maps, join net", false, nothing,
                    [&] { return run_runc(runc_create_msg, runc_cmd); }, false, true});

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

// The partial-join contract (join.hpp, docs/guide.md): a setns that fails after an earlier one
// succeeded is not rolled back; the error names the failed kind and path.
TEST_CASE("join_paths: a later setns fails, the earlier join stays, the error names the later") {
  target t({"--net", "--uts"});
  REQUIRE(faults::state() != MAP_FAILED);
  int rc = in_child([&] {
    const ino_t own_uts = thread_ns_ino("uts");
    const std::string uts_path = proc_ns_path(t.pid(), ns_kind::uts);
    std::vector<ns_join> paths{{ns_kind::net, proc_ns_path(t.pid(), ns_kind::net)},
                               {ns_kind::uts, uts_path}};
    faults::reset(faults::e_setns, 2, EINVAL);
    faults::install();
    auto r = join_paths(paths);
    nsentry::sys::calls = nsentry::sys::real_calls;
    EXPECT_C(faults::state()->fired.load() == 1);
    EXPECT_C(!r);
    EXPECT_C(r.error().step == step::setns);
    EXPECT_C(r.error().kind == ns_kind::uts);
    EXPECT_C(r.error().path == uts_path);
    EXPECT_C(r.error().errno_value() == EINVAL);
    EXPECT_C(thread_ns_ino("net") == t.ino(ns_kind::net));  // joined, and left joined
    EXPECT_C(thread_ns_ino("uts") == own_uts);
    return 0;
  });
  CHECK(rc == 0);
}
