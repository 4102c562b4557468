// runc-init end to end: `nsentry runc-init` (and a program built with runc/constructor.hpp)
// driven by a runc-style parent (tests/runc_parent.hpp): the parent writes the bootstrap
// message on fd 3, strictly decodes the pid report, reaps stage-0, stage-1 and stage-2 (its own
// children through CLONE_PARENT), and stage-2 execs a shell that reports what it sees.
#include <doctest/doctest.h>
#include <grp.h>
#include <sys/prctl.h>

#include <algorithm>
#include <boost/json.hpp>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "nsentry/bootstrap.hpp"
#include "nsentry/join.hpp"
#include "nsentry/ns.hpp"
#include "tests/captures.hpp"
#include "tests/exec_test_util.hpp"
#include "tests/runc_checks.hpp"
#include "tests/runc_parent.hpp"

using namespace nsentry;
using namespace nsentry::test;
using namespace testutil;

namespace {

const std::string runfiles_nsentry = "tools/nsentry";
const std::string runfiles_program = "tests/runc_constructor_program";

// What stage-2 sees, as key=value lines on stderr (the harness captures stderr).
const char* report_script = R"SH(exec 1>&2
for k in user ipc uts net pid mnt cgroup time; do echo "ns.$k=$(stat -L -c %i /proc/self/ns/$k)"; done
echo "pid=$$"
echo "uid=$(id -u)"
echo "gid=$(id -g)"
echo "groups=$(sed -n 's/^Groups:[[:space:]]*//p' /proc/self/status | sed 's/[[:space:]]*$//')"
echo "oom=$(cat /proc/self/oom_score_adj)"
echo "setgroups=$(cat /proc/self/setgroups)"
echo "sid=$(cut -d' ' -f6 /proc/self/stat)"
while read a b c; do echo "uid_map=$a $b $c"; done < /proc/self/uid_map
while read a b c; do echo "gid_map=$a $b $c"; done < /proc/self/gid_map
while read a b c; do echo "timens=$a $b $c"; done < /proc/self/timens_offsets
echo "end=1")SH";

std::vector<std::string> report_argv(const std::string& bin, std::vector<std::string> flags = {}) {
  std::vector<std::string> a{bin, "runc-init"};
  a.insert(a.end(), flags.begin(), flags.end());
  a.insert(a.end(), {"--", "/bin/sh", "-c", report_script});
  return a;
}

using seen = std::multimap<std::string, std::string>;

seen parse_seen(const std::string& text) {
  seen out;
  std::size_t at = 0;
  while (at < text.size()) {
    auto nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    auto line = text.substr(at, nl - at);
    auto eq = line.find('=');
    if (eq != std::string::npos) out.emplace(line.substr(0, eq), line.substr(eq + 1));
    at = nl + 1;
  }
  return out;
}

std::string one(const seen& s, const std::string& key) {
  auto [a, b] = s.equal_range(key);
  REQUIRE_MESSAGE(a != b, "stage-2 did not report " << key);
  REQUIRE_MESSAGE(std::next(a) == b, "stage-2 reported " << key << " twice");
  return a->second;
}

std::string all(const seen& s, const std::string& key) {
  std::string out;
  auto [a, b] = s.equal_range(key);
  for (; a != b; ++a) out += a->second + "\n";
  return out;
}

std::string encode(const plan& p, runc_protocol v = runc_protocol::v1_1) {
  auto b = bootstrap::encode(p, v);
  REQUIRE_MESSAGE(b.has_value(), b.error().message());
  return captures::as_string(b.value());
}

std::set<pid_t> children_set() {
  auto c = children_of_self();
  return {c.begin(), c.end()};
}

// A successful run: the pid report, three clean exits, nothing else left.
void check_success(const runc_run& r, const std::set<pid_t>& before) {
  CAPTURE(r.stderr_text);
  CAPTURE(r.pid_error);
  CAPTURE(r.log_bytes);
  CHECK(r.stage0.exited_zero());
  REQUIRE(r.pids.has_value());
  CHECK(r.pids->stage1 > 0);
  CHECK(r.pids->stage2 > 0);
  CHECK(r.stage1.exited_zero());
  CHECK(r.stage2.exited_zero());
  CHECK(r.strays.empty());
  CHECK_FALSE(r.timed_out);
  check_log_lines(r);
  CHECK(children_set() == before);
}

// A fatal run: exit 1, a fatal line naming `needle`, and nothing left running.
void check_fatal(const runc_run& r, const std::set<pid_t>& before, std::string_view needle) {
  CAPTURE(r.stderr_text);
  CAPTURE(r.log_bytes);
  CHECK(r.stage0.reaped);
  CHECK(r.stage0.code == 1);
  CHECK_FALSE(r.timed_out);
  check_log_lines(r);
  CHECK(has_line(r, "fatal", needle));
  for (const auto& s : r.strays) CHECK((s.code == 1 || s.signal == SIGKILL));
  CHECK(children_set() == before);
}

ino_t own_ino(ns_kind k) { return ns_ino("/proc/self/ns/" + std::string(name_of(k))); }

