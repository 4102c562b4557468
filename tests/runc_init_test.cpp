// runc-init end to end: `nsentry runc-init` driven by a runc-style parent (tests/runc_parent.hpp):
// runc's own nsenter cases, every capture, protocol 1.2's time offsets, 1.1's mount sources, and
// the transport (setup byte, split messages, the environment).
#include "tests/runc_init_fixtures.hpp"

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
