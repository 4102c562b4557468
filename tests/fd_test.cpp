// The fd guard's behaviour matrix and the EINTR policy, against the real kernel.
#include "nsentry/fd.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <string>

#include "tests/testing.hpp"

using namespace nsentry;

namespace {

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

bool has_cloexec(int fd) { return (::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }

std::array<unique_fd, 2> make_pipe() {
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  return {unique_fd(p[0]), unique_fd(p[1])};
}

int injected_calls = 0;

}  // namespace

TEST_CASE("unique_fd: destructor closes") {
  int raw;
  {
    auto [r, w] = make_pipe();
    raw = r.get();
    CHECK(is_open(raw));
  }
  CHECK_FALSE(is_open(raw));
}

TEST_CASE("unique_fd: move construction transfers, the source is empty") {
  auto [r, w] = make_pipe();
  int raw = r.get();
  unique_fd moved(std::move(r));
  CHECK(moved.get() == raw);
  CHECK_FALSE(r.valid());
  CHECK(is_open(raw));
  static_assert(std::is_nothrow_move_constructible_v<unique_fd>);
  static_assert(std::is_nothrow_move_assignable_v<unique_fd>);
  static_assert(!std::is_copy_constructible_v<unique_fd>);
}

TEST_CASE("unique_fd: move assignment closes the old descriptor") {
  auto [r1, w1] = make_pipe();
  auto [r2, w2] = make_pipe();
  int old = r1.get(), incoming = r2.get();
  r1 = std::move(r2);
  CHECK_FALSE(is_open(old));
  CHECK(r1.get() == incoming);
  CHECK(is_open(incoming));
  CHECK_FALSE(r2.valid());
}

TEST_CASE("unique_fd: self move assignment keeps the descriptor") {
  auto [r, w] = make_pipe();
  int raw = r.get();
  unique_fd& alias = r;
  r = std::move(alias);
  CHECK(r.get() == raw);
  CHECK(is_open(raw));
}

TEST_CASE("unique_fd: release hands over ownership") {
  int raw;
  {
    auto [r, w] = make_pipe();
    raw = r.release();
    CHECK_FALSE(r.valid());
  }
  CHECK(is_open(raw));
  ::close(raw);
}

TEST_CASE("unique_fd: close reports success, then double close is a no-op") {
  auto [r, w] = make_pipe();
  int raw = r.get();
  auto first = r.close();
  CHECK(first.has_value());
  CHECK_FALSE(is_open(raw));
  CHECK_FALSE(r.valid());
  auto second = r.close();
  CHECK(second.has_value());
}

TEST_CASE("unique_fd: close error is reported and the guard is empty") {
  unique_fd bogus(987654);  // not an open descriptor: the kernel answers EBADF
  auto r = bogus.close();
  REQUIRE(r.has_error());
  CHECK(r.error() == std::errc::bad_file_descriptor);
  CHECK(r.error().message() == "close: Bad file descriptor");
  CHECK_FALSE(bogus.valid());
}

TEST_CASE("EINTR policy: close is never retried") {
  injected_calls = 0;
  auto [r, w] = make_pipe();
  int raw = r.get();
  {
    sys::scoped_override o{&sys::table::close, [](int fd) {
                             ++injected_calls;
                             ::close(fd);  // Linux frees the fd even when close says EINTR
                             errno = EINTR;
                             return -1;
                           }};
    auto res = r.close();
    REQUIRE(res.has_error());
    CHECK(res.error() == std::errc::interrupted);
  }
  CHECK(injected_calls == 1);
  CHECK_FALSE(is_open(raw));
}

TEST_CASE("unique_fd: dup is a new O_CLOEXEC descriptor of the same file") {
  auto [r, w] = make_pipe();
  auto d = w.dup();
  REQUIRE_OK(d);
  CHECK(d.value().get() != w.get());
  CHECK(has_cloexec(d.value().get()));
  REQUIRE(write_all(d.value().get(), "x").has_value());
  std::array<std::byte, 1> b{};
  auto n = read_some(r.get(), b);
  REQUIRE_OK(n);
  CHECK(n.value() == 1);
  CHECK(b[0] == std::byte{'x'});
}

TEST_CASE("unique_fd: dup of an empty guard fails with EBADF") {
  unique_fd empty;
  auto d = empty.dup();
  REQUIRE(d.has_error());
  CHECK(d.error() == std::errc::bad_file_descriptor);
  CHECK(d.error().message() == "dup: Bad file descriptor");
}

TEST_CASE("open_file always adds O_CLOEXEC and names the path on failure") {
  auto fd = open_file("/proc/self/status", O_RDONLY);
  REQUIRE_OK(fd);
  CHECK(has_cloexec(fd.value().get()));
  auto missing = open_file("/nonexistent/nsentry", O_RDONLY);
  REQUIRE(missing.has_error());
  CHECK(missing.error() == std::errc::no_such_file_or_directory);
  CHECK(missing.error().message() == "open on /nonexistent/nsentry: No such file or directory");
}

TEST_CASE("EINTR policy: read is retried") {
  injected_calls = 0;
  auto [r, w] = make_pipe();
  REQUIRE(write_all(w.get(), "hello").has_value());
  sys::scoped_override o{&sys::table::read, [](int fd, void* b, size_t n) -> ssize_t {
                           if (++injected_calls <= 3) {
                             errno = EINTR;
                             return -1;
                           }
                           return ::read(fd, b, n);
                         }};
  std::array<std::byte, 5> buf{};
  auto n = read_full(r.get(), buf);
  REQUIRE_OK(n);
  CHECK(n.value() == 5);
  CHECK(injected_calls >= 4);
  CHECK(std::string(reinterpret_cast<char*>(buf.data()), 5) == "hello");
}

TEST_CASE("EINTR policy: write is retried and short writes are continued") {
  injected_calls = 0;
  auto [r, w] = make_pipe();
  {
    sys::scoped_override o{&sys::table::write, [](int fd, const void* b, size_t n) -> ssize_t {
                             ++injected_calls;
                             if (injected_calls % 2 == 1) {
                               errno = EINTR;
                               return -1;
                             }
                             return ::write(fd, b, n > 2 ? 2 : n);  // short writes
                           }};
    REQUIRE(write_all(w.get(), "abcdefg").has_value());
  }
  CHECK(injected_calls == 8);  // 4 short writes (2+2+2+1), each after one EINTR
  w.reset();
  std::array<std::byte, 16> buf{};
  auto n = read_full(r.get(), buf);
  REQUIRE_OK(n);
  CHECK(std::string(reinterpret_cast<char*>(buf.data()), n.value()) == "abcdefg");
}

TEST_CASE("EINTR policy: open is retried, other errors are not") {
  injected_calls = 0;
  {
    sys::scoped_override o{&sys::table::openat, [](int d, const char* p, int f, mode_t m) {
                             if (++injected_calls == 1) {
                               errno = EINTR;
                               return -1;
                             }
                             return ::openat(d, p, f, m);
                           }};
    auto fd = open_file("/proc/self/status", O_RDONLY);
    CHECK(fd.has_value());
  }
  CHECK(injected_calls == 2);
  injected_calls = 0;
  {
    sys::scoped_override o{&sys::table::openat, [](int, const char*, int, mode_t) {
                             ++injected_calls;
                             errno = ENOMEM;
                             return -1;
                           }};
    auto fd = open_file("/proc/self/status", O_RDONLY);
    REQUIRE(fd.has_error());
    CHECK(fd.error() == std::errc::not_enough_memory);
  }
  CHECK(injected_calls == 1);
}

TEST_CASE("read errors other than EINTR are reported") {
  sys::scoped_override o{&sys::table::read, [](int, void*, size_t) -> ssize_t {
                           errno = EIO;
                           return -1;
                         }};
  std::array<std::byte, 4> buf{};
  auto n = read_some(0, buf);
  REQUIRE(n.has_error());
  CHECK(n.error().message() == "read: Input/output error");
}

TEST_CASE("read_file and write_file round-trip a /proc control file") {
  auto before = read_file("/proc/self/oom_score_adj");
  REQUIRE_OK(before);
  REQUIRE(write_file("/proc/self/oom_score_adj", before.value()).has_value());
  auto bad = write_file("/proc/self/oom_score_adj", "not-a-number");
  REQUIRE(bad.has_error());
  CHECK(bad.error() == std::errc::invalid_argument);
  CHECK(bad.error().path == "/proc/self/oom_score_adj");
}

TEST_CASE("pidfd: open names the pid on failure and signals a live process") {
  auto self = pidfd::open(::getpid());
  REQUIRE_OK(self);
  CHECK(has_cloexec(self.value().get()));
  CHECK(self.value().send_signal(0).has_value());
  auto gone = pidfd::open(999999999);
  REQUIRE(gone.has_error());
  CHECK(gone.error().message().find("pidfd_open on pid 999999999") == 0);
}

TEST_CASE("EINTR policy: waitid is retried") {
  injected_calls = 0;
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(7);
  sys::scoped_override o{&sys::table::waitid, [](idtype_t t, id_t id, siginfo_t* i, int opt) {
                           if (++injected_calls <= 2) {
                             errno = EINTR;
                             return -1;
                           }
                           return ::waitid(t, id, i, opt);
                         }};
  auto info = wait_id(P_PID, static_cast<id_t>(child), WEXITED);
  REQUIRE_OK(info);
  CHECK(injected_calls == 3);
  CHECK(info.value().si_code == CLD_EXITED);
  CHECK(info.value().si_status == 7);
}
