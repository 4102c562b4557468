// Shared helpers for the executor's real-kernel tests: namespace targets made with util-linux
// unshare, per-case child processes, and the fd/child counts every failure path must keep.
#pragma once

#include <dirent.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "nsentry/executor.hpp"
#include "nsentry/id_map.hpp"
#include "nsentry/ns_kind.hpp"
#include "tests/testing.hpp"

extern char** environ;

namespace testutil {

using testing::count_fds;
using testing::ns_ino;
using testing::run_result;
using testing::self_ns_ino;
using testing::slurp;
using testing::thread_ns_ino;

// Children of every thread of this process.
inline int count_children() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/task");
  REQUIRE(d != nullptr);
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::istringstream in(slurp(std::string("/proc/self/task/") + e->d_name + "/children"));
    for (std::string pid; in >> pid;) ++n;
  }
  ::closedir(d);
  return n;
}

inline pid_t spawn_argv(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  REQUIRE(::posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ) == 0);
  return pid;
}

// A process in new namespaces, made by util-linux unshare and killed at scope exit.
class target {
 public:
  // `prefix` runs unshare through another command that execs it (e.g. setpriv, to make the
  // target as another user).
  explicit target(std::vector<std::string> unshare_flags, std::vector<std::string> prefix = {}) {
    std::vector<std::string> args = prefix;
    args.insert(args.end(), {"unshare", "--fork", "--kill-child"});
    for (auto& f : unshare_flags) args.push_back(f);
    args.insert(args.end(), {"sleep", "600"});
    unshare_ = spawn_argv(args);
    for (int i = 0; i < 500 && pid_ == 0; ++i) {
      std::istringstream in(slurp("/proc/" + std::to_string(unshare_) + "/task/" +
                                  std::to_string(unshare_) + "/children"));
      in >> pid_;
      if (pid_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    REQUIRE(pid_ != 0);
    // Wait until the grandchild has exec'd sleep (its namespaces are final then).
    for (int i = 0; i < 500; ++i) {
      if (slurp("/proc/" + std::to_string(pid_) + "/comm") == "sleep\n") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    for (nsentry::ns_kind k : nsentry::all_ns_kinds)
      inos_[static_cast<std::size_t>(k)] = ns_ino(pid_, std::string(nsentry::name_of(k)).c_str());
  }
  target(const target&) = delete;
  ~target() {
    ::kill(pid_, SIGKILL);
    ::kill(unshare_, SIGKILL);
    int st;
    ::waitpid(unshare_, &st, 0);
    // A test that is a child subreaper (tests/runc_parent.hpp) inherits the orphaned process:
    // reap it then (ECHILD otherwise: it went to the system's init).
    ::waitpid(pid_, &st, 0);
  }
  pid_t pid() const { return pid_; }
  // Read at construction: usable from a child that has joined the target's mount namespace.
  ino_t ino(nsentry::ns_kind k) const { return inos_[static_cast<std::size_t>(k)]; }

 private:
  pid_t unshare_ = 0;
  pid_t pid_ = 0;
  std::array<ino_t, nsentry::ns_kind_count> inos_{};
};

// A forked child that unshare()s `flags` (0: nothing) and waits until released (finish() or
// the destructor). Its exit status: 0 when it is uid and gid 0 where it ended up (inside its
// new user namespace, once mapped), 1 otherwise.
class held_child {
 public:
  explicit held_child(int flags) {
    int ready[2], hold[2];
    REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(hold, O_CLOEXEC) == 0);
    std::fflush(nullptr);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::close(ready[0]);
      ::close(hold[1]);
      char ok = flags == 0 || ::unshare(flags) == 0 ? '+' : '-';
      if (::write(ready[1], &ok, 1) != 1) ::_exit(2);
      char b;
      (void)!::read(hold[0], &b, 1);
      ::_exit(::getuid() == 0 && ::getgid() == 0 ? 0 : 1);
    }
    ::close(ready[1]);
    ::close(hold[0]);
    hold_ = hold[1];
    char ok = 0;
    REQUIRE(::read(ready[0], &ok, 1) == 1);
    ::close(ready[0]);
    REQUIRE(ok == '+');
    if (flags & CLONE_NEWUSER) REQUIRE(ns_ino(pid_, "user") != ns_ino(::getpid(), "user"));
  }
  held_child(const held_child&) = delete;
  held_child& operator=(const held_child&) = delete;
  ~held_child() { finish(); }

  // Releases the child; its exit status.
  int finish() {
    if (hold_ != -1) {
      ::close(hold_);
      hold_ = -1;
      int st = 0;
      ::waitpid(pid_, &st, 0);
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    return status_;
  }
  pid_t pid() const { return pid_; }
  std::string file(const char* name) const {
    return slurp("/proc/" + std::to_string(pid_) + "/" + name);
  }

 private:
  pid_t pid_ = 0;
  int hold_ = -1;
  int status_ = -1;
};

// A held child in a new user namespace, no maps yet.
struct user_ns_child : held_child {
  user_ns_child() : held_child(CLONE_NEWUSER) {}
};

// This process's /proc/self/ns, opened now: still readable after joining a mount namespace
// whose /proc belongs to another pid namespace.
class self_ns {
 public:
  self_ns() : fd_(::open("/proc/self/ns", O_PATH | O_DIRECTORY | O_CLOEXEC)) {}
  ~self_ns() { ::close(fd_); }
  self_ns(const self_ns&) = delete;
  ino_t ino(const char* entry) const {
    struct stat st {};
    if (::fstatat(fd_, entry, &st, 0) != 0) return 0;
    return st.st_ino;
  }

 private:
  int fd_;
};

// Runs `fn` (returning 0 for success, else a line number) in a forked child: each
// namespace-changing case in its own process. Returns the child's exit status.
template <class Fn>
int in_child(Fn fn) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int code = 99;
    try {
      code = fn();
    } catch (...) {
      std::fprintf(stderr, "child case threw\n");
    }
    ::_exit(code);
  }
  int st = 0;
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  if (WIFSIGNALED(st)) return 1000 + WTERMSIG(st);
  return WEXITSTATUS(st);
}

