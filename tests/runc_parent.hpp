// tests/runc_parent.hpp — a runc-style parent for end-to-end tests of a runc-compatible init.
//
// What runc's Go side (and its nsenter_test.go) does, made observable:
//  - socketpair(AF_UNIX, SOCK_STREAM); the child's end becomes fd 3 with
//    _LIBCONTAINER_INITPIPE=3; optionally a pipe's write end becomes fd 4 with
//    _LIBCONTAINER_LOGPIPE=4 and _LIBCONTAINER_LOGLEVEL; the child's stderr is captured too;
//  - writes the bootstrap message, in one write or split into chunks with pauses (runc's own C
//    reader fails on a split message; a robust init must not);
//  - reads exactly one line from the socket and decodes it strictly as the pid report; 0x00
//    bytes before it (runc 1.1's "past initial setup" byte) are kept apart in `setup_bytes`;
//  - reaps stage-0, then stage-1 and stage-2 by the reported pids, collecting every status, and
//    collects the log lines and stderr.
//
// Reaping (the subtle part). runc clones stage-1 and stage-2 with CLONE_PARENT, which makes them
// children of stage-0's parent — this harness — so they are reapable by pid. An init that forks
// without CLONE_PARENT would leave them as children of stage-0 or stage-1, and when those exit,
// their orphans would go to the system's init, out of the test's reach (runc's test would then
// fail with ECHILD, and zombies would be someone else's problem). The harness therefore makes
// the test process a child subreaper (PR_SET_CHILD_SUBREAPER, Linux >= 3.4): orphaned
// descendants are reparented to it instead. The kernel reparents a process's children while
// that process exits, before it becomes waitable, so the harness reaps in order — stage-0
// first, then the reported pids — and never sees ECHILD for a legitimate descendant.
// Consequences: the attribute is process-wide and permanent for the test binary (fine for a
// test; every orphan of every descendant now comes back here, so tests must reap what they
// start: `children_of_self()` lets them assert that nothing is left); and a reported pid that
// is not our child after stage-0 is reaped is reported as an error, never waited for or killed
// (it could be an unrelated process).
//
// Deadline: every wait is bounded by `options.timeout`; when it passes the harness SIGKILLs
// stage-0 and any reported stage that is verifiably its own child, reaps them, and sets
// `timed_out`. Test-only code: single-threaded callers, allocates freely, asserts nothing itself.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "nsentry/fd.hpp"
#include "nsentry/runc/pid_report.hpp"

namespace nsentry::test {

struct runc_parent_options {
  std::vector<std::string> argv;      // argv[0] is the executable's path
  std::vector<std::string> env;       // extra NAME=value entries (PATH etc. are not added)
  std::string init_pipe_value = "3";  // what _LIBCONTAINER_INITPIPE says ("" = unset)
  bool log_pipe = false;              // fd 4 + _LIBCONTAINER_LOGPIPE=4
  std::string log_level_value = "5";  // _LIBCONTAINER_LOGLEVEL when log_pipe ("" = unset)
  // More descriptors for the init, placed like fds 3 and 4: {fd here, number in the child}.
  // A source of `init_socket` is another copy of the child's end of the init socket. At most 5.
  static constexpr int init_socket = -2;
  std::vector<std::pair<int, int>> extra_fds;
  std::vector<std::string> message;     // chunks, written in order
  std::chrono::milliseconds pause{0};   // between chunks
  bool shutdown_after_message = false;  // SHUT_WR after the message, so that a truncated
                                        // message ends in end of file (runc never does this)
  std::chrono::milliseconds timeout{10000};
  // Called with stage-0's pid after it is started and before the message is written (e.g. to
  // look at /proc/<pid>/exe while the init waits for its message).
  std::function<void(pid_t)> on_spawn;
  // Instead of execve(argv): runs this in the forked child, its fds placed as above and `envp`
  // the environment built here, and _exits with what it returns (an in-process init, for fault
  // injection through sys::calls). It may allocate: the harness is single-threaded.
  std::function<int(char* const* envp)> run_in_child;
};

struct process_status {
  pid_t pid = 0;
  bool reaped = false;
  int code = -1;      // exit code when exited
  int signal = 0;     // terminating signal when killed
  std::string error;  // why it could not be reaped
  std::string comm;   // /proc/<pid>/comm once it had exited, before it was reaped
  bool exited_zero() const { return reaped && signal == 0 && code == 0; }
};

struct runc_run {
  process_status stage0, stage1, stage2;
  std::optional<runc::pid_report> pids;
  std::string pid_error;      // why there is no pid report
  std::string setup_bytes;    // 0x00 bytes before the pid report (runc 1.1 writes exactly one)
  std::string message_error;  // a failed write of the message (the init died early)
  std::vector<std::string> log_lines;  // without their '\n'
  std::string log_bytes;               // everything read from the log pipe
  std::string stderr_text;
  bool timed_out = false;
  // Children that were already dead (zombies) once stage-0 and the reported stages were
  // reaped: stages the init started but never reported (it failed), reaped here so that
  // nothing is left behind. Live children (e.g. a test's namespace targets) are not touched.
  std::vector<process_status> strays;
};

// The pids of our live and zombie children (/proc/self/task/<tid>/children, Linux >= 3.5 with
// CONFIG_PROC_CHILDREN), for "nothing left behind" assertions.
inline std::vector<pid_t> children_of_self() {
  std::vector<pid_t> out;
  std::string dir = "/proc/self/task";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    auto text = read_file(dir + "/" + e->d_name + "/children");
    if (!text) continue;
    std::size_t at = 0;
    const std::string& s = text.value();
    while (at < s.size()) {
      std::size_t end = s.find(' ', at);
      if (end == std::string::npos) end = s.size();
      if (end > at) out.push_back(static_cast<pid_t>(std::stol(s.substr(at, end - at))));
      at = end + 1;
    }
  }
  ::closedir(d);
  return out;
}

