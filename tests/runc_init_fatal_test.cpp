// runc-init when things go wrong, and its other shapes: every fatal path (exit 1, one fatal
// line, stages killed, nothing left), the sealed re-exec seen from the parent, the ELF
// constructor program, and `nsentry runc-init -- CMD` exit statuses and --trace.
#include <sys/stat.h>

#include <sstream>

#include "tests/runc_init_fixtures.hpp"
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

// --- the descriptors named by the environment ---------------------------------------------------

TEST_CASE(
    "bad _LIBCONTAINER_LOGPIPE/INITPIPE descriptors: exit 1, one line, init socket untouched") {
  auto before = children_set();
  unique_fd file(::open("/tmp", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600));  // writable, regular
  unique_fd dir(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  auto pipe = pipe_pair::make();
  REQUIRE((file && dir && pipe));
  const int init_socket = runc_parent_options::init_socket;
  struct bad {
    const char* what;
    std::vector<std::pair<int, int>> fds;  // placed in the child
    std::string log_pipe;                  // _LIBCONTAINER_LOGPIPE ("" = unset)
    std::string init_pipe;                 // _LIBCONTAINER_INITPIPE
    std::string line;                      // on stderr
  };
  for (const auto& b : std::vector<bad>{
           {"log: unopened", {}, "9", "3", "_LIBCONTAINER_LOGPIPE=9: not an open file descriptor"},
           {"log: a writable regular file",
            {{file.get(), 5}},
            "5",
            "3",
            "_LIBCONTAINER_LOGPIPE=5: not a pipe or socket"},
           {"log: a directory",
            {{dir.get(), 5}},
            "5",
            "3",
            "_LIBCONTAINER_LOGPIPE=5: not a pipe or socket"},
           {"log: the init socket's number",
            {},
            "3",
            "3",
            "_LIBCONTAINER_LOGPIPE=3: same open file as _LIBCONTAINER_INITPIPE=3"},
           {"log: a dup of the init socket",
            {{init_socket, 5}},
            "5",
            "3",
            "_LIBCONTAINER_LOGPIPE=5: same open file as _LIBCONTAINER_INITPIPE=3"},
           {"log: a pipe's read end",
            {{pipe.value().read_end.get(), 5}},
            "5",
            "3",
            "_LIBCONTAINER_LOGPIPE=5: not open for writing"},
           {"init: unopened", {}, "", "9", "_LIBCONTAINER_INITPIPE=9: not an open file descriptor"},
           {"init: a directory",
            {{dir.get(), 5}},
            "",
            "5",
            "_LIBCONTAINER_INITPIPE=5: not a socket"},
       }) {
    for (const std::string& bin : {runfiles_nsentry, runfiles_program}) {
      CAPTURE(b.what);
      CAPTURE(bin);
      auto r = run([&](runc_parent_options& o) {
        o.argv = bin == runfiles_nsentry ? report_argv(bin) : std::vector<std::string>{bin};
        o.init_pipe_value = b.init_pipe;
        if (!b.log_pipe.empty()) o.env = {"_LIBCONTAINER_LOGPIPE=" + b.log_pipe};
        o.extra_fds = b.fds;
        o.message = {"x"};
      });
      CHECK(r.stage0.reaped);
      CHECK(r.stage0.code == 1);
      CHECK_FALSE(r.timed_out);
      CHECK(r.stderr_text == "FATAL: " + b.line + "\n");
      // Nothing was written on the init socket: it ended with no byte at all.
      CHECK(r.setup_bytes.empty());
      CHECK(r.pid_error == "end of file before the pid report");
      CHECK(r.strays.empty());
      CHECK(children_set() == before);
    }
  }
}

TEST_CASE("an init pipe that is not a socket is reported on a valid log pipe") {
  auto before = children_set();
  auto pipe = pipe_pair::make();
  REQUIRE(pipe);
  auto r = run([&](runc_parent_options& o) {
    o.argv = report_argv(runfiles_nsentry);
    o.log_pipe = true;
    o.init_pipe_value = "5";
    o.extra_fds = {{pipe.value().read_end.get(), 5}};
    o.message = {"x"};
  });
  check_fatal(r, before, "_LIBCONTAINER_INITPIPE=5: not a socket");
  CHECK(r.stderr_text.empty());
  CHECK(r.pid_error == "end of file before the pid report");
}

// --- --trace -------------------------------------------------------------------------------------

namespace {

std::uint64_t realtime_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

// The steps of a --trace=FILE run, "step" or "step(kind)" in start order; every one succeeded
// and started within [from, to].
std::vector<std::string> trace_file_steps(const std::string& file, std::uint64_t from,
                                          std::uint64_t to) {
  std::vector<std::string> out;
  std::istringstream in(slurp(file));
  for (std::string line; std::getline(in, line);) {
    CAPTURE(line);
    auto e = boost::json::parse(line).as_object();
    std::string name(e.at("step").as_string());
    if (e.contains("kind")) name += "(" + std::string(e.at("kind").as_string()) + ")";
    CHECK(e.at("errno").as_int64() == 0);
    auto start = e.at("start_ns").to_number<std::uint64_t>();
    CHECK(start >= from);
    CHECK(start + e.at("duration_ns").to_number<std::uint64_t>() <= to);
    out.push_back(name);
  }
  return out;
}

// The step column of the --trace table among stage-2's stderr lines.
std::vector<std::string> trace_table_steps(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    double start = 0, duration = 0;
    char name[64] = {};
    if (std::sscanf(line.c_str(), " %lf %lf %63s", &start, &duration, name) == 3)
      out.push_back(name);
  }
  return out;
}

std::size_t index_of(const std::vector<std::string>& v, const std::string& s, std::size_t nth = 0) {
  for (std::size_t i = 0; i < v.size(); ++i)
    if (v[i] == s && nth-- == 0) return i;
  FAIL_CHECK("no step " << s);
  return v.size();
}

std::string own_ns(const char* kind) {
  struct stat st {};
  REQUIRE(::stat((std::string("/proc/self/ns/") + kind).c_str(), &st) == 0);
  return std::to_string(st.st_ino);
}

}  // namespace

