// The parent/child channel over a real socketpair and a forked child: serve() with handlers,
// failure records, EOF, unknown records, reply::stop, descriptor passing, and no SIGPIPE.
#include "nsentry/channel.hpp"

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/stat.h>

#include <vector>

#include "nsentry/ns.hpp"
#include "tests/exec_test_util.hpp"

using namespace nsentry;
using namespace testutil;

namespace {

// Forks a child that runs fn(child_end) and exits with its result; the parent keeps
// parent_end. wait() returns the exit status (1000 + signal if killed).
class peer {
 public:
  template <class Fn>
  explicit peer(Fn fn) {
    auto sp = socket_pair::make();
    REQUIRE_OK(sp);
    std::fflush(nullptr);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      sp.value().parent_end.reset();
      int code = 99;
      try {
        code = fn(sp.value().child_end.get());
      } catch (...) {
      }
      ::_exit(code);
    }
    sp.value().child_end.reset();
    fd_ = std::move(sp.value().parent_end);
  }
  ~peer() { wait(); }
  int fd() const { return fd_.get(); }
  pid_t pid() const { return pid_; }
  int wait() {
    fd_.reset();
    if (status_ == -1) {
      int st = 0;
      REQUIRE(::waitpid(pid_, &st, 0) == pid_);
      status_ = WIFSIGNALED(st) ? 1000 + WTERMSIG(st) : WEXITSTATUS(st);
    }
    return status_;
  }

 private:
  pid_t pid_ = 0;
  unique_fd fd_;
  int status_ = -1;
};

}  // namespace

TEST_CASE("serve answers the child's requests through handlers; EOF is success") {
  peer p([](int fd) {
    EXPECT_C(!ask(fd, record_type::id_maps).failed());
    EXPECT_C(!ask(fd, record_type::time_offsets).failed());
    EXPECT_C(!ask(fd, record_type::id_maps).failed());
    return 0;
  });
  std::vector<std::pair<std::uint8_t, pid_t>> seen;
  auto log = [&](const record& r, pid_t child) -> result<reply> {
    seen.emplace_back(r.type, child);
    return reply::ack;
  };
  std::vector<handler> hs{{record_type::id_maps, log}, {record_type::time_offsets, log}};
  auto r = serve(p.fd(), p.pid(), hs);
  REQUIRE_OK(r);
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].first == static_cast<std::uint8_t>(record_type::id_maps));
  CHECK(seen[1].first == static_cast<std::uint8_t>(record_type::time_offsets));
  CHECK(seen[2].first == static_cast<std::uint8_t>(record_type::id_maps));
  CHECK(seen[0].second == p.pid());
  CHECK(p.wait() == 0);
}

TEST_CASE("a child that exits at once: EOF, success, no handler called") {
  peer p([](int) { return 0; });
  int calls = 0;
  std::vector<handler> hs{{record_type::id_maps, [&](const record&, pid_t) -> result<reply> {
                             ++calls;
                             return reply::ack;
                           }}};
  CHECK_OK(serve(p.fd(), p.pid(), hs));
  CHECK(calls == 0);
  CHECK(p.wait() == 0);
}

TEST_CASE("a failure record becomes the error it stands for, with the child's pid") {
  peer p([](int fd) {
    EXPECT_C(send(fd, record_type::failure, failure::at(step::setns, EPERM, ns_kind::net)));
    return 0;
  });
  auto r = serve(p.fd(), p.pid(), {});
  CHECK_ERROR(r, std::errc::operation_not_permitted, step::setns);
  REQUIRE(!r);
  CHECK(r.error().kind == ns_kind::net);
  CHECK(r.error().pid == p.pid());
  CHECK(r.error().message().find("setns") != std::string::npos);
  CHECK(p.wait() == 0);
}

TEST_CASE("a failure record without errno is errc::not_joined with the missing kinds") {
  peer p([](int fd) {
    failure f = failure::at(step::verify, 0);
    f.missing = static_cast<std::uint32_t>(ns_set{ns_kind::uts, ns_kind::ipc}.clone_flags());
    EXPECT_C(send(fd, record_type::failure, f));
    return 0;
  });
  auto r = serve(p.fd(), p.pid(), {});
  CHECK_ERROR(r, errc::not_joined, step::verify);
  REQUIRE(!r);
  CHECK(r.error().detail.find("still outside") != std::string::npos);
  CHECK(r.error().detail.find("uts") != std::string::npos);
  CHECK(r.error().detail.find("ipc") != std::string::npos);
}

TEST_CASE("serve's to_error makes the error of a failure record") {
  peer p([](int fd) {
    EXPECT_C(send(fd, record_type::failure, failure::at(step::chdir, ENOENT)));
    return 0;
  });
  auto r = serve(p.fd(), p.pid(), {},
                 [](const failure& f) { return with_context(error_from(f), "custom"); });
  CHECK_ERROR(r, std::errc::no_such_file_or_directory, step::chdir);
  REQUIRE(!r);
  CHECK(r.error().context == "custom");
  CHECK(r.error().pid == p.pid());
}

TEST_CASE("an unknown record type is errc::child_failed naming the record") {
  peer p([](int fd) {
    // No handler for it: the parent closes without an ack.
    failure f = ask(fd, static_cast<record_type>(77));
    EXPECT_C(f.step == step::sync && f.err == EPIPE);
    return 0;
  });
  auto r = serve(p.fd(), p.pid(), {});
  CHECK_ERROR(r, errc::child_failed, step::recv);
  REQUIRE(!r);
  CHECK(r.error().pid == p.pid());
  CHECK(r.error().detail.find("77") != std::string::npos);
  CHECK(p.wait() == 0);
}