// The namespaces to expect: created ones differ from ours, joined ones are the target's.
void check_namespaces(const seen& s, const plan& p, const std::map<ns_kind, ino_t>& joined) {
  for (ns_kind k : all_ns_kinds) {
    CAPTURE(name_of(k));
    auto got = static_cast<ino_t>(std::stoull(one(s, "ns." + std::string(name_of(k)))));
    if (p.create.contains(k)) {
      CHECK(got != own_ino(k));
    } else if (joined.count(k)) {
      CHECK(got == joined.at(k));
    } else {
      CHECK(got == own_ino(k));
    }
  }
}

std::string map_lines(const id_map& m) {
  std::string out;
  for (const auto& r : m.ranges())
    out += std::to_string(r.inside) + " " + std::to_string(r.outside) + " " +
           std::to_string(r.count) + "\n";
  return out;
}

// What stage-2 must see for plan `p` (as rewritten): ids, maps, setgroups, groups, oom, sid.
void check_stage2(const runc_run& r, const plan& p, const std::map<ns_kind, ino_t>& joined,
                  int inherited_oom, const std::string& inherited_groups,
                  const std::string& joined_uid_map = "") {
  auto s = parse_seen(r.stderr_text);
  CAPTURE(r.stderr_text);
  REQUIRE(one(s, "end") == "1");
  check_namespaces(s, p, joined);
  CHECK(one(s, "uid") == "0");
  CHECK(one(s, "gid") == "0");
  CHECK(one(s, "sid") == std::to_string(r.pids->stage2));  // setsid(): its own session
  CHECK(one(s, "oom") == std::to_string(p.oom_score_adj.value_or(inherited_oom)));
  if (p.create.contains(ns_kind::pid)) CHECK(one(s, "pid") == "1");
  if (p.create.contains(ns_kind::user)) {
    CHECK(all(s, "uid_map") == map_lines(p.uid_map));
    CHECK(all(s, "gid_map") == map_lines(p.gid_map));
    CHECK(one(s, "setgroups") == (p.deny_setgroups() ? "deny" : "allow"));
  } else if (!joined_uid_map.empty()) {
    CHECK(all(s, "uid_map") == joined_uid_map);
  } else {
    CHECK(all(s, "uid_map") == "0 0 4294967295\n");
  }
  if (p.drop_groups()) {
    CHECK(one(s, "groups") == "");
  } else if (!p.create.contains(ns_kind::user) && joined.count(ns_kind::user) == 0) {
    CHECK(one(s, "groups") == inherited_groups);
  }
}

// Test-wide settings that make inheritance observable: an oom_score_adj and a supplementary
// group that no message sets, restored afterwards.
struct observable_defaults {
  std::string saved_oom;
  std::vector<gid_t> saved_groups;
  observable_defaults() {
    saved_oom = slurp("/proc/self/oom_score_adj");
    REQUIRE(write_file("/proc/self/oom_score_adj", "3").has_value());
    saved_groups.resize(static_cast<std::size_t>(::getgroups(0, nullptr)));
    REQUIRE(::getgroups(static_cast<int>(saved_groups.size()), saved_groups.data()) >= 0);
    gid_t g = 4242;
    REQUIRE(::setgroups(1, &g) == 0);
  }
  ~observable_defaults() {
    (void)write_file("/proc/self/oom_score_adj", saved_oom);
    ::setgroups(saved_groups.size(), saved_groups.data());
  }
};

// A network namespace made with `ip netns add`, deleted at scope exit.
struct netns {
  std::string name = "nsentry-runc-" + std::to_string(::getpid());
  netns() { REQUIRE(sh("ip netns add " + name).status == 0); }
  ~netns() { sh("ip netns delete " + name); }
  std::string path() const { return "/run/netns/" + name; }
};

// The capture's plan with its /proc/<pid>/ns/* and /run/netns/capns paths pointed at live
// targets; `joined` receives the inode each joined kind must show.
plan rewrite(const captures::capture& c, pid_t target, const std::string& netns_path,
             std::map<ns_kind, ino_t>& joined) {
  auto p = bootstrap::parse(c.bytes, runc_protocol::v1_1);
  REQUIRE_MESSAGE(p.has_value(), p.error().message());
  plan out = p.value();
  for (auto& j : out.join) {
    if (j.path == "/run/netns/capns") {
      j.path = netns_path;
    } else {
      REQUIRE(j.path.rfind("/proc/", 0) == 0);
      j.path = proc_ns_path(target, j.kind);
    }
    joined[j.kind] = ns_ino(j.path);
    REQUIRE(joined[j.kind] != 0);
  }
  return out;
}

bool has_cap_sys_resource() {
  std::istringstream in(slurp("/proc/self/status"));
  for (std::string line; std::getline(in, line);)
    if (line.rfind("CapEff:", 0) == 0) return (std::stoull(line.substr(7), nullptr, 16) >> 24) & 1;
  return false;
}

bool is_rootless(const std::string& name) {
  return name == "e_rootless" || name == "e3_rootless_oom" || name == "h3_exec_rootless";
}

// --- running the harness as another user (rootless) -----------------------------------------