namespace detail {

using clock = std::chrono::steady_clock;

inline int ms_left(clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

inline bool is_our_child(pid_t pid) {
  siginfo_t info{};
  return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0;
}

// Waits for `pid` until the deadline, then SIGKILLs and waits without bound (a SIGKILLed child
// always becomes waitable).
inline void reap(process_status& st, clock::time_point deadline, bool& timed_out) {
  if (st.pid <= 0) return;
  if (!is_our_child(st.pid)) {
    st.error = "pid " + std::to_string(st.pid) + " is not a child of the harness";
    return;
  }
  for (;;) {
    siginfo_t info{};
    int opts = WEXITED | (clock::now() < deadline ? WNOHANG | WNOWAIT : 0);
    if (opts & WNOHANG) {
      if (::waitid(P_PID, static_cast<id_t>(st.pid), &info, opts) == -1) {
        if (errno == EINTR) continue;
        st.error = std::string("waitid: ") + std::strerror(errno);
        return;
      }
      if (info.si_pid == 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        continue;
      }
      // A zombie still has its name (PR_SET_NAME): read it, then reap.
      if (auto c = read_file("/proc/" + std::to_string(st.pid) + "/comm")) {
        st.comm = c.value();
        if (!st.comm.empty() && st.comm.back() == '\n') st.comm.pop_back();
      }
      while (::waitid(P_PID, static_cast<id_t>(st.pid), &info, WEXITED) == -1 && errno == EINTR) {
      }
    } else {
      timed_out = true;
      ::kill(st.pid, SIGKILL);  // still our unreaped child: the pid cannot have been reused
      while (::waitid(P_PID, static_cast<id_t>(st.pid), &info, WEXITED) == -1 && errno == EINTR) {
      }
    }
    st.reaped = true;
    if (info.si_code == CLD_EXITED) {
      st.code = info.si_status;
    } else {
      st.signal = info.si_status;
    }
    return;
  }
}

// Moves `fds[i]` to `targets[i]` in a forked child, clearing close-on-exec on the targets even
// when a source already sits on a target number. Async-signal-safe.
inline bool place_fds(const int* fds, const int* targets, int n) {
  int high[8];
  for (int i = 0; i < n; ++i) {
    high[i] = ::fcntl(fds[i], F_DUPFD_CLOEXEC, 64);
    if (high[i] < 0) return false;
  }
  for (int i = 0; i < n; ++i) {
    if (::dup2(high[i], targets[i]) < 0) return false;
  }
  return true;
}

}  // namespace detail

// Runs one init under the runc protocol and collects everything. Errors of the harness itself
// (socketpair, fork, ...) are returned; everything the init does is reported in runc_run.
inline result<runc_run> run_runc_init(const runc_parent_options& o) {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == -1) return posix_error(step::prctl);
  auto deadline = detail::clock::now() + o.timeout;

  int sp[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1)
    return posix_error(step::socketpair);
  unique_fd sock(sp[0]), child_sock(sp[1]);
  int lp[2] = {-1, -1}, ep[2];
  if (o.log_pipe && ::pipe2(lp, O_CLOEXEC) == -1) return posix_error(step::pipe);
  unique_fd log_r(lp[0]), log_w(lp[1]);
  if (::pipe2(ep, O_CLOEXEC) == -1) return posix_error(step::pipe);
  unique_fd err_r(ep[0]), err_w(ep[1]);