TEST_CASE("nsentry runc-init --trace: the steps of the three stages that ran, and only those") {
  auto before = children_set();
  temp_dir dir;
  SUBCASE("--trace=FILE, runc 1.1: setup byte, a join by path, two new namespaces") {
    plan p;
    p.create = ns_set{ns_kind::net, ns_kind::uts};
    p.join = {{ns_kind::pid, "/proc/" + std::to_string(::getpid()) + "/ns/pid"}};
    const std::string file = dir.path + "/trace.json";
    std::uint64_t from = realtime_ns();
    auto r = run([&](runc_parent_options& o) {
      o.argv = report_argv(runfiles_nsentry, {"--runc", "1.1", "--trace=" + file});
      o.message = {encode(p, runc_protocol::v1_1)};
    });
    std::uint64_t to = realtime_ns();
    check_success(r, before);
    // What the kernel shows: the setup byte went out, stage-2 is in a new net and uts
    // namespace, in our user namespace (no unshare(user), no maps), session leader.
    CHECK(r.setup_bytes == std::string(1, '\0'));
    auto s = parse_seen(r.stderr_text);
    CHECK(one(s, "ns.net") != own_ns("net"));
    CHECK(one(s, "ns.uts") != own_ns("uts"));
    CHECK(one(s, "ns.user") == own_ns("user"));
    CHECK(one(s, "sid") == std::to_string(r.pids->stage2));
    auto steps = trace_file_steps(file, from, to);
    CAPTURE(steps.size());
    std::vector<std::string> expected{"write",      "bootstrap", "open",      "clone3",
                                      "setns(pid)", "unshare",   "clone3",    "pid report",
                                      "sync",       "setsid",    "setresuid", "setresgid"};
    if (p.drop_groups()) expected.push_back("setgroups");
    CHECK(std::multiset<std::string>(steps.begin(), steps.end()) ==
          std::multiset<std::string>(expected.begin(), expected.end()));
    // Stage-0 up to the clone of stage-1, stage-1's joins and unshare, its clone of stage-2,
    // then stage-2 (stage-0's pid report runs alongside stage-2's wait for the go-ahead).
    std::size_t order[] = {
        index_of(steps, "write"),     index_of(steps, "bootstrap"),  index_of(steps, "open"),
        index_of(steps, "clone3"),    index_of(steps, "setns(pid)"), index_of(steps, "unshare"),
        index_of(steps, "clone3", 1), index_of(steps, "sync"),       index_of(steps, "setsid"),
        index_of(steps, "setresuid"), index_of(steps, "setresgid")};
    CHECK(std::is_sorted(std::begin(order), std::end(order)));
    CHECK(index_of(steps, "clone3", 1) < index_of(steps, "pid report"));
  }
  SUBCASE("--trace (a table on stderr), runc 1.2: a new user namespace and its maps") {
    plan p;
    p.create = ns_set{ns_kind::user, ns_kind::uts};
    p.uid_map = id_map::from_ranges({{0, 100000, 65536}}).value();
    p.gid_map = p.uid_map;
    auto r = run([&](runc_parent_options& o) {
      o.argv = report_argv(runfiles_nsentry, {"--trace"});
      o.message = {encode(p)};
    });
    check_success(r, before);
    auto s = parse_seen(r.stderr_text);
    CHECK(all(s, "uid_map") == map_lines(p.uid_map));
    CHECK(one(s, "ns.user") != own_ns("user"));
    CHECK(r.setup_bytes.empty());
    auto steps = trace_table_steps(r.stderr_text);
    std::vector<std::string> expected{"bootstrap", "clone3",    "unshare(user)", "id_map",
                                      "unshare",   "clone3",    "pid",           "sync",
                                      "setsid",    "setresuid", "setresgid"};
    // "pid report" is two words: the table's step column reads "pid".
    if (p.drop_groups()) expected.push_back("setgroups");
    CHECK(std::multiset<std::string>(steps.begin(), steps.end()) ==
          std::multiset<std::string>(expected.begin(), expected.end()));
    CHECK(index_of(steps, "unshare(user)") < index_of(steps, "id_map"));
    CHECK(index_of(steps, "id_map") < index_of(steps, "clone3", 1));
  }
  CHECK(children_set() == before);
}