void put_status(std::string& out, const process_status& s) {
  out += std::to_string(s.pid) + " " + std::to_string(s.reaped) + " " + std::to_string(s.code) +
         " " + std::to_string(s.signal) + "\n";
}

process_status get_status(std::istringstream& in) {
  process_status s;
  int reaped = 0;
  in >> s.pid >> reaped >> s.code >> s.signal;
  s.reaped = reaped != 0;
  return s;
}

// Runs the harness in a child that has become `u`, and brings the result back over a pipe.
runc_run run_as(const test_user& u, const runc_parent_options& o) {
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  std::fflush(nullptr);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(p[0]);
    if (::setgroups(0, nullptr) != 0 || ::setgid(u.gid) != 0 || ::setuid(u.uid) != 0 ||
        ::chdir("/tmp") != 0)
      ::_exit(90);
    auto r = run_runc_init(o);
    if (!r) ::_exit(91);
    const runc_run& x = r.value();
    std::string out;
    for (const auto* s : {&x.stage0, &x.stage1, &x.stage2}) put_status(out, *s);
    out += std::to_string(x.pids ? x.pids->stage1 : 0) + " " +
           std::to_string(x.pids ? x.pids->stage2 : 0) + " " + std::to_string(x.timed_out) + " " +
           std::to_string(x.strays.size()) + " " + std::to_string(children_of_self().size()) + "\n";
    for (const auto& s : x.strays) put_status(out, s);
    out += std::to_string(x.stderr_text.size()) + "\n" + x.stderr_text;
    out += std::to_string(x.log_bytes.size()) + "\n" + x.log_bytes;
    (void)write_all(p[1], out);
    ::_exit(0);
  }
  ::close(p[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(p[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
  ::close(p[0]);
  int st = 0;
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  REQUIRE_MESSAGE(WIFEXITED(st), "status " << st);
  REQUIRE(WEXITSTATUS(st) == 0);
  std::istringstream in(text);
  runc_run r;
  r.stage0 = get_status(in);
  r.stage1 = get_status(in);
  r.stage2 = get_status(in);
  pid_t s1 = 0, s2 = 0;
  int timed_out = 0;
  std::size_t nstrays = 0, left = 0;
  in >> s1 >> s2 >> timed_out >> nstrays >> left;
  if (s1 != 0) r.pids = runc::pid_report{s1, s2};
  r.timed_out = timed_out != 0;
  for (std::size_t i = 0; i < nstrays; ++i) r.strays.push_back(get_status(in));
  CHECK(left == 0);  // nothing left in the unprivileged harness either
  auto blob = [&](std::string& into) {
    std::size_t len = 0;
    in >> len;
    in.get();
    into.resize(len);
    in.read(into.data(), static_cast<std::streamsize>(len));
  };
  blob(r.stderr_text);
  blob(r.log_bytes);
  std::size_t at = 0;
  while (at < r.log_bytes.size()) {
    auto nl = r.log_bytes.find('\n', at);
    if (nl == std::string::npos) nl = r.log_bytes.size();
    r.log_lines.push_back(r.log_bytes.substr(at, nl - at));
    at = nl + 1;
  }
  return r;
}

// A copy of a runfile where an unprivileged user can execute it.
struct public_copy {
  std::string path;
  explicit public_copy(const std::string& from) {
    path = "/tmp/nsentry-runc-init-" + std::to_string(::getpid()) + "-" +
           from.substr(from.rfind('/') + 1);
    REQUIRE(sh("cp " + from + " " + path + " && chmod 755 " + path).status == 0);
  }
  ~public_copy() { ::unlink(path.c_str()); }
};

}  // namespace

// --- runc's own nsenter tests (spec §8) --------------------------------------------------------

TEST_CASE("runc nsenter_test: valid paths, invalid path, wrong type, child logging") {
  auto before = children_set();
  const std::string self_pid_ns = "/proc/" + std::to_string(::getpid()) + "/ns/pid";
  plan valid;
  valid.create = ns_set{ns_kind::net};
  valid.join = {{ns_kind::pid, self_pid_ns}};

  SUBCASE("1. valid paths: exit 0, both pids reported and reaped") {
    auto r = run([&](runc_parent_options& o) {
      o.argv = {runfiles_nsentry, "runc-init"};
      o.message = {encode(valid)};
    });
    check_success(r, before);
  }
  SUBCASE("2. invalid path: non-zero exit") {
    plan p = valid;
    p.join = {{ns_kind::pid, "/proc/-1/ns/pid"}};
    auto r = run([&](runc_parent_options& o) {
      o.argv = {runfiles_nsentry, "runc-init"};
      o.log_pipe = true;
      o.message = {encode(p)};
    });
    CHECK_FALSE(r.pids.has_value());
    check_fatal(r, before, "open(pid) on /proc/-1/ns/pid: No such file or directory");
  }
  SUBCASE("3. wrong type: non-zero exit") {
    plan p = valid;
    p.create = {};
    p.join = {{ns_kind::net, self_pid_ns}};
    auto r = run([&](runc_parent_options& o) {
      o.argv = {runfiles_nsentry, "runc-init"};
      o.log_pipe = true;
      o.message = {encode(p)};
    });
    CHECK_FALSE(r.pids.has_value());
    check_fatal(r, before, "nsexec-1[");
    CHECK(has_line(r, "fatal", "setns(net) on " + self_pid_ns + ": Invalid argument"));
    CHECK(r.strays.size() == 1);  // stage-1, never reported, reaped by the harness
  }
  SUBCASE("4. child logging: every line is {level, msg}; exit 0") {
    auto r = run([&](runc_parent_options& o) {
      o.argv = {runfiles_nsentry, "runc-init"};
      o.log_pipe = true;
      o.message = {encode(valid)};
    });
    check_success(r, before);
    REQUIRE(!r.log_lines.empty());
    CHECK(
        has_line(r, "debug", "nsexec-0[" + std::to_string(r.stage0.pid) + "]: ~> nsexec stage-0"));
    CHECK(has_line(r, "debug",
                   "nsexec-1[" + std::to_string(r.pids->stage1) + "]: ~> nsexec stage-1"));
    CHECK(has_line(r, "debug",
                   "nsexec-2[" + std::to_string(r.pids->stage2) + "]: ~> nsexec stage-2"));
    CHECK(r.stderr_text.empty());
  }
}

// --- every shared capture ----------------------------------------------------------------------

TEST_CASE("every runc 1.1.5 capture, rewritten to live targets, through nsentry runc-init") {
  observable_defaults defaults;
  const int inherited_oom = 3;
  auto all_captures = captures::all();
  int rootful = 0, rootless = 0;
  for (const auto& c : all_captures) {
    if (is_rootless(c.name)) continue;
    CAPTURE(c.name);
    netns ns;
    target t({"--ipc", "--uts", "--net", "--pid", "--mount"});
    std::map<ns_kind, ino_t> joined;
    plan p = rewrite(c, t.pid(), ns.path(), joined);
    auto with_target = children_set();
    auto r = run([&](runc_parent_options& o) {
      o.argv = report_argv(runfiles_nsentry, {"--runc", "1.1"});
      o.log_pipe = true;
      o.message = {encode(p)};
    });
    if (p.oom_score_adj && *p.oom_score_adj < 0 && !has_cap_sys_resource()) {
      // Going below the oom_score_adj_min this process inherited (0) needs CAP_SYS_RESOURCE,
      // which this machine's root may lack: then the init must fail at that step, as runc's.
      check_fatal(r, with_target, "oom_score_adj on /proc/self/oom_score_adj: Permission denied");
      CHECK(r.strays.empty());
      ++rootful;
      continue;
    }
    check_success(r, with_target);
    check_stage2(r, p, joined, inherited_oom, "4242");
    ++rootful;
  }
  CHECK(rootful == 13);

  // Rootless: as an unprivileged user with subordinate ranges; the captures' uid/gid 1001
  // become that user's.
  test_user u = ensure_user();
  public_copy bin(runfiles_nsentry);
  for (const auto& c : all_captures) {
    if (!is_rootless(c.name)) continue;
    CAPTURE(c.name);
    std::unique_ptr<target> t;
    std::map<ns_kind, ino_t> joined;
    plan p;
    std::string joined_map;
    if (c.name == "h3_exec_rootless") {
      // `runc exec` into a rootless container: its namespaces, made by the same user.
      t = std::make_unique<target>(
          std::vector<std::string>{"--user", "--map-root-user", "--ipc", "--uts", "--pid",
                                   "--mount"},
          std::vector<std::string>{"setpriv", "--reuid=" + std::to_string(u.uid),
                                   "--regid=" + std::to_string(u.gid), "--clear-groups"});
      p = rewrite(c, t->pid(), "", joined);
      joined_map = "0 " + std::to_string(u.uid) + " 1\n";
    } else {
      p = rewrite(c, 0, "", joined);
      auto um = id_map::from_ranges({{0, u.uid, 1}});
      auto gm = id_map::from_ranges({{0, u.gid, 1}});
      REQUIRE(um.has_value());
      REQUIRE(gm.has_value());
      CHECK(map_lines(p.uid_map) == "0 1001 1\n");
      p.uid_map = um.value();
      p.gid_map = gm.value();
    }
    auto with_target = children_set();
    runc_parent_options o;
    o.argv = report_argv(bin.path, {"--runc", "1.1"});
    o.log_pipe = true;
    o.message = {encode(p)};
    auto r = run_as(u, o);
    CAPTURE(r.stderr_text);
    CAPTURE(r.log_bytes);
    CHECK(r.stage0.exited_zero());
    REQUIRE(r.pids.has_value());
    CHECK(r.stage1.exited_zero());
    CHECK(r.stage2.exited_zero());
    CHECK(r.strays.empty());
    check_log_lines(r);
    check_stage2(r, p, joined, inherited_oom, "", joined_map);
    CHECK(children_set() == with_target);
    ++rootless;
  }
  CHECK(rootless == 3);
}

// --- protocol 1.2: time offsets ----------------------------------------------------------------

TEST_CASE("spec §4's 1.2 example: a new time namespace with its offsets, written before stage-2") {
  auto before = children_set();
  plan p;
  p.create = ns_set{ns_kind::user, ns_kind::mnt, ns_kind::uts,    ns_kind::ipc,
                    ns_kind::pid,  ns_kind::net, ns_kind::cgroup, ns_kind::time};
  p.uid_map = id_map::from_ranges({{0, 100000, 65536}}).value();
  p.gid_map = p.uid_map;
  p.setgroups = true;
  p.oom_score_adj = 100;
  p.time_offsets = {{time_clock::monotonic, 172800, 0}};
  std::string msg = encode(p, runc_protocol::v1_2);
  CHECK(msg.size() == 112);  // the spec's byte count
  auto r = run([&](runc_parent_options& o) {
    o.argv = report_argv(runfiles_nsentry, {"--runc", "1.2"});
    o.log_pipe = true;
    o.message = {msg};
  });
  check_success(r, before);
  auto s = parse_seen(r.stderr_text);
  CAPTURE(r.stderr_text);
  CHECK(all(s, "timens") == "monotonic 172800 0\nboottime 0 0\n");
  check_stage2(r, p, {}, 0, "");
  // _NSENTRY_RUNC_PROTOCOL=1.1 overrides --runc: attribute 27290 is then MOUNT_SOURCES.
  auto r11 = run([&](runc_parent_options& o) {
    o.argv = report_argv(runfiles_nsentry, {"--runc", "1.2"});
    o.env = {"_NSENTRY_RUNC_PROTOCOL=1.1"};
    o.log_pipe = true;
    o.message = {msg};
  });
  check_fatal(r11, before, "attribute 27290");
}

// --- protocol 1.1: mount sources -----------------------------------------------------------------

TEST_CASE("MOUNT_SOURCES: stage-1 gets each source, opened inside its mount namespace, on its fd") {
  auto before = children_set();
  // A directory the container's root (host uid 100000) could not reach by path itself.
  char tmpl[] = "/tmp/nsentry-mount-source-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  struct cleanup {
    std::string d;
    ~cleanup() { ::rmdir(d.c_str()); }
  } cleanup_dir{dir};
  REQUIRE(::chmod(dir.c_str(), 0700) == 0);

  plan p;
  p.create = ns_set{ns_kind::user, ns_kind::mnt, ns_kind::pid};
  p.uid_map = id_map::from_ranges({{0, 100000, 65536}}).value();
  p.gid_map = p.uid_map;
  p.mount_sources = std::vector<std::string>{"", dir, ""};
  const char* script = R"SH(exec 1>&2
echo "fd7=$(readlink /proc/self/fd/7)"
if [ -e /proc/self/fd/7 ]; then echo open7=1; else echo open7=0; fi
echo "uid=$(id -u)")SH";
  auto argv = std::vector<std::string>{runfiles_nsentry, "runc-init", "--runc", "1.1", "--",
                                       "/bin/sh",        "-c",        script};

  SUBCASE("the fd arrives on its number, without close-on-exec") {
    auto r = run([&](runc_parent_options& o) {
      o.argv = argv;
      o.env = {"_LIBCONTAINER_MOUNT_FDS=[-1,7,-1]"};
      o.log_pipe = true;
      o.message = {encode(p)};
    });
    check_success(r, before);
    auto s = parse_seen(r.stderr_text);
    CAPTURE(r.stderr_text);
    CHECK(one(s, "fd7") == dir);
    CHECK(one(s, "open7") == "1");
    CHECK(one(s, "uid") == "0");
    CHECK(has_line(r, "debug", "stage-1 requested mount sources"));
  }
  SUBCASE("a source that cannot be opened: fatal, naming it; nothing left") {
    plan q = p;
    q.mount_sources = std::vector<std::string>{"", dir + "/missing", ""};
    auto r = run([&](runc_parent_options& o) {
      o.argv = argv;
      o.env = {"_LIBCONTAINER_MOUNT_FDS=[-1,7,-1]"};
      o.log_pipe = true;
      o.message = {encode(q)};
    });
    CHECK_FALSE(r.pids.has_value());
    check_fatal(r, before, dir + "/missing");
  }
  SUBCASE("_LIBCONTAINER_MOUNT_FDS missing, malformed or not matching: fatal before any stage") {
    const std::pair<std::string, std::string> cases[] = {
        {"", "MOUNT_SOURCES without _LIBCONTAINER_MOUNT_FDS"},
        {"_LIBCONTAINER_MOUNT_FDS=-1,7,-1]", "missing '['"},
        {"_LIBCONTAINER_MOUNT_FDS=[-1,7,-1", "missing ']'"},
        {"_LIBCONTAINER_MOUNT_FDS=[-1,x,-1]", "not a number"},
        {"_LIBCONTAINER_MOUNT_FDS=[-1,2147483648,-1]", "out of range"},
        {"_LIBCONTAINER_MOUNT_FDS=[-1,-2,-1]", "out of range"},
        {"_LIBCONTAINER_MOUNT_FDS=[-1,7]", "2 fds for 3 mounts"},
        {"_LIBCONTAINER_MOUNT_FDS=[-1,-1,-1]", "no fd for mount source " + dir},
        {"_LIBCONTAINER_MOUNT_FDS=[8,7,-1]", "fd 8 for mount 0, which has no source"},
        {"_LIBCONTAINER_MOUNT_FDS=[-1,3,-1]", "fd 3 for mount source " + dir},
    };
    for (const auto& [env, needle] : cases) {
      CAPTURE(env);
      auto r = run([&](runc_parent_options& o) {
        o.argv = argv;
        if (!env.empty()) o.env = {env};
        o.log_pipe = true;
        o.message = {encode(p)};
      });
      CHECK_FALSE(r.pids.has_value());
      check_fatal(r, before, needle);
      CHECK(r.strays.empty());  // refused before stage-1 exists
    }
  }
}

