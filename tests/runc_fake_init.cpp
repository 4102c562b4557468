// A stand-in for a runc init, for testing tests/runc_parent.hpp (not the real init): it speaks
// the visible protocol — env, message on fd 3, JSON-lines log, pid report — with the shapes the
// harness must handle: stage-1 cloned with CLONE_PARENT (a direct child of the harness) and
// stage-2 forked plainly by stage-1 (an orphan the harness gets as subreaper).
// argv[1] selects a behaviour: ok | fail | bad-json | hang.
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstring>

#include "nsentry/runc/env.hpp"
#include "nsentry/runc/log.hpp"
#include "nsentry/runc/pid_report.hpp"

using namespace nsentry;
using namespace nsentry::runc;

namespace {

logger lg;

[[noreturn]] void die(const char* what, int err) {
  lg.fatal(what, ": ", errno_text{err});
  ::_exit(1);
}

// Reads exactly n bytes, looping over short reads; returns the count read before end of file.
std::size_t read_exact(int fd, void* buf, std::size_t n) {
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = sys::calls.read(fd, static_cast<char*>(buf) + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) die("read", errno);
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  return got;
}

}  // namespace

int main(int argc, char** argv) {
  std::string_view mode = argc > 1 ? argv[1] : "ok";
  env_scan env = scan_environ();
  if (env.state == env_scan::status::not_init) return 0;
  lg = logger(env.env.log_pipe, env.env.level);
  if (env.state == env_scan::status::invalid) {
    lg.fatal("bad environment: ", env.bad_variable, "=", env.bad_value, ": ", env.reason);
    return 1;
  }
  int pipe = env.env.init_pipe;
  lg.debug("fake init: mode ", mode);

  std::uint8_t header[16];
  std::size_t got = read_exact(pipe, header, sizeof header);
  if (got != sizeof header) {
    lg.fatal("short header: ", got, " of 16 bytes");
    return 1;
  }
  std::uint32_t len;
  std::memcpy(&len, header, 4);
  if (len < 16 || len > (1u << 20)) {
    lg.fatal("bad message length ", len);
    return 1;
  }
  static char body[1 << 20];
  got = read_exact(pipe, body, len - 16);
  if (got != len - 16) {
    lg.fatal("short message: ", got + 16, " of ", len, " bytes");
    return 1;
  }
  lg.set_stage(0);
  lg.debug("message of ", len, " bytes");

  if (mode == "fail") {
    lg.fatal("failing on purpose: ", errno_text{EPERM});
    return 1;
  }
  if (mode == "bad-json") {
    const char line[] = "{\"stage1_pid\":1,\"stage2_pid\":2,\"extra\":3}\n";
    (void)!sys::calls.write(pipe, line, sizeof line - 1);
    return 0;
  }
  if (mode == "hang") {
    for (;;) ::pause();
  }

  int sync[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync) == -1) die("socketpair", errno);
  sys::clone_args args{};
  args.flags = CLONE_PARENT;  // clone3 wants exit_signal 0 here: the child inherits ours
  long s1 = sys::calls.clone3(&args, sizeof args);
  if (s1 == -1) die("clone3(CLONE_PARENT)", errno);
  if (s1 == 0) {
    lg.set_stage(1);
    lg.debug("stage-1 of parent ", ::getppid());
    pid_t s2 = sys::calls.fork();
    if (s2 == -1) die("fork", errno);
    if (s2 == 0) {
      lg.set_stage(2);
      lg.debug("stage-2 running");
      ::_exit(0);
    }
    if (sys::calls.write(sync[1], &s2, sizeof s2) != sizeof s2) die("send stage-2 pid", errno);
    ::_exit(0);
  }
  pid_t s2 = 0;
  if (read_exact(sync[0], &s2, sizeof s2) != sizeof s2) die("receive stage-2 pid", EPIPE);
  if (auto w = write_pid_report(pipe, {static_cast<pid_t>(s1), s2}); !w)
    die("pid report", w.error().errno_value());
  lg.debug("reported stage-1 ", s1, " stage-2 ", s2);
  return 0;
}
