// Every child-side function, run in a forked child under an allocation counter: none may
// allocate, on its success path or its failure path (they run between clone and exec).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>

#include "nsentry/channel.hpp"
#include "nsentry/child_side/create.hpp"
#include "nsentry/child_side/join.hpp"
#include "nsentry/child_side/mirror.hpp"
#include "nsentry/child_side/sequence.hpp"
#include "nsentry/child_side/start.hpp"
#include "nsentry/exec_spec.hpp"
#include "tests/alloc_counter.hpp"
#include "tests/testing.hpp"

using namespace nsentry;

namespace {

// Runs `fn` in a forked child; returns the number of allocations it made (or -1 if the child
// died). `fn` returns normally; its own effects stay in the child.
long allocations_in_child(const std::function<void()>& fn) {
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  std::fflush(nullptr);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(p[0]);
    long before = allocations.load();
    fn();
    long n = allocations.load() - before;
    (void)!::write(p[1], &n, sizeof n);
    ::_exit(0);
  }
  ::close(p[1]);
  long n = -1;
  if (::read(p[0], &n, sizeof n) != sizeof n) n = -1;
  ::close(p[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  return n;
}

struct opened_ns {
  int fd;
  ns_fd nf;
  explicit opened_ns(ns_kind k, const char* path) : fd(::open(path, O_RDONLY | O_CLOEXEC)) {
    struct stat st {};
    ::fstat(fd, &st);
    nf = ns_fd{k, fd, st.st_dev, st.st_ino};
  }
  ~opened_ns() { ::close(fd); }
};

}  // namespace

TEST_CASE("child_side join: join_fds, join_pidfd, become_root, in_namespace allocate nothing") {
  opened_ns net(ns_kind::net, "/proc/self/ns/net");
  opened_ns uts(ns_kind::uts, "/proc/self/ns/uts");
  ns_fd fds[] = {net.nf, uts.nf};
  CHECK(allocations_in_child([&] {
          int self = child_side::open_self_ns_dir();
          (void)child_side::join_fds(fds, self);
          (void)child_side::in_namespace(self, ns_kind::net, net.nf.dev, net.nf.ino);
          ns_fd wrong[] = {ns_fd{ns_kind::pid, net.fd, net.nf.dev, net.nf.ino}};
          (void)child_side::join_fds(wrong, self);  // EINVAL: a net file as pid
          int pfd = sys::calls.pidfd_open(::getpid(), 0);
          (void)child_side::join_pidfd(pfd, ns_set{ns_kind::uts});
          (void)child_side::join_pidfd(-1, ns_set{ns_kind::uts});  // EBADF
          (void)child_side::become_root();
        }) == 0);
}

TEST_CASE("child_side create: unshare_user and unshare_rest allocate nothing") {
  CHECK(allocations_in_child([] {
          (void)child_side::unshare_rest(ns_set{ns_kind::uts, ns_kind::ipc});
          (void)child_side::unshare_user(ns_set{ns_kind::user});
          (void)child_side::unshare_rest(ns_set{ns_kind::cgroup});
        }) == 0);
}

TEST_CASE("channel, child side: send, ask, wait_ack, receive_fd allocate nothing") {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  CHECK(allocations_in_child([&] {
          (void)send(sv[0], record_type::failure, failure::at(step::setns, EPERM));
          char ack = '+';
          (void)!::write(sv[1], &ack, 1);
          (void)ask(sv[0], record_type::id_maps);
          (void)wait_ack(-1);
          ::shutdown(sv[1], SHUT_WR);  // the parent's copy stays open: end the stream itself
          (void)receive_fd(sv[0]);     // EOF: EPIPE
        }) == 0);
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST_CASE("exec_spec::exec on its failure path allocates nothing") {
  auto cmd = exec_spec::make({"/nonexistent/nsentry-no-such-command"});
  REQUIRE_OK(cmd);
  CHECK(allocations_in_child([&] { (void)cmd.value().exec(); }) == 0);
}

TEST_CASE("start's helpers and the sequence's own steps allocate nothing") {
  CHECK(allocations_in_child([] {
          child_side::default_signal_handlers(nullptr);
          (void)child_side::join_cgroup_by_write(-1);  // EBADF
          (void)child_side::set_dumpable(false);
          child_side::entry_program p;
          p.oom = {'0'};
          p.oom_len = 1;
          (void)child_side::write_own_oom(p);
        }) == 0);
}

TEST_CASE("the mirror's stderr report and raw_pipe allocate nothing") {
  CHECK(allocations_in_child([] {
          int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
          (void)::dup2(null, 2);
          child_side::report_on_stderr(step::wait, ECHILD, 42);
          raw_pipe p;
          (void)p.make(O_CLOEXEC);
        }) == 0);
}

TEST_CASE("run_entry: the whole sequence, with a fork for pid, allocates nothing") {
  // The grandchild (after fork_and_mirror) reports its own count through the pipe; the
  // sequence before it runs in the child measured by allocations_in_child.
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  CHECK(allocations_in_child([&] {
          child_side::entry_program prog;
          prog.create = ns_set{ns_kind::uts, ns_kind::pid};
          prog.fork_for_children = true;
          long base = allocations.load();
          auto final = [&]() noexcept {
            long n = allocations.load() - base;
            (void)!::write(p[1], &n, sizeof n);
            return failure{};
          };
          pid_t mirror = ::fork();
          if (mirror == 0) {
            (void)child_side::run_entry(prog, final);
            ::_exit(3);
          }
          int st = 0;
          ::waitpid(mirror, &st, 0);
        }) == 0);
  ::close(p[1]);
  long in_grandchild = -1;
  REQUIRE(::read(p[0], &in_grandchild, sizeof in_grandchild) == sizeof in_grandchild);
  ::close(p[0]);
  CHECK(in_grandchild == 0);
}