// --- transport ----------------------------------------------------------------------------------

TEST_CASE("protocol 1.1 writes one 0x00 before reading the message; protocol 1.2 writes none") {
  auto before = children_set();
  plan p;
  p.create = ns_set{ns_kind::net};
  for (const char* v : {"1.1", "1.2"}) {
    CAPTURE(v);
    const bool v11 = std::string_view(v) == "1.1";
    auto r = run([&](runc_parent_options& o) {
      o.argv = {runfiles_nsentry, "runc-init", "--runc", v};
      o.message = {encode(p, v11 ? runc_protocol::v1_1 : runc_protocol::v1_2)};
    });
    check_success(r, before);
    CHECK(r.setup_bytes == (v11 ? std::string(1, '\0') : std::string()));
    // Before the message is read: an init that gets no message at all has written it already.
    auto none = run([&](runc_parent_options& o) {
      o.argv = {runfiles_nsentry, "runc-init", "--runc", v};
      o.shutdown_after_message = true;
    });
    CHECK_FALSE(none.pids.has_value());
    CHECK(none.stage0.reaped);
    CHECK(none.stage0.code == 1);
    CHECK(none.setup_bytes == (v11 ? std::string(1, '\0') : std::string()));
  }
  // The constructor of a program built with NSENTRY_RUNC_PROTOCOL 11 writes it too.
  auto c = run([&](runc_parent_options& o) {
    o.argv = {runfiles_program};
    o.message = {encode(p)};
  });
  check_success(c, before);
  CHECK(c.setup_bytes == std::string(1, '\0'));
}

