// runc's JSON-lines log: exact bytes, escaping, truncation, filtering, one write per line.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>

#include <atomic>
#include <boost/json.hpp>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "nsentry/fd.hpp"
#include "nsentry/runc/log.hpp"
#include "tests/alloc_counter.hpp"
#include "tests/testing.hpp"

using namespace nsentry;
using namespace nsentry::runc;

namespace {

// Every write the logger makes, recorded by a sys::calls.write override.
struct recorded {
  int fd;
  std::string bytes;
};
std::vector<recorded>* writes = nullptr;
int eintr_first = 0;  // how many EINTRs to inject before accepting a write

ssize_t record_write(int fd, const void* b, size_t n) {
  if (eintr_first > 0) {
    --eintr_first;
    errno = EINTR;
    return -1;
  }
  writes->push_back({fd, std::string(static_cast<const char*>(b), n)});
  return static_cast<ssize_t>(n);
}

pid_t fake_pid() { return 1234; }

struct capture {
  std::vector<recorded> got;
  sys::scoped_override<ssize_t (*)(int, const void*, size_t)> w{&sys::table::write, record_write};
  sys::scoped_override<pid_t (*)()> p{&sys::table::getpid, fake_pid};
  capture() {
    writes = &got;
    got.reserve(16);  // allocations below are the test's, not the logger's
  }
  ~capture() { writes = nullptr; }
};

template <class... P>
std::string line(const logger& l, log_level lvl, const P&... parts) {
  char buf[max_log_line];
  std::size_t n = l.format_line(buf, lvl, parts...);
  return std::string(buf, n);
}

// The Go side's view: one object, exactly the keys level and msg, both strings.
void check_json(const std::string& text, std::string_view level, std::string_view msg) {
  REQUIRE(!text.empty());
  CHECK(text.back() == '\n');
  boost::json::error_code ec;
  auto v = boost::json::parse(text, ec);
  REQUIRE_MESSAGE(!ec, text);
  REQUIRE(v.is_object());
  auto& o = v.as_object();
  CHECK(o.size() == 2);
  REQUIRE(o.contains("level"));
  REQUIRE(o.contains("msg"));
  CHECK(o.at("level").as_string() == level);
  CHECK(o.at("msg").as_string() == msg);
}

}  // namespace

TEST_CASE("exact bytes: runc's spacing, stage tags, every escape class") {
  capture c;
  logger l(4, log_level::trace);
  struct row {
    std::string text;
    std::string escaped;
  };
  std::vector<row> rows = {
      {"hello", "hello"},
      {"", ""},
      {"quote \" backslash \\ slash /", "quote \\\" backslash \\\\ slash /"},
      {"\b\f\n\r\t", "\\b\\f\\n\\r\\t"},
      {std::string("\x00\x01\x1f", 3), "\\u0000\\u0001\\u001f"},
      {"\x7f", "\\u007f"},
      {"\x0b\x1b", "\\u000b\\u001b"},
      {" ~", " ~"},
      {"caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac"},  // UTF-8 passes through
  };
  for (const auto& r : rows) {
    CAPTURE(r.escaped);
    std::string got = line(l, log_level::debug, std::string_view(r.text));
    CHECK(got == "{\"level\":\"debug\", \"msg\": \"nsexec[1234]: " + r.escaped + "\"}\n");
    check_json(got, "debug", "nsexec[1234]: " + r.text);
  }
  l.set_stage(0);
  CHECK(line(l, log_level::info, "a") == "{\"level\":\"info\", \"msg\": \"nsexec-0[1234]: a\"}\n");
  l.set_stage(1);
  CHECK(line(l, log_level::error, "b") ==
        "{\"level\":\"error\", \"msg\": \"nsexec-1[1234]: b\"}\n");
  l.set_stage(2);
  CHECK(line(l, log_level::fatal, "c") ==
        "{\"level\":\"fatal\", \"msg\": \"nsexec-2[1234]: c\"}\n");
  CHECK(line(l, log_level::warning, "d") ==
        "{\"level\":\"warning\", \"msg\": \"nsexec-2[1234]: d\"}\n");
  CHECK(line(l, log_level::trace, "e") ==
        "{\"level\":\"trace\", \"msg\": \"nsexec-2[1234]: e\"}\n");
  CHECK(line(l, log_level::panic, "f") ==
        "{\"level\":\"panic\", \"msg\": \"nsexec-2[1234]: f\"}\n");
  CHECK(c.got.empty());  // format_line only formats
}

