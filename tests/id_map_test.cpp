// id-map parsing, formatting and the kernel's validation rules, as a table.
#include "nsentry/id_map.hpp"

#include <doctest/doctest.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "nsentry/fd.hpp"
#include "tests/testing.hpp"

using namespace nsentry;

TEST_CASE("parse and format round-trip") {
  auto m = id_map::parse("0 100000 65536\n", step::uid_map);
  REQUIRE_OK(m);
  REQUIRE(m.value().size() == 1);
  CHECK(m.value().ranges()[0] == id_range{0, 100000, 65536});
  CHECK(m.value().format() == "0 100000 65536\n");

  auto multi = id_map::parse("0 1000 1\n1 100000 1000\n1001 200000 10", step::gid_map);
  REQUIRE_OK(multi);
  CHECK(multi.value().size() == 3);
  CHECK(multi.value().format() == "0 1000 1\n1 100000 1000\n1001 200000 10\n");

  auto spaced = id_map::parse("  0\t 1000   1  \n", step::uid_map);
  REQUIRE_OK(spaced);
  CHECK(spaced.value().ranges()[0] == id_range{0, 1000, 1});

  auto empty = id_map::parse("", step::uid_map);
  REQUIRE_OK(empty);
  CHECK(empty.value().empty());
}

struct bad_case {
  const char* text;
  const char* message;
};

TEST_CASE("invalid maps are refused with the line named") {
  const bad_case cases[] = {
      {"0 0 0\n", "uid_map: line 1: count is 0: invalid id map"},
      {"0 0 10\n5 100 10\n",
       "uid_map: line 2: inside range 5+10 overlaps line 1 (0+10): invalid id map"},
      {"0 0 10\n100 5 10\n",
       "uid_map: line 2: outside range 5+10 overlaps line 1 (0+10): invalid id map"},
      {"4294967290 0 10\n",
       "uid_map: line 1: inside range 4294967290+10 runs past 4294967294: invalid id map"},
      {"0 4294967295 1\n",
       "uid_map: line 1: outside range 4294967295+1 runs past 4294967294: invalid id map"},
      {"0 4294967296 1\n", "uid_map: line 1: field 2 exceeds 4294967295: invalid id map"},
      {"0 1000\n",
       "uid_map: line 1: expected 3 decimal fields \"inside outside count\", got \"0 1000\": "
       "invalid id map"},
      {"0 1000 1\n\n", "uid_map: line 2: empty line: invalid id map"},
      {"0 1000 1 extra\n", "uid_map: line 1: trailing text \"extra\": invalid id map"},
      {"-1 1000 1\n",
       "uid_map: line 1: expected 3 decimal fields \"inside outside count\", got \"-1 1000 1\": "
       "invalid id map"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    auto m = id_map::parse(c.text, step::uid_map);
    REQUIRE(m.has_error());
    CHECK(m.error() == errc::invalid_id_map);
    CHECK(m.error().message() == c.message);
  }
}

TEST_CASE("fields of every length: digits read 8 at a time agree with one at a time") {
  // Each value as its own digits, with leading zeros, and before each separator the parser
  // knows (space, tab, newline, end), so every digit count from 1 to 25 and every position of
  // the first non-digit within an 8-byte read is met.
  const std::uint64_t values[] = {
      0,        1,         9,          10,         99999,      1234567,     12345678,
      99999999, 100000000, 4294967294, 4294967295, 4294967296, 99999999999, 18446744073709551615u};
  for (std::uint64_t v : values) {
    for (std::size_t zeros : {0, 1, 7, 15}) {
      const std::string digits = std::string(zeros, '0') + std::to_string(v);
      for (std::string_view after : {" 1 1\n", "\t1\t1", " 1 1"}) {
        const std::string text = digits + std::string(after);
        CAPTURE(text);
        auto r = id_map::parse(text, step::uid_map);
        if (v > UINT32_MAX) {
          REQUIRE(r.has_error());
          CHECK(r.error().detail == "line 1: field 1 exceeds 4294967295");
        } else if (v + 1 > UINT32_MAX) {
          REQUIRE(r.has_error());  // inside + count runs past 4294967294
        } else {
          REQUIRE_OK(r);
          CHECK(r.value().ranges()[0] == id_range{static_cast<std::uint32_t>(v), 1, 1});
        }
      }
    }
  }
  // A byte over 0x7F right after the digits ends them like any other non-digit.
  auto high = id_map::parse("5\xff 1 1\n", step::uid_map);
  REQUIRE(high.has_error());
  CHECK(high.error().detail ==
        "line 1: expected 3 decimal fields \"inside outside count\", got \"5\xff 1 1\"");
  auto nul = id_map::parse(std::string_view("0 0 1\0", 6), step::uid_map);
  REQUIRE(nul.has_error());
  CHECK(nul.error().detail == "line 1: trailing text \"" + std::string(1, '\0') + "\"");
}

TEST_CASE("ranges that touch but do not overlap are fine; the last valid id is 4294967294") {
  CHECK(id_map::parse("0 0 10\n10 10 10\n").has_value());
  CHECK(id_map::parse("4294967294 0 1\n").has_value());
}

TEST_CASE("more than 340 ranges is refused, 340 is accepted") {
  std::vector<id_range> ranges;
  for (std::uint32_t i = 0; i < 340; ++i) ranges.push_back({i, 1000 + i, 1});
  auto ok = id_map::from_ranges(ranges, step::gid_map);
  REQUIRE_OK(ok);
  CHECK(ok.value().format().size() < id_map::max_text_bytes);
  ranges.push_back({340, 1340, 1});
  auto bad = id_map::from_ranges(ranges, step::gid_map);
  REQUIRE(bad.has_error());
  CHECK(bad.error().message() ==
        "gid_map: 341 ranges, over the kernel's limit of 340: invalid id map");
}

TEST_CASE("text over one page is refused") {
  std::vector<id_range> ranges;
  for (std::uint32_t i = 0; i < 200; ++i)
    ranges.push_back({1000000000u + i * 10, 2000000000u + i * 10, 10});  // ~33 bytes a line
  auto bad = id_map::from_ranges(ranges, step::uid_map);
  REQUIRE(bad.has_error());
  CHECK(bad.error().detail.find("bytes, over the kernel's 4095") != std::string::npos);
  auto text = std::string(4096, '0');
  auto big = id_map::parse(text, step::uid_map);
  REQUIRE(big.has_error());
  CHECK(big.error().message() ==
        "uid_map: text is 4096 bytes, over the kernel's 4095: invalid id map");
}

namespace {

// Writes `text` to the uid_map of a fresh child in a new user namespace; returns the errno of
// the write (0 on success). The child is reaped before returning.
int kernel_verdict(const std::string& text) {
  int go[2];
  REQUIRE(::pipe2(go, O_CLOEXEC) == 0);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    if (::unshare(CLONE_NEWUSER) != 0) ::_exit(2);
    char c;
    ::close(go[1]);
    ::_exit(::read(go[0], &c, 1) == 0 ? 0 : 3);  // wait until the parent is done
  }
  ::close(go[0]);
  // Wait until the child is in its new user namespace.
  struct stat self_ns {
  }, child_ns{};
  REQUIRE(::stat("/proc/self/ns/user", &self_ns) == 0);
  for (int i = 0; i < 10000; ++i) {
    REQUIRE(::stat(("/proc/" + std::to_string(child) + "/ns/user").c_str(), &child_ns) == 0);
    if (child_ns.st_ino != self_ns.st_ino) break;
    ::usleep(100);
  }
  REQUIRE(child_ns.st_ino != self_ns.st_ino);
  auto r = write_file("/proc/" + std::to_string(child) + "/uid_map", text);
  ::close(go[1]);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(status == 0);
  return r ? 0 : r.error().errno_value();
}

}  // namespace