TEST_CASE("a message split across several writes with pauses is read whole") {
  observable_defaults defaults;
  auto before = children_set();
  captures::capture c;
  for (auto& x : captures::all())
    if (x.name == "c_multimap") c = x;
  std::string msg = captures::as_string(c.bytes);
  REQUIRE(msg.size() > 40);
  auto r = run([&](runc_parent_options& o) {
    o.argv = report_argv(runfiles_nsentry, {"--runc", "1.1"});
    o.log_pipe = true;
    o.message = {msg.substr(0, 5), msg.substr(5, 11), msg.substr(16, 9), msg.substr(25)};
    o.pause = std::chrono::milliseconds(40);
  });
  check_success(r, before);
  auto p = bootstrap::parse(c.bytes, runc_protocol::v1_1);
  REQUIRE(p.has_value());
  check_stage2(r, p.value(), {}, 3, "");
}

TEST_CASE("no init pipe: nothing happens; bad environment values are fatal") {
  auto before = children_set();
  auto r = run([&](runc_parent_options& o) {
    o.argv = report_argv(runfiles_nsentry);
    o.init_pipe_value = "";
    o.message = {"x"};
  });
  CHECK(r.stage0.exited_zero());
  CHECK(r.pid_error == "end of file before the pid report");
  CHECK(r.stderr_text.empty());  // CMD did not run either
  CHECK(children_set() == before);

  auto bad = run([&](runc_parent_options& o) {
    o.argv = report_argv(runfiles_nsentry);
    o.log_pipe = true;
    o.log_level_value = "loud";
    o.message = {"x"};
  });
  check_fatal(bad, before, "_LIBCONTAINER_LOGLEVEL=loud: not a non-negative decimal integer");
  auto no_log = run([&](runc_parent_options& o) {
    o.argv = report_argv(runfiles_nsentry);
    o.init_pipe_value = "three";
    o.message = {"x"};
  });
  CHECK(no_log.stage0.code == 1);
  CHECK(no_log.stderr_text ==
        "FATAL: _LIBCONTAINER_INITPIPE=three: not a non-negative decimal integer\n");
  auto proto = run([&](runc_parent_options& o) {
    o.argv = report_argv(runfiles_nsentry);
    o.env = {"_NSENTRY_RUNC_PROTOCOL=2"};
    o.message = {"x"};
  });
  CHECK(proto.stage0.code == 1);
  CHECK(proto.stderr_text == "FATAL: _NSENTRY_RUNC_PROTOCOL=2: not 1.1 or 1.2\n");
  CHECK(children_set() == before);
}