TEST_CASE("parts: strings, integers, chars, enums, errno text") {
  capture c;
  logger l(4, log_level::debug);
  std::string s = "str";
  const char* null = nullptr;
  CHECK(line(l, log_level::debug, "pid ", 42, " neg ", -7, " big ",
             std::uint64_t(18446744073709551615ULL), " min ", INT64_MIN, ' ', s, ' ', null, ' ',
             true, ' ', log_level::info) ==
        "{\"level\":\"debug\", \"msg\": \"nsexec[1234]: pid 42 neg -7 big 18446744073709551615 "
        "min -9223372036854775808 str (null) true 4\"}\n");
  CHECK(line(l, log_level::debug, "setns: ", errno_text{EPERM}) ==
        "{\"level\":\"debug\", \"msg\": \"nsexec[1234]: setns: Operation not permitted\"}\n");
  CHECK(line(l, log_level::debug, errno_text{9999}) ==
        "{\"level\":\"debug\", \"msg\": \"nsexec[1234]: Unknown error 9999\"}\n");
  CHECK(line(l, log_level::debug, '"') ==
        "{\"level\":\"debug\", \"msg\": \"nsexec[1234]: \\\"\"}\n");
}

TEST_CASE("long text is cut at 4096 bytes on an escape and UTF-8 boundary; still JSON") {
  capture c;
  logger l(4, log_level::debug);
  const std::string prefix = "{\"level\":\"debug\", \"msg\": \"nsexec[1234]: ";
  // Plain ASCII: the body fills exactly up to the reserved "...\"}\n".
  std::string ascii(10000, 'a');
  std::string got = line(l, log_level::debug, ascii);
  CHECK(got.size() == max_log_line);
  CHECK(got == prefix + std::string(max_log_line - prefix.size() - 6, 'a') + "...\"}\n");
  check_json(got, "debug",
             "nsexec[1234]: " + std::string(max_log_line - prefix.size() - 6, 'a') + "...");

  // Six-byte escapes are never split, whatever the alignment.
  for (std::size_t lead = 0; lead < 6; ++lead) {
    std::string ctl = std::string(lead, 'x') + std::string(2000, '\x01');
    got = line(l, log_level::debug, ctl);
    CAPTURE(lead);
    CHECK(got.size() <= max_log_line);
    CHECK(got.size() > max_log_line - 12);
    CHECK(got.substr(got.size() - 6) == "...\"}\n");
    boost::json::error_code ec;
    boost::json::parse(got, ec);
    CHECK_MESSAGE(!ec, "escape split at lead ", lead);
  }
  // Multi-byte UTF-8 is never split (Boost.JSON rejects invalid UTF-8).
  for (std::size_t lead = 0; lead < 4; ++lead) {
    std::string euro;
    for (int i = 0; i < 2000; ++i) euro += "\xe2\x82\xac";
    got = line(l, log_level::debug, std::string(lead, 'x') + euro);
    CAPTURE(lead);
    CHECK(got.size() <= max_log_line);
    CHECK(got.substr(got.size() - 6) == "...\"}\n");
    boost::json::error_code ec;
    boost::json::parse(got, ec);
    CHECK_MESSAGE(!ec, "UTF-8 split at lead ", lead);
  }
  // Numbers after a cut are dropped, not appended past the cut.
  got = line(l, log_level::debug, ascii, 123456);
  CHECK(got.find("123456") == std::string::npos);
  // A number that does not fit whole is dropped whole.
  std::string almost(max_log_line - prefix.size() - 6 - 3, 'b');
  got = line(l, log_level::debug, almost, 123456);
  CHECK(got == prefix + almost + "...\"}\n");
  CHECK(c.got.empty());
}

TEST_CASE("one write per line, to the log pipe, only for enabled levels") {
  capture c;
  logger l(7, log_level::info);
  l.log(log_level::debug, "dropped");
  l.log(log_level::trace, "dropped");
  CHECK(c.got.empty());
  l.log(log_level::info, "kept ", 1);
  l.log(log_level::warning, "kept ", 2);
  l.log(log_level::error, "kept ", 3);
  l.fatal("kept ", 4);
  l.log(log_level::panic, "kept ", 5);
  REQUIRE(c.got.size() == 5);
  const char* levels[] = {"info", "warning", "error", "fatal", "panic"};
  for (std::size_t i = 0; i < c.got.size(); ++i) {
    CHECK(c.got[i].fd == 7);
    check_json(c.got[i].bytes, levels[i], "nsexec[1234]: kept " + std::to_string(i + 1));
  }
  // Level panic: even fatal lines are filtered, as in runc; nothing goes to stderr either.
  c.got.clear();
  logger quiet(7, log_level::panic);
  quiet.fatal("x");
  quiet.debug("x");
  CHECK(c.got.empty());
  quiet.log(log_level::panic, "y");
  CHECK(c.got.size() == 1);
}

