// runc's three environment variables: not an init, an init, or an error naming what is wrong.
// The descriptors they name are real ones (a socketpair end and a pipe's write end, as runc
// passes them), since scan_env examines them.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "nsentry/channel.hpp"
#include "nsentry/runc/env.hpp"
#include "tests/alloc_counter.hpp"
#include "tests/testing.hpp"

using namespace nsentry;
using namespace nsentry::runc;

namespace {

struct envp {
  std::vector<std::string> storage;
  std::vector<char*> ptrs;
  explicit envp(std::vector<std::string> vars) : storage(std::move(vars)) {
    for (auto& s : storage) ptrs.push_back(s.data());
    ptrs.push_back(nullptr);
  }
  char* const* get() { return ptrs.data(); }
};

env_scan scan(std::vector<std::string> vars) {
  envp e(std::move(vars));
  long before = allocations.load();
  env_scan s = scan_env(e.get());
  CHECK(allocations.load() == before);
  // bad_value and other_value point into the block; copy what tests compare before `e` dies.
  static std::string last_value, last_other;
  if (s.bad_value != nullptr) {
    last_value = s.bad_value;
    s.bad_value = last_value.c_str();
  }
  if (s.other_value != nullptr) {
    last_other = s.other_value;
    s.other_value = last_other.c_str();
  }
  return s;
}

// What runc passes: one end of socketpair(AF_UNIX, SOCK_STREAM) and the write end of a pipe.
struct runc_fds {
  socket_pair sock = socket_pair::make().value();
  pipe_pair log = pipe_pair::make().value();
  std::string init_fd() const { return std::to_string(sock.child_end.get()); }
  std::string log_fd() const { return std::to_string(log.write_end.get()); }
  std::string init_var() const { return "_LIBCONTAINER_INITPIPE=" + init_fd(); }
  std::string log_var() const { return "_LIBCONTAINER_LOGPIPE=" + log_fd(); }
};

// A descriptor number that is not open.
int unopened_fd() {
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  ::close(fd);
  return fd + 100;
}

}  // namespace

TEST_CASE("no init pipe, or an empty one, is not an init, whatever else is set") {
  for (auto vars : std::vector<std::vector<std::string>>{
           {},
           {"PATH=/bin"},
           {"_LIBCONTAINER_INITPIPE="},
           {"_LIBCONTAINER_INITPIPE=", "_LIBCONTAINER_LOGPIPE=junk", "_LIBCONTAINER_LOGLEVEL=-9"},
           {"_LIBCONTAINER_LOGPIPE=4", "_LIBCONTAINER_LOGLEVEL=2"},
           {"_LIBCONTAINER_INITPIPEX=3"},  // a longer name is another variable
           {"_LIBCONTAINER_INITPIP=3"},    // so is a shorter one
       }) {
    CAPTURE(vars.size());
    auto s = scan(vars);
    CHECK(s.state == env_scan::status::not_init);
    CHECK(s.bad_variable == nullptr);
    auto r = to_result(s);
    REQUIRE_OK(r);
    CHECK_FALSE(r.value().has_value());
  }
  CHECK(scan_env(nullptr).state == env_scan::status::not_init);
}

TEST_CASE("an init pipe alone: no log pipe, level debug") {
  runc_fds f;
  auto s = scan({"HOME=/", f.init_var()});
  REQUIRE(s.state == env_scan::status::init);
  CHECK(s.env.init_pipe == f.sock.child_end.get());
  CHECK_FALSE(s.env.log_pipe.has_value());
  CHECK(s.env.level == log_level::debug);
}