// --- fatal paths ---------------------------------------------------------------------------------

TEST_CASE("fatal paths: exit 1, one fatal line, known stages killed, nothing left") {
  auto before = children_set();
  auto fatal_run = [&](const std::string& msg, bool shut = false) {
    return run([&](runc_parent_options& o) {
      o.argv = report_argv(runfiles_nsentry);
      o.log_pipe = true;
      o.message = {msg};
      o.shutdown_after_message = shut;
    });
  };
  SUBCASE("truncated message") {
    captures::capture c;
    for (auto& x : captures::all())
      if (x.name == "c_multimap") c = x;
    std::string msg = captures::as_string(c.bytes);
    auto r = fatal_run(msg.substr(0, msg.size() - 5), true);
    check_fatal(r, before, "the stream ended after " + std::to_string(msg.size() - 5) + " bytes");
    CHECK(r.strays.empty());
  }
  SUBCASE("bad path") {
    plan p;
    p.join = {{ns_kind::uts, "/nonexistent/uts"}};
    auto r = fatal_run(encode(p));
    check_fatal(r, before, "open(uts) on /nonexistent/uts: No such file or directory");
    CHECK(r.strays.empty());  // refused before any stage existed
  }
  SUBCASE("wrong namespace type: a net file given as mnt") {
    plan p;
    p.join = {{ns_kind::mnt, "/proc/self/ns/net"}};
    auto r = fatal_run(encode(p));
    check_fatal(r, before, "setns(mnt) on /proc/self/ns/net: Invalid argument");
    CHECK(r.strays.size() == 1);
  }
  SUBCASE("not a namespace file") {
    plan p;
    p.join = {{ns_kind::net, "/etc/passwd"}};
    auto r = fatal_run(encode(p));
    check_fatal(r, before, "setns(net) on /etc/passwd: Invalid argument");
  }
  SUBCASE("bad map: overlapping ranges, refused by the codec") {
    plan p;
    p.create = ns_set{ns_kind::user};
    p.uid_map = id_map::from_ranges({{0, 100000, 10}}).value();
    p.gid_map = p.uid_map;
    std::string msg = encode(p);
    // Rewrite "0 100000 10\n" into an overlapping two-range map of the same length.
    auto at = msg.find("0 100000 10\n");
    REQUIRE(at != std::string::npos);
    msg.replace(at, 12, "0 1 5\n3 9 2\n");
    auto r = fatal_run(msg);
    check_fatal(r, before, "uid_map");
    CHECK(r.strays.empty());
  }
  SUBCASE("bad map: 0 not mapped, so stage-1 cannot become root after the maps") {
    plan p;
    p.create = ns_set{ns_kind::user, ns_kind::uts};
    p.uid_map = id_map::from_ranges({{1, 100000, 10}}).value();
    p.gid_map = p.uid_map;
    auto r = fatal_run(encode(p));
    check_fatal(r, before, "setresuid(user): Invalid argument");
    CHECK(r.strays.size() == 1);
  }
  SUBCASE("time offsets the kernel refuses: stage-0 fails writing them and kills stage-1") {
    plan p;
    p.create = ns_set{ns_kind::time};
    p.time_offsets = {{time_clock::monotonic, -1'000'000'000'000, 0}};  // a negative clock
    auto r = fatal_run(encode(p, runc_protocol::v1_2));
    check_fatal(r, before, "timens_offsets");
    CHECK(has_line(r, "fatal", "Numerical result out of range"));
    REQUIRE(r.strays.size() == 1);
    CHECK(r.strays[0].signal == SIGKILL);
  }
}