TEST_CASE("the kernel agrees: what id_map refuses the kernel refuses, what it accepts it takes") {
  const char* refused[] = {
      "0 0 0\n",  "0 1000 10\n5 2000 10\n", "0 1000 10\n100 1005 10\n", "4294967290 1000 10\n",
      "0 1000\n", "0 1000 1 extra\n",
  };
  for (const char* text : refused) {
    CAPTURE(text);
    CHECK(id_map::parse(text, step::uid_map).has_error());
    CHECK(kernel_verdict(text) == EINVAL);
  }
  std::string many;
  for (int i = 0; i < 341; ++i) many += std::to_string(i) + " " + std::to_string(1000 + i) + " 1\n";
  CHECK(id_map::parse(many, step::uid_map).has_error());
  CHECK(kernel_verdict(many) == EINVAL);

  const char* accepted[] = {"0 100000 65536\n", "0 1000 1\n1 100000 1000\n1001 200000 10\n"};
  for (const char* text : accepted) {
    CAPTURE(text);
    CHECK(id_map::parse(text, step::uid_map).has_value());
    CHECK(kernel_verdict(text) == 0);
  }
  std::string max_lines;
  for (int i = 0; i < 340; ++i)
    max_lines += std::to_string(i) + " " + std::to_string(1000 + i) + " 1\n";
  CHECK(id_map::parse(max_lines, step::uid_map).has_value());
  CHECK(kernel_verdict(max_lines) == 0);
}

TEST_CASE("ranges kept in place (up to 4) and on the heap (more): copy, move, compare") {
  for (std::size_t n :
       {std::size_t{1}, std::size_t{4}, std::size_t{5}, std::size_t{17}, std::size_t{40}}) {
    CAPTURE(n);
    std::string text;
    for (std::size_t i = 0; i < n; ++i)
      text += std::to_string(i * 10) + " " + std::to_string(1000 + i * 10) + " 10\n";
    auto parsed = id_map::parse(text);
    REQUIRE(parsed.has_value());
    const id_map m = parsed.value();
    REQUIRE(m.size() == n);
    CHECK(m.ranges()[n - 1] == id_range{static_cast<std::uint32_t>((n - 1) * 10),
                                        static_cast<std::uint32_t>(1000 + (n - 1) * 10), 10});
    CHECK(m.format() == text);
    std::vector<id_range> v(m.ranges().begin(), m.ranges().end());
    auto built = id_map::from_ranges(v);
    REQUIRE(built.has_value());
    CHECK(built.value() == m);
    id_map copy = m;
    CHECK(copy == m);
    id_map moved = std::move(copy);
    CHECK(moved == m);
    CHECK(copy.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty and usable
    CHECK(copy.ranges().empty());
    copy = moved;
    CHECK(copy == m);
    id_map assigned;
    assigned = std::move(moved);
    CHECK(assigned == m);
    CHECK(moved.empty());  // NOLINT(bugprone-use-after-move)
    CHECK_FALSE(assigned == id_map{});
  }
}