TEST_CASE("log pipe and every level 0..6") {
  const char* names[] = {"panic", "fatal", "error", "warning", "info", "debug", "trace"};
  runc_fds f;
  for (int l = 0; l <= 6; ++l) {
    auto s = scan({f.init_var(), f.log_var(), "_LIBCONTAINER_LOGLEVEL=" + std::to_string(l)});
    REQUIRE(s.state == env_scan::status::init);
    CHECK(s.env.init_pipe == f.sock.child_end.get());
    CHECK(s.env.log_pipe == f.log.write_end.get());
    CHECK(static_cast<int>(s.env.level) == l);
    CHECK(name_of(s.env.level) == names[l]);
  }
  // Level defaults to debug with a log pipe; an empty level counts as unset.
  auto s = scan({"_LIBCONTAINER_LOGLEVEL=", f.log_var(), f.init_var()});
  REQUIRE(s.state == env_scan::status::init);
  CHECK(s.env.log_pipe == f.log.write_end.get());
  CHECK(s.env.init_pipe == f.sock.child_end.get());
  CHECK(s.env.level == log_level::debug);
}

TEST_CASE("the first definition wins, as with getenv") {
  runc_fds f;
  auto s = scan({f.init_var(), "_LIBCONTAINER_INITPIPE=junk"});
  REQUIRE(s.state == env_scan::status::init);
  CHECK(s.env.init_pipe == f.sock.child_end.get());
}

TEST_CASE("bad values are errors naming the variable and the value") {
  struct bad {
    std::vector<std::string> vars;
    const char* variable;
    const char* value;
    const char* reason;
  };
  const char* nonint = "not a non-negative decimal integer";
  runc_fds f;
  const std::string init = f.init_var();
  for (const auto& b : std::vector<bad>{
           {{"_LIBCONTAINER_INITPIPE=abc"}, init_pipe_var, "abc", nonint},
           {{"_LIBCONTAINER_INITPIPE=-1"}, init_pipe_var, "-1", nonint},
           {{"_LIBCONTAINER_INITPIPE=+3"}, init_pipe_var, "+3", nonint},
           {{"_LIBCONTAINER_INITPIPE= 3"}, init_pipe_var, " 3", nonint},
           {{"_LIBCONTAINER_INITPIPE=3 "}, init_pipe_var, "3 ", nonint},
           {{"_LIBCONTAINER_INITPIPE=0x3"}, init_pipe_var, "0x3", nonint},
           {{"_LIBCONTAINER_INITPIPE=2147483648"}, init_pipe_var, "2147483648", "out of range"},
           {{"_LIBCONTAINER_INITPIPE=99999999999999999999999"},
            init_pipe_var,
            "99999999999999999999999",
            "out of range"},
           {{init, "_LIBCONTAINER_LOGPIPE=-4"}, log_pipe_var, "-4", nonint},
           {{init, "_LIBCONTAINER_LOGPIPE=four"}, log_pipe_var, "four", nonint},
           {{init, "_LIBCONTAINER_LOGLEVEL=7"}, log_level_var, "7", "out of range (0..6)"},
           {{init, "_LIBCONTAINER_LOGLEVEL=debug"}, log_level_var, "debug", nonint},
           {{init, "_LIBCONTAINER_LOGLEVEL=-1"}, log_level_var, "-1", nonint},
       }) {
    CAPTURE(b.value);
    auto s = scan(b.vars);
    REQUIRE(s.state == env_scan::status::invalid);
    CHECK(std::string(s.bad_variable) == b.variable);
    CHECK(std::string(s.bad_value) == b.value);
    CHECK(std::string(s.reason) == b.reason);
    auto r = to_result(s);
    REQUIRE(r.has_error());
    CHECK(r.error() == errc::invalid_environment);
    CHECK(r.error().message() == std::string("environment: ") + b.variable + "=" + b.value + ": " +
                                     b.reason + ": invalid environment");
  }
}

