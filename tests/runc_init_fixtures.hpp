// tests/runc_init_fixtures.hpp — what the runc-init tests share: the runc-style parent's runs
// of `nsentry runc-init` and of the constructor program, targets with live paths, the checks of
// what stage-2 reports, and running the harness as another user (rootless).
#pragma once
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

// Each test file uses some of these helpers; the rest would be "defined but not used".
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"

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
      REQUIRE(j.path.view().starts_with("/proc/"));
      j.path = proc_ns_path(target, j.kind);
    }
    joined[j.kind] = ns_ino(std::string(j.path));
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

#pragma GCC diagnostic pop