TEST_CASE("a handler returning reply::stop ends serve while the child still holds its end") {
  peer p([](int fd) {
    EXPECT_C(send(fd, record_type::first_client, {}, 4242));
    // No ack comes: EOF when the parent closes.
    failure f = wait_ack(fd);
    EXPECT_C(f.step == step::sync && f.err == EPIPE);
    return 0;
  });
  std::int32_t value = 0;
  std::vector<handler> hs{{record_type::first_client, [&](const record& r, pid_t) -> result<reply> {
                             value = r.value;
                             return reply::stop;
                           }}};
  CHECK_OK(serve(p.fd(), p.pid(), hs));
  CHECK(value == 4242);
  CHECK(p.wait() == 0);
}

TEST_CASE("a handler's error ends the exchange with it") {
  peer p([](int fd) {
    (void)ask(fd, record_type::id_maps);
    return 0;
  });
  std::vector<handler> hs{{record_type::id_maps, [](const record&, pid_t) -> result<reply> {
                             return nsentry_error(errc::invalid_argument, step::uid_map);
                           }}};
  auto r = serve(p.fd(), p.pid(), hs);
  CHECK_ERROR(r, errc::invalid_argument, step::uid_map);
  CHECK(p.wait() == 0);
}

TEST_CASE("reply::none: the handler answers itself") {
  peer p([](int fd) {
    EXPECT_C(send(fd, record_type::id_maps));
    char b = 0;
    EXPECT_C(::read(fd, &b, 1) == 1 && b == 'x');
    return 0;
  });
  int fd = p.fd();
  std::vector<handler> own{{record_type::id_maps, [fd](const record&, pid_t) -> result<reply> {
                              NSENTRY_TRY(ack(fd, 'x'));
                              return reply::none;
                            }}};
  CHECK_OK(serve(p.fd(), p.pid(), own));
  CHECK(p.wait() == 0);
}

TEST_CASE("send_fd / receive_fd pass a descriptor to the child") {
  FILE* tmp = std::tmpfile();
  REQUIRE(tmp != nullptr);
  struct stat want {};
  REQUIRE(::fstat(::fileno(tmp), &want) == 0);
  peer p([want](int fd) {
    int got = receive_fd(fd);
    EXPECT_C(got >= 0);
    struct stat st {};
    EXPECT_C(::fstat(got, &st) == 0);
    EXPECT_C(st.st_ino == want.st_ino && st.st_dev == want.st_dev);
    EXPECT_C((::fcntl(got, F_GETFD) & FD_CLOEXEC) != 0);
    EXPECT_C(send(fd, record_type::id_maps));  // "got it"
    return 0;
  });
  REQUIRE_OK(send_fd(p.fd(), ::fileno(tmp)));
  int asked = 0;
  std::vector<handler> hs{{record_type::id_maps, [&](const record&, pid_t) -> result<reply> {
                             ++asked;
                             return reply::none;
                           }}};
  CHECK_OK(serve(p.fd(), p.pid(), hs));
  CHECK(asked == 1);
  CHECK(p.wait() == 0);
  std::fclose(tmp);
}

TEST_CASE("receive_fd: a message without a descriptor is EPROTO, EOF is EPIPE") {
  auto sp = socket_pair::make();
  REQUIRE_OK(sp);
  REQUIRE_OK(ack(sp.value().parent_end.get()));
  errno = 0;
  CHECK(receive_fd(sp.value().child_end.get()) == -1);
  CHECK(errno == EPROTO);
  sp.value().parent_end.reset();
  errno = 0;
  CHECK(receive_fd(sp.value().child_end.get()) == -1);
  CHECK(errno == EPIPE);
}

TEST_CASE("ack and send to a closed peer return EPIPE instead of raising SIGPIPE") {
  struct sigaction dfl {
  }, old{};
  dfl.sa_handler = SIG_DFL;
  REQUIRE(::sigaction(SIGPIPE, &dfl, &old) == 0);
  auto sp = socket_pair::make();
  REQUIRE_OK(sp);
  sp.value().child_end.reset();
  auto r = ack(sp.value().parent_end.get());
  CHECK_ERROR(r, std::errc::broken_pipe, step::send);
  auto f = send_fd(sp.value().parent_end.get(), 0);
  CHECK_ERROR(f, std::errc::broken_pipe, step::send);
  errno = 0;
  CHECK(!send(sp.value().parent_end.get(), record_type::id_maps));
  CHECK(errno == EPIPE);
  ::sigaction(SIGPIPE, &old, nullptr);
}

TEST_CASE("a short record is errc::child_failed") {
  auto sp = socket_pair::make();
  REQUIRE_OK(sp);
  char half[5] = {2, 0, 0, 0, 0};
  REQUIRE(::write(sp.value().child_end.get(), half, sizeof half) == 5);
  sp.value().child_end.reset();
  auto r = read_record(sp.value().parent_end.get());
  CHECK_ERROR(r, errc::child_failed, step::recv);
}

TEST_CASE("pipe_pair and socket_pair are CLOEXEC; no descriptor leaks") {
  int before = count_fds();
  {
    auto pp = pipe_pair::make(O_NONBLOCK);
    REQUIRE_OK(pp);
    CHECK((::fcntl(pp.value().read_end.get(), F_GETFD) & FD_CLOEXEC) != 0);
    CHECK((::fcntl(pp.value().write_end.get(), F_GETFL) & O_NONBLOCK) != 0);
    auto sp = socket_pair::make();
    REQUIRE_OK(sp);
    CHECK((::fcntl(sp.value().child_end.get(), F_GETFD) & FD_CLOEXEC) != 0);
  }
  CHECK(count_fds() == before);
}