// --- sealed re-exec, observed from the parent ------------------------------------------------

TEST_CASE("--sealed: stage-0 runs from a sealed memfd, observed from the parent") {
  auto before = children_set();
  std::string exe;
  int open_wr_errno = 0;
  auto r = run([&](runc_parent_options& o) {
    o.argv = report_argv(runfiles_nsentry, {"--sealed"});
    o.log_pipe = true;
    o.message = {encode(plan{})};
    o.on_spawn = [&](pid_t pid) {
      // Until the message arrives stage-0 waits on fd 3, after its re-exec.
      std::string link = "/proc/" + std::to_string(pid) + "/exe";
      for (int i = 0; i < 500; ++i) {
        char buf[256];
        ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
        exe = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
        if (exe.rfind("/memfd:", 0) == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      int fd = ::open(link.c_str(), O_WRONLY | O_CLOEXEC);
      open_wr_errno = fd == -1 ? errno : 0;
      if (fd != -1) ::close(fd);
    };
  });
  check_success(r, before);
  CHECK(exe.rfind("/memfd:nsentry-runc-init", 0) == 0);
  CHECK(open_wr_errno == ETXTBSY);
  // Without --sealed the init runs from its file.
  std::string plain;
  auto r2 = run([&](runc_parent_options& o) {
    o.argv = {runfiles_nsentry, "runc-init"};
    o.message = {encode(plan{})};
    o.on_spawn = [&](pid_t pid) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      char buf[256];
      ssize_t n = ::readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), buf, sizeof buf);
      plain = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
    };
  });
  check_success(r2, before);
  CHECK(plain.find("/memfd:") == std::string::npos);
  CHECK(plain.find("nsentry") != std::string::npos);
}

// --- the ELF constructor -------------------------------------------------------------------------