  // Everything the child needs is built before fork: it must not allocate.
  std::vector<std::string> env = o.env;
  if (!o.init_pipe_value.empty()) env.push_back("_LIBCONTAINER_INITPIPE=" + o.init_pipe_value);
  if (o.log_pipe) {
    env.push_back("_LIBCONTAINER_LOGPIPE=4");
    if (!o.log_level_value.empty()) env.push_back("_LIBCONTAINER_LOGLEVEL=" + o.log_level_value);
  }
  std::vector<char*> argv, envp;
  for (const auto& a : o.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  std::vector<int> from{child_sock.get(), err_w.get()}, to{3, 2};
  if (o.log_pipe) from.push_back(log_w.get()), to.push_back(4);
  for (auto [fd, target] : o.extra_fds) {
    from.push_back(fd == runc_parent_options::init_socket ? child_sock.get() : fd);
    to.push_back(target);
  }
  if (from.size() > 8)
    return nsentry_error(errc::invalid_argument, step::dup, "more than 8 fds to place");
  const int nfds = static_cast<int>(from.size());

  pid_t pid = ::fork();
  if (pid == -1) return posix_error(step::fork);
  if (pid == 0) {
    if (!detail::place_fds(from.data(), to.data(), nfds)) ::_exit(127);
    if (o.run_in_child) ::_exit(o.run_in_child(envp.data()));
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  runc_run run;
  run.stage0.pid = pid;
  child_sock.reset();
  log_w.reset();
  err_w.reset();
  if (o.on_spawn) o.on_spawn(pid);

  for (std::size_t i = 0; i < o.message.size(); ++i) {
    if (i > 0 && o.pause.count() > 0) std::this_thread::sleep_for(o.pause);
    const std::string& chunk = o.message[i];
    std::size_t done = 0;
    while (done < chunk.size()) {
      ssize_t n = ::send(sock.get(), chunk.data() + done, chunk.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        run.message_error = std::string("send: ") + std::strerror(errno);
        break;
      }
      done += static_cast<std::size_t>(n);
    }
    if (!run.message_error.empty()) break;
  }
  if (o.shutdown_after_message) ::shutdown(sock.get(), SHUT_WR);

  // Collect the pid line, the log and stderr until all three are finished or the deadline.
  std::string line;
  bool sock_done = false;
  for (;;) {
    pollfd p[3];
    int n = 0;
    int which[3];
    if (!sock_done) p[n] = {sock.get(), POLLIN, 0}, which[n++] = 0;
    if (log_r) p[n] = {log_r.get(), POLLIN, 0}, which[n++] = 1;
    if (err_r) p[n] = {err_r.get(), POLLIN, 0}, which[n++] = 2;
    if (n == 0) break;
    int left = detail::ms_left(deadline);
    if (left == 0) break;
    int r = ::poll(p, static_cast<nfds_t>(n), left);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    for (int i = 0; i < n; ++i) {
      if (p[i].revents == 0) continue;
      if (which[i] == 0) {
        // One byte at a time: what follows the line belongs to the protocol after it.
        char c;
        ssize_t got = ::read(sock.get(), &c, 1);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
          run.pid_error = line.empty() ? "end of file before the pid report"
                                       : "end of file inside the pid report: " + line;
          sock_done = true;
        } else if (c == '\0' && line.empty()) {
          run.setup_bytes.push_back(c);
        } else if (c == '\n') {
          auto rep = runc::parse_pid_report(line);
          if (rep) {
            run.pids = rep.value();
          } else {
            run.pid_error = rep.error().message();
          }
          sock_done = true;
        } else {
          line.push_back(c);
        }
        continue;
      }
      unique_fd& fd = which[i] == 1 ? log_r : err_r;
      std::string& out = which[i] == 1 ? run.log_bytes : run.stderr_text;
      char buf[4096];
      ssize_t got = ::read(fd.get(), buf, sizeof buf);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        fd.reset();
      } else {
        out.append(buf, static_cast<std::size_t>(got));
      }
    }
  }
  if (!sock_done) run.pid_error = "no pid report before the deadline";
  sock.reset();  // an init still reading after its report sees end of file

  detail::reap(run.stage0, deadline, run.timed_out);
  if (run.pids) {
    run.stage1.pid = run.pids->stage1;
    run.stage2.pid = run.pids->stage2;
    detail::reap(run.stage1, deadline, run.timed_out);
    detail::reap(run.stage2, deadline, run.timed_out);
  }
  for (;;) {
    siginfo_t info{};
    if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG) == -1) {
      if (errno == EINTR) continue;
      break;  // ECHILD: no children at all
    }
    if (info.si_pid == 0) break;  // only live children remain
    process_status st;
    st.pid = info.si_pid;
    st.reaped = true;
    if (info.si_code == CLD_EXITED) {
      st.code = info.si_status;
    } else {
      st.signal = info.si_status;
    }
    run.strays.push_back(st);
  }
  // Writers are gone now (or were killed): whatever is still buffered arrives, then EOF.
  for (unique_fd* fd : {&log_r, &err_r}) {
    std::string& out = fd == &log_r ? run.log_bytes : run.stderr_text;
    while (*fd) {
      pollfd p{fd->get(), POLLIN, 0};
      if (::poll(&p, 1, detail::ms_left(deadline)) <= 0) break;
      char buf[4096];
      ssize_t got = ::read(fd->get(), buf, sizeof buf);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;
      out.append(buf, static_cast<std::size_t>(got));
    }
  }
  std::size_t at = 0;
  while (at < run.log_bytes.size()) {
    std::size_t nl = run.log_bytes.find('\n', at);
    if (nl == std::string::npos) nl = run.log_bytes.size();
    run.log_lines.push_back(run.log_bytes.substr(at, nl - at));
    at = nl + 1;
  }
  return run;
}

}  // namespace nsentry::test