TEST_CASE("a bad init pipe still reports the log settings that parsed, for the fatal line") {
  runc_fds f;
  auto s = scan({"_LIBCONTAINER_INITPIPE=x", f.log_var(), "_LIBCONTAINER_LOGLEVEL=1"});
  REQUIRE(s.state == env_scan::status::invalid);
  CHECK(std::string(s.bad_variable) == init_pipe_var);
  CHECK(s.env.log_pipe == f.log.write_end.get());
  CHECK(s.env.level == log_level::fatal);
  // A level error too, and an init pipe that is not a socket.
  s = scan({f.init_var(), f.log_var(), "_LIBCONTAINER_LOGLEVEL=9"});
  REQUIRE(s.state == env_scan::status::invalid);
  CHECK(std::string(s.bad_variable) == log_level_var);
  CHECK(s.env.log_pipe == f.log.write_end.get());
  auto other = pipe_pair::make().value();
  s = scan({"_LIBCONTAINER_INITPIPE=" + std::to_string(other.read_end.get()), f.log_var()});
  REQUIRE(s.state == env_scan::status::invalid);
  CHECK(std::string(s.reason) == "not a socket");
  CHECK(s.env.log_pipe == f.log.write_end.get());
  // The init pipe is the other end of the log pipe: reported, but not on that pipe.
  s = scan({"_LIBCONTAINER_INITPIPE=" + std::to_string(f.log.read_end.get()), f.log_var()});
  REQUIRE(s.state == env_scan::status::invalid);
  CHECK(std::string(s.reason) == "not a socket");
  CHECK_FALSE(s.env.log_pipe.has_value());
}

TEST_CASE("scan_environ reads the live process environment") {
  runc_fds f;
  REQUIRE(::setenv("_LIBCONTAINER_INITPIPE", f.init_fd().c_str(), 1) == 0);
  REQUIRE(::setenv("_LIBCONTAINER_LOGPIPE", f.log_fd().c_str(), 1) == 0);
  REQUIRE(::setenv("_LIBCONTAINER_LOGLEVEL", "4", 1) == 0);
  long before = allocations.load();
  auto s = scan_environ();
  CHECK(allocations.load() == before);
  REQUIRE(s.state == env_scan::status::init);
  CHECK(s.env.init_pipe == f.sock.child_end.get());
  CHECK(s.env.log_pipe == f.log.write_end.get());
  CHECK(s.env.level == log_level::info);
  REQUIRE(::unsetenv("_LIBCONTAINER_INITPIPE") == 0);
  CHECK(scan_environ().state == env_scan::status::not_init);
  ::unsetenv("_LIBCONTAINER_LOGPIPE");
  ::unsetenv("_LIBCONTAINER_LOGLEVEL");
}