TEST_CASE("constructor.hpp: a program that is its own init reaches main only as stage-2") {
  auto before = children_set();
  captures::capture c;
  for (auto& x : captures::all())
    if (x.name == "b_userns") c = x;
  auto r = run([&](runc_parent_options& o) {
    o.argv = {runfiles_program};
    o.log_pipe = true;
    o.message = {captures::as_string(c.bytes)};
  });
  check_success(r, before);
  auto s = parse_seen(r.stderr_text);
  CAPTURE(r.stderr_text);
  CHECK(s.count("main") == 1);  // stage-0 and stage-1 never reached main
  CHECK(one(s, "initpipe") == "3");
  CHECK(one(s, "fd3_open") == "1");
  CHECK(one(s, "pid") == "1");
  CHECK(one(s, "uid") == "0");
  CHECK(one(s, "gid") == "0");
  CHECK(one(s, "sid_is_pid") == "1");
  CHECK(one(s, "groups") == "0");  // SETGROUP without ROOTLESS_EUID: setgroups(0, NULL)
  CHECK(one(s, "ns.user") != std::to_string(own_ino(ns_kind::user)));
  CHECK(one(s, "ns.net") != std::to_string(own_ino(ns_kind::net)));
  CHECK(one(s, "ns.time") == std::to_string(own_ino(ns_kind::time)));
  // As runc names its stages; and, protocol 1.1, from a clone of the binary (runc 1.1's
  // self-clone; as root a detached read-only bind mount, as runc 1.1 makes it).
  CHECK(r.stage0.comm == "runc:[0:PARENT]");
  CHECK(r.stage1.comm == "runc:[1:CHILD]");
  CHECK(one(s, "comm") == "runc:[2:INIT]");
  CHECK(one(s, "exe_ro") == "1");
  CHECK(one(s, "exe").find("runc_constructor_program") == std::string::npos);
  CHECK(one(s, "cloned") == "1");
  // runc's own debug line (runc's debug.bats and exec.bats --debug look for it), before staging.
  CHECK(has_line(r, "debug",
                 "nsexec[" + std::to_string(r.stage0.pid) + "]: => nsexec container setup"));

  // Not started as an init: main runs as usual, in our namespaces.
  auto plain = run([&](runc_parent_options& o) {
    o.argv = {runfiles_program};
    o.init_pipe_value = "";
    o.message = {"x"};
  });
  CHECK(plain.stage0.exited_zero());
  auto ps = parse_seen(plain.stderr_text);
  CHECK(one(ps, "initpipe") == "");
  CHECK(one(ps, "pid") == std::to_string(plain.stage0.pid));
  CHECK(one(ps, "ns.net") == std::to_string(own_ino(ns_kind::net)));
  CHECK(one(ps, "exe").find("runc_constructor_program") != std::string::npos);  // no clone
  CHECK(one(ps, "exe_ro") == "0");

  // With arguments, stage-2 execs them (here: the report script).
  auto ex = run([&](runc_parent_options& o) {
    o.argv = {runfiles_program, "/bin/sh", "-c", report_script};
    o.message = {captures::as_string(c.bytes)};
  });
  check_success(ex, before);
  auto p = bootstrap::parse(c.bytes, runc_protocol::v1_1);
  REQUIRE(p.has_value());
  auto es = parse_seen(ex.stderr_text);
  CHECK(all(es, "uid_map") == map_lines(p.value().uid_map));
  CHECK(one(es, "pid") == "1");
}

TEST_CASE("nsentry runc-init: CMD exit statuses and exec failures in stage-2") {
  auto before = children_set();
  auto r = run([&](runc_parent_options& o) {
    o.argv = {runfiles_nsentry, "runc-init", "--", "sh", "-c", "exit 7"};
    o.message = {encode(plan{})};
  });
  CHECK(r.stage0.exited_zero());
  CHECK(r.stage2.code == 7);
  auto nf = run([&](runc_parent_options& o) {
    o.argv = {runfiles_nsentry, "runc-init", "--", "/nonexistent"};
    o.log_pipe = true;
    o.message = {encode(plan{})};
  });
  CHECK(nf.stage0.exited_zero());  // stage-2 finished its setup before the exec
  CHECK(nf.stage2.code == 127);
  CHECK(has_line(nf, "fatal", "exec /nonexistent: No such file or directory"));
  // The init's variables and pipes do not reach CMD.
  auto env = run([&](runc_parent_options& o) {
    o.env = {"KEEP=1"};
    o.argv = {runfiles_nsentry,
              "runc-init",
              "--",
              "/bin/sh",
              "-c",
              "env >&2; for f in 3 4; do [ -e /proc/$$/fd/$f ] && echo fd$f >&2; done; true"};
    o.log_pipe = true;
    o.message = {encode(plan{})};
  });
  CHECK(env.stage2.exited_zero());
  CHECK(env.stderr_text.find("_LIBCONTAINER") == std::string::npos);
  CHECK(env.stderr_text.find("fd3") == std::string::npos);
  CHECK(env.stderr_text.find("fd4") == std::string::npos);
  CHECK(env.stderr_text.find("KEEP=1") != std::string::npos);
  auto usage = run([&](runc_parent_options& o) {
    o.argv = {runfiles_nsentry, "runc-init", "--runc", "2.0"};
    o.message = {encode(plan{})};
  });
  CHECK(usage.stage0.code == 1);
  CHECK(children_set() == before);
}