// In a child: fail with the line number (and say why on stderr).
#define EXPECT_C(cond)                                                                    \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "%s:%d: child check failed: %s\n", __FILE__, __LINE__, #cond); \
      return __LINE__ % 250 + 1;                                                          \
    }                                                                                     \
  } while (0)

// Runs a command line through /bin/sh and captures stdout and the exit status.
inline run_result sh(const std::string& cmd) {
  run_result r;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) r.out.append(buf, n);
  int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

struct test_user {
  uid_t uid;
  gid_t gid;
  std::uint32_t subuid = 0, subgid = 0;  // the first subordinate range's start (>= 1100 ids)
};

inline std::uint32_t sub_start(const char* file) {
  std::istringstream in(slurp(file));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("nsentry-test:", 0) != 0) continue;
    auto a = line.find(':'), b = line.find(':', a + 1);
    if (std::stoul(line.substr(b + 1)) >= 1100)
      return static_cast<std::uint32_t>(std::stoul(line.substr(a + 1, b - a - 1)));
  }
  return 0;
}

// nsentry-test with /etc/subuid and /etc/subgid ranges; created once, reused afterwards.
inline test_user ensure_user() {
  if (!::getpwnam("nsentry-test")) REQUIRE(sh("useradd -M -s /bin/sh nsentry-test").status == 0);
  // useradd may have allocated ranges already; add ours only where there is none.
  for (const char* f : {"/etc/subuid", "/etc/subgid"})
    if (sub_start(f) == 0)
      REQUIRE(sh(std::string("echo nsentry-test:200000:65536 >> ") + f).status == 0);
  passwd* pw = ::getpwnam("nsentry-test");
  REQUIRE(pw != nullptr);
  return {pw->pw_uid, pw->pw_gid, sub_start("/etc/subuid"), sub_start("/etc/subgid")};
}

// Id-map helpers shared by the executor tests and the CLI tests.
inline nsentry::id_map three_ranges(std::uint32_t own) {
  auto m = nsentry::id_map::from_ranges({{0, 100000, 1000}, {1000, own, 1}, {2000, 300000, 10}});
  REQUIRE_OK(m);
  return m.value();
}

inline std::string normalize_map(const std::string& proc_text) {
  auto m = nsentry::id_map::parse(proc_text, nsentry::step::id_map);
  REQUIRE_OK(m);
  return m.value().format();
}

// A fresh temporary directory, removed (with its contents) at scope exit.
struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/nsentry-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() { (void)sh("rm -rf '" + path + "'"); }
  bool empty() const { return sh("ls -A '" + path + "'").out.empty(); }
};

// Identity maps, written as root: a user namespace target joinable with setgroups allowed
// (util-linux's --map-root-user denies setgroups, and a join drops the supplementary groups).
inline void map_identity(pid_t pid) {
  for (const char* f : {"uid_map", "gid_map"}) {
    std::ofstream out("/proc/" + std::to_string(pid) + "/" + f);
    out << "0 0 4294967295\n";
    out.flush();
    REQUIRE(out.good());
  }
}

// The nsentry binary (a data dependency of the test).
inline std::string nsentry_bin() { return "tools/nsentry"; }

// Runs `p` with `bash -c script` (dash takes only fds 0-9 in redirections); stdout is a pipe on fd
// 20 (away from the mount fds), moved to 1 before the script runs. Returns what it printed and its
// status.
inline run_result run_plan_script(const nsentry::plan& p, const std::string& script,
                                  const nsentry::run_options& opt = {}) {
  int out[2];
  REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
  int w = ::fcntl(out[1], F_DUPFD, 20);  // without CLOEXEC: the command's stdout
  REQUIRE(w >= 20);
  ::close(out[1]);
  auto cmd = nsentry::exec_spec::make(
      {"/bin/bash", "-c",
       "exec 1>&" + std::to_string(w) + " " + std::to_string(w) + ">&-; " + script});
  REQUIRE_OK(cmd);
  auto c = nsentry::run_plan(p, cmd.value(), opt);
  ::close(w);
  run_result r;
  if (!c) {
    ::close(out[0]);
    FAIL(c.error().message());
    return r;
  }
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof buf)) > 0) r.out.append(buf, static_cast<std::size_t>(n));
  ::close(out[0]);
  auto st = c.value().wait();
  REQUIRE_OK(st);
  r.status = st.value().shell_status();
  return r;
}

}  // namespace testutil