TEST_CASE("without a log pipe only fatal errors are written, as FATAL: on stderr, unescaped") {
  capture c;
  logger l;  // what an init without _LIBCONTAINER_LOGPIPE uses
  l.debug("nothing");
  l.log(log_level::error, "nothing");
  CHECK(c.got.empty());
  l.fatal("setns(net) \"x\": ", errno_text{EINVAL});
  REQUIRE(c.got.size() == 1);
  CHECK(c.got[0].fd == STDERR_FILENO);
  CHECK(c.got[0].bytes == "FATAL: setns(net) \"x\": Invalid argument\n");

  c.got.clear();
  l.fatal(std::string(10000, 'z'));
  REQUIRE(c.got.size() == 1);
  CHECK(c.got[0].bytes.size() == max_log_line);
  CHECK(c.got[0].bytes == "FATAL: " + std::string(max_log_line - 7 - 4, 'z') + "...\n");
}

// Records into static storage, so that the allocation count sees only the logger.
char raw_lines[3][max_log_line];
std::size_t raw_sizes[3];
int raw_count = 0;
ssize_t record_raw(int, const void* b, size_t n) {
  if (eintr_first > 0) {
    --eintr_first;
    errno = EINTR;
    return -1;
  }
  std::memcpy(raw_lines[raw_count], b, n);
  raw_sizes[raw_count++] = n;
  return static_cast<ssize_t>(n);
}

TEST_CASE("EINTR is retried; errno is preserved; nothing is allocated") {
  sys::scoped_override w{&sys::table::write, record_raw};
  sys::scoped_override p{&sys::table::getpid, fake_pid};
  logger l(5, log_level::debug);
  eintr_first = 2;
  errno = ENOENT;
  long before = allocations.load();
  l.debug("after eintr ", std::string_view("sv "), errno_text{EBADF});
  l.fatal("f");
  logger none;
  none.fatal("g");
  long after = allocations.load();
  int saved = errno;
  CHECK(after == before);
  CHECK(saved == ENOENT);
  CHECK(eintr_first == 0);
  REQUIRE(raw_count == 3);
  CHECK(std::string(raw_lines[0], raw_sizes[0]) ==
        "{\"level\":\"debug\", \"msg\": \"nsexec[1234]: after eintr sv Bad file descriptor\"}\n");
  CHECK(std::string(raw_lines[1], raw_sizes[1]) ==
        "{\"level\":\"fatal\", \"msg\": \"nsexec[1234]: f\"}\n");
  CHECK(std::string(raw_lines[2], raw_sizes[2]) == "FATAL: g\n");
}

TEST_CASE("a write error is ignored (best effort) and reported to nobody") {
  sys::scoped_override w{&sys::table::write, [](int, const void*, size_t) -> ssize_t {
                           errno = EPIPE;
                           return -1;
                         }};
  logger l(5, log_level::debug);
  errno = 0;
  l.debug("lost");
  l.fatal("lost");
  CHECK(errno == 0);
}

TEST_CASE("real pipe, real pid: lines arrive whole and decode") {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  unique_fd r(fds[0]), w(fds[1]);
  logger l(w.get(), log_level::debug);
  l.debug("one");
  l.set_stage(1);
  l.log(log_level::warning, "two\nlines");
  w.reset();
  std::string all;
  char buf[512];
  for (;;) {
    auto n = read_some(r.get(), std::as_writable_bytes(std::span(buf)));
    REQUIRE_OK(n);
    if (n.value() == 0) break;
    all.append(buf, n.value());
  }
  std::string pid = std::to_string(::getpid());
  auto nl = all.find('\n');
  REQUIRE(nl != std::string::npos);
  check_json(all.substr(0, nl + 1), "debug", "nsexec[" + pid + "]: one");
  check_json(all.substr(nl + 1), "warning", "nsexec-1[" + pid + "]: two\nlines");
  CHECK(all.substr(nl + 1) ==
        "{\"level\":\"warning\", \"msg\": \"nsexec-1[" + pid + "]: two\\nlines\"}\n");
}

TEST_CASE("the pid is the writer's own, in its own pid namespace: pid 1 logs [1]") {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  unique_fd r(fds[0]), w(fds[1]);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Not the test process: a new pid namespace applies to this process's next child.
    if (::unshare(CLONE_NEWPID) != 0) ::_exit(10);
    pid_t init = ::fork();
    if (init < 0) ::_exit(11);
    if (init == 0) {
      logger l(w.get(), log_level::debug);
      l.set_stage(2);
      l.debug("inside");
      ::_exit(0);
    }
    int st = 0;
    if (::waitpid(init, &st, 0) != init) ::_exit(12);
    ::_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 13);
  }
  w.reset();
  int st = 0;
  REQUIRE(::waitpid(child, &st, 0) == child);
  REQUIRE(WIFEXITED(st));
  REQUIRE(WEXITSTATUS(st) == 0);
  std::string got;
  char buf[256];
  for (ssize_t n; (n = ::read(r.get(), buf, sizeof buf)) > 0;)
    got.append(buf, static_cast<std::size_t>(n));
  CHECK(got == "{\"level\":\"debug\", \"msg\": \"nsexec-2[1]: inside\"}\n");
}
