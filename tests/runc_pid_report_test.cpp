// The pid line on the init pipe: exact bytes out, strict decoding in.
#include <doctest/doctest.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "nsentry/runc/pid_report.hpp"
#include "tests/alloc_counter.hpp"
#include "tests/testing.hpp"

using namespace nsentry;
using namespace nsentry::runc;

namespace {

struct socket_pair {
  unique_fd a, b;
  socket_pair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    a.reset(fds[0]);
    b.reset(fds[1]);
  }
};

std::string drain(int fd) {
  std::string out;
  char buf[256];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

}  // namespace

TEST_CASE("exact bytes") {
  char buf[max_pid_report_line];
  std::size_t n = format_pid_report(buf, {1, 2});
  CHECK(std::string(buf, n) == "{\"stage1_pid\":1,\"stage2_pid\":2}\n");
  n = format_pid_report(buf, {2147483647, 4194304});
  CHECK(std::string(buf, n) == "{\"stage1_pid\":2147483647,\"stage2_pid\":4194304}\n");
  n = format_pid_report(buf, {INT_MIN, -1});  // formatted faithfully; the reader rejects it
  CHECK(std::string(buf, n) == "{\"stage1_pid\":-2147483648,\"stage2_pid\":-1}\n");
  CHECK(n <= max_pid_report_line);
}

TEST_CASE("write then read over a socket; the reader leaves what follows the line") {
  socket_pair s;
  long before = allocations.load();
  auto w = write_pid_report(s.a.get(), {4321, 4322});
  long after = allocations.load();
  REQUIRE_OK(w);
  CHECK(after == before);
  REQUIRE(::send(s.a.get(), "{\"next\":1}", 10, 0) == 10);
  auto r = read_pid_report(s.b.get());
  REQUIRE_MESSAGE(r.has_value(), r.error().message());
  CHECK(r.value() == pid_report{4321, 4322});
  CHECK(drain(s.b.get()) == "{\"next\":1}");
}

namespace {
std::string* sink = nullptr;
int calls = 0;
ssize_t dribble(int, const void* b, size_t) {  // one byte per call, EINTR every third call
  if (++calls % 3 == 0) {
    errno = EINTR;
    return -1;
  }
  sink->push_back(*static_cast<const char*>(b));
  return 1;
}
}  // namespace

TEST_CASE("short writes and EINTR are looped over") {
  std::string got;
  sink = &got;
  got.reserve(64);
  calls = 0;
  {
    sys::scoped_override o{&sys::table::write, dribble};
    REQUIRE(write_pid_report(9, {10, 20}).has_value());
  }
  CHECK(got == "{\"stage1_pid\":10,\"stage2_pid\":20}\n");
  CHECK(calls - calls / 3 == static_cast<int>(got.size()));  // every third call was EINTR
  CHECK(calls / 3 > 0);
}

TEST_CASE("a write error is reported with errno") {
  sys::scoped_override o{&sys::table::write, [](int, const void*, size_t) -> ssize_t {
                           errno = EPIPE;
                           return -1;
                         }};
  long before = allocations.load();
  auto w = write_pid_report(9, {1, 2});
  CHECK(allocations.load() == before);
  REQUIRE(w.has_error());
  CHECK(w.error() == std::errc::broken_pipe);
  CHECK(w.error().message() == "pid report: write: Broken pipe");
}

TEST_CASE("the reader accepts JSON whitespace and either order") {
  for (std::string_view ok : {
           "{\"stage1_pid\":1,\"stage2_pid\":2}\n",
           "{\"stage1_pid\":1,\"stage2_pid\":2}",
           " { \"stage2_pid\" : 2 ,\r\n\t\"stage1_pid\" : 1 } \n",
       }) {
    CAPTURE(ok);
    auto r = parse_pid_report(ok);
    REQUIRE_MESSAGE(r.has_value(), r.error().message());
    CHECK(r.value() == pid_report{1, 2});
  }
}