TEST_CASE("the descriptors: what runc passes is accepted, anything else refused with why") {
  runc_fds f;
  const std::string init = f.init_fd(), log = f.log_fd();
  struct bad {
    std::string what;
    std::vector<std::string> vars;
    const char* variable;
    std::string value;
    std::string message;  // the whole detail
  };
  const int unopened = unopened_fd();
  unique_fd file(::open("/proc/self/status", O_RDONLY | O_CLOEXEC));
  unique_fd dir(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  unique_fd path_fd(::open("/dev/null", O_PATH | O_CLOEXEC));
  unique_fd dup(::fcntl(f.sock.child_end.get(), F_DUPFD_CLOEXEC, 0));
  unique_fd udp(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  unique_fd unix_dgram(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  REQUIRE((file && dir && path_fd && dup && udp && unix_dgram));
  auto n = [](const unique_fd& fd) { return std::to_string(fd.get()); };
  const std::string read_end = std::to_string(f.log.read_end.get());
  const std::string iv = "_LIBCONTAINER_INITPIPE=", lv = "_LIBCONTAINER_LOGPIPE=";
  for (const auto& b : std::vector<bad>{
           {"init: unopened",
            {iv + std::to_string(unopened)},
            init_pipe_var,
            std::to_string(unopened),
            "not an open file descriptor"},
           {"init: a regular file", {iv + n(file)}, init_pipe_var, n(file), "not a socket"},
           {"init: a directory", {iv + n(dir)}, init_pipe_var, n(dir), "not a socket"},
           {"init: a pipe", {iv + log}, init_pipe_var, log, "not a socket"},
           {"init: a udp socket", {iv + n(udp)}, init_pipe_var, n(udp), "not a unix stream socket"},
           {"init: a unix datagram socket",
            {iv + n(unix_dgram)},
            init_pipe_var,
            n(unix_dgram),
            "not a unix stream socket"},
           {"log: unopened",
            {iv + init, lv + std::to_string(unopened)},
            log_pipe_var,
            std::to_string(unopened),
            "not an open file descriptor"},
           {"log: a regular file",
            {iv + init, lv + n(file)},
            log_pipe_var,
            n(file),
            "not a pipe or socket"},
           {"log: a directory",
            {iv + init, lv + n(dir)},
            log_pipe_var,
            n(dir),
            "not a pipe or socket"},
           {"log: an O_PATH descriptor",
            {iv + init, lv + n(path_fd)},
            log_pipe_var,
            n(path_fd),
            "not a pipe or socket"},
           {"log: the read end of a pipe",
            {iv + init, lv + read_end},
            log_pipe_var,
            read_end,
            "not open for writing"},
           {"log: the init pipe itself",
            {iv + init, lv + init},
            log_pipe_var,
            init,
            "same open file as _LIBCONTAINER_INITPIPE=" + init},
           {"log: a dup of the init pipe",
            {iv + init, lv + n(dup)},
            log_pipe_var,
            n(dup),
            "same open file as _LIBCONTAINER_INITPIPE=" + init},
           // The log pipe is judged first: its error is the one reported.
           {"both bad", {iv + n(file), lv + n(dir)}, log_pipe_var, n(dir), "not a pipe or socket"},
       }) {
    CAPTURE(b.what);
    auto s = scan(b.vars);
    REQUIRE(s.state == env_scan::status::invalid);
    CHECK(std::string(s.bad_variable) == b.variable);
    CHECK(std::string(s.bad_value) == b.value);
    if (std::string_view(s.bad_variable) == log_pipe_var)
      CHECK_FALSE(s.env.log_pipe.has_value());  // never report on a refused log pipe
    auto r = to_result(s);
    REQUIRE(r.has_error());
    CHECK(r.error() == errc::invalid_environment);
    CHECK(r.error().message() == std::string("environment: ") + b.variable + "=" + b.value + ": " +
                                     b.message + ": invalid environment");
  }
  // A socket as the log pipe is fine (O_RDWR), and so is the other end of the init socketpair
  // (another open file); stdin/stdout/stderr are judged like any other number.
  for (const auto& ok : std::vector<std::vector<std::string>>{
           {iv + init, lv + std::to_string(f.sock.parent_end.get())},
           {iv + init, lv + log},
       }) {
    auto s = scan(ok);
    CHECK(s.state == env_scan::status::init);
  }
  unique_fd saved(::fcntl(0, F_DUPFD_CLOEXEC, 10));
  REQUIRE(saved);
  REQUIRE(::dup2(f.sock.child_end.get(), 0) == 0);
  auto s = scan({iv + "0", lv + log});
  CHECK(s.state == env_scan::status::init);
  CHECK(s.env.init_pipe == 0);
  REQUIRE(::dup2(saved.get(), 0) == 0);
}

TEST_CASE("an fstat error other than EBADF is named as such") {
  runc_fds f;
  sys::scoped_override o{&sys::table::fstat, [](int, struct stat*) {
                           errno = EIO;
                           return -1;
                         }};
  auto s = scan({f.init_var()});
  REQUIRE(s.state == env_scan::status::invalid);
  CHECK(std::string(s.reason) == "fstat failed");
  CHECK(s.reason_errno == EIO);
  auto r = to_result(s);
  REQUIRE_FALSE(r);
  CHECK(r.error().message().find("fstat failed: Input/output error") != std::string::npos);
  s = scan({f.init_var(), f.log_var()});
  REQUIRE(s.state == env_scan::status::invalid);
  CHECK(std::string(s.bad_variable) == log_pipe_var);
  CHECK(std::string(s.reason) == "fstat failed");
  CHECK_FALSE(s.env.log_pipe.has_value());
}