TEST_CASE("the reader rejects anything else, naming what and where") {
  struct bad {
    std::string_view text;
    std::string_view detail;
  };
  for (const auto& b : std::vector<bad>{
           {"", "offset 0: expected '{'"},
           {"{}", "offset 1: missing field stage1_pid"},
           {"{\"stage1_pid\":1}", "offset 0: missing field stage2_pid"},
           {"{\"stage2_pid\":1}", "offset 0: missing field stage1_pid"},
           {"{\"stage1_pid\":1,\"stage2_pid\":2,\"stage3_pid\":3}",
            "offset 31: unknown field \"stage3_pid\""},
           {"{\"pid\":1,\"stage1_pid\":1,\"stage2_pid\":2}", "offset 1: unknown field \"pid\""},
           {"{\"stage1_pid\":1,\"stage1_pid\":2}", "offset 16: duplicate field stage1_pid"},
           {"{\"stage1_pid\":0,\"stage2_pid\":2}", "offset 14: stage1_pid is not a positive pid"},
           {"{\"stage1_pid\":1,\"stage2_pid\":-5}", "offset 29: stage2_pid is not a positive pid"},
           {"{\"stage1_pid\":1.5,\"stage2_pid\":2}", "offset 14: stage1_pid is not an integer"},
           {"{\"stage1_pid\":1e3,\"stage2_pid\":2}", "offset 14: stage1_pid is not an integer"},
           {"{\"stage1_pid\":\"1\",\"stage2_pid\":2}", "offset 14: stage1_pid is not an integer"},
           {"{\"stage1_pid\":null,\"stage2_pid\":2}", "offset 14: stage1_pid is not an integer"},
           {"{\"stage1_pid\":01,\"stage2_pid\":2}", "offset 14: stage1_pid has a leading zero"},
           {"{\"stage1_pid\":2147483648,\"stage2_pid\":2}",
            "offset 14: stage1_pid is out of range"},
           {"{\"stage1_pid\":1,\"stage2_pid\":2}x", "offset 31: trailing bytes after the object"},
           {"{\"stage1_pid\":1,\"stage2_pid\":2}\n{", "offset 32: trailing bytes after the object"},
           {"{\"stage1_pid\":1 \"stage2_pid\":2}", "offset 16: expected ',' or '}'"},
           {"{\"stage1_pid\" 1,\"stage2_pid\":2}", "offset 14: expected ':'"},
           {"{\"stage\\u0031_pid\":1,\"stage2_pid\":2}",
            "offset 7: escaped field names are not accepted"},
           {"{\"stage1_pid", "offset 12: unterminated field name"},
       }) {
    CAPTURE(b.text);
    auto r = parse_pid_report(b.text);
    REQUIRE(r.has_error());
    CHECK(r.error() == errc::malformed_message);
    CHECK(r.error().detail == b.detail);
    CHECK(r.error().step == step::pid_report);
  }
}

TEST_CASE("read_pid_report: end of file and overlong lines are errors") {
  {
    socket_pair s;
    s.a.reset();
    auto r = read_pid_report(s.b.get());
    REQUIRE(r.has_error());
    CHECK(r.error().detail == "end of file before any byte");
  }
  {
    socket_pair s;
    REQUIRE(::send(s.a.get(), "{\"stage1_pid\":1", 15, 0) == 15);
    s.a.reset();
    auto r = read_pid_report(s.b.get());
    REQUIRE(r.has_error());
    CHECK(r.error().detail == "end of file after 15 bytes without a newline");
  }
  {
    socket_pair s;
    std::string junk(100, ' ');
    REQUIRE(::send(s.a.get(), junk.data(), junk.size(), 0) == 100);
    auto r = read_pid_report(s.b.get(), 64);
    REQUIRE(r.has_error());
    CHECK(r.error().detail == "no newline within 64 bytes");
    CHECK(drain(s.b.get()).size() == 36);  // stopped at the limit
  }
  {
    auto r = read_pid_report(-1);
    REQUIRE(r.has_error());
    CHECK(r.error() == std::errc::bad_file_descriptor);
  }
}
