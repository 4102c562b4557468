// nsentry/runc/pid_report.hpp — the one line stage-0 sends back on the init pipe.
//
//   {"stage1_pid":N,"stage2_pid":M}\n
// N and M are pids in the caller's pid namespace (stage-0's, which is the caller's: stage-0
// never changes pid namespace). runc's Go parent decodes it with DisallowUnknownFields, reaps
// both pids, then keeps using the same socket for its own protocol — so a reader must consume
// exactly this line and nothing after it.
//
// Writing: `write_pid_report` formats into a stack buffer and loops over short writes and EINTR;
// it allocates nothing (also not on error) and is async-signal-safe. Reading: `parse_pid_report`
// / `read_pid_report` are parent-side (errors allocate); strict: exactly the two fields, once
// each, positive integers that fit a pid_t, JSON whitespace allowed; anything else is an
// errc::malformed_message naming the offset and what was wrong. Escaped keys are rejected
// rather than unescaped (runc never sends them). Any Linux; no privilege.
#pragma once

#include <sys/types.h>

#include <climits>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "nsentry/error.hpp"
#include "nsentry/fd.hpp"
#include "nsentry/sys.hpp"

namespace nsentry::inline v0::runc {

struct pid_report {
  pid_t stage1 = 0;
  pid_t stage2 = 0;
  friend bool operator==(const pid_report&, const pid_report&) = default;
};

// Longest possible line: two 10-digit pids plus 31 bytes of syntax.
inline constexpr std::size_t max_pid_report_line = 64;

// Formats the line; returns its length. Pids are printed as given (the writer's business).
inline std::size_t format_pid_report(char (&buf)[max_pid_report_line], pid_report r) noexcept {
  std::size_t n = 0;
  auto put = [&](std::string_view s) {
    for (char c : s) buf[n++] = c;
  };
  auto num = [&](pid_t v) {
    char d[12];
    std::size_t k = 0;
    unsigned long u = v < 0 ? 0UL - static_cast<unsigned long>(v) : static_cast<unsigned long>(v);
    do {
      d[k++] = static_cast<char>('0' + u % 10);
      u /= 10;
    } while (u != 0);
    if (v < 0) buf[n++] = '-';
    while (k > 0) buf[n++] = d[--k];
  };
  put("{\"stage1_pid\":");
  num(r.stage1);
  put(",\"stage2_pid\":");
  num(r.stage2);
  put("}\n");
  return n;
}

// Writes the whole line to `fd` (the init pipe).
inline result<void> write_pid_report(int fd, pid_report r) noexcept {
  char buf[max_pid_report_line];
  std::size_t len = format_pid_report(buf, r);
  std::size_t done = 0;
  while (done < len) {
    ssize_t n = sys::calls.write(fd, buf + done, len - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return with_context(posix_error(step::write), "pid report");
    }
    done += static_cast<std::size_t>(n);
  }
  return success();
}

namespace detail {

class pid_report_parser {
 public:
  explicit pid_report_parser(std::string_view text) : s_(text) {}

  result<pid_report> parse() {
    bool seen1 = false, seen2 = false;
    pid_report out;
    ws();
    if (!eat('{')) return fail("expected '{'");
    ws();
    if (peek() == '}') return fail("missing field stage1_pid");
    for (;;) {
      ws();
      std::size_t key_at = i_;
      if (!eat('"')) return fail("expected a field name");
      std::size_t start = i_;
      while (i_ < s_.size() && s_[i_] != '"') {
        if (s_[i_] == '\\') return fail("escaped field names are not accepted");
        if (static_cast<unsigned char>(s_[i_]) < 0x20) return fail("control byte in field name");
        ++i_;
      }
      if (!eat('"')) return fail("unterminated field name");
      std::string_view key = s_.substr(start, i_ - start - 1);
      bool* seen = key == "stage1_pid" ? &seen1 : key == "stage2_pid" ? &seen2 : nullptr;
      if (seen == nullptr) return fail_at(key_at, "unknown field \"" + std::string(key) + "\"");
      if (*seen) return fail_at(key_at, "duplicate field " + std::string(key));
      *seen = true;
      ws();
      if (!eat(':')) return fail("expected ':'");
      ws();
      NSENTRY_TRY(pid_t v, pid_value(key));
      (key == "stage1_pid" ? out.stage1 : out.stage2) = v;
      ws();
      if (eat(',')) continue;
      if (eat('}')) break;
      return fail("expected ',' or '}'");
    }
    ws();
    if (i_ != s_.size()) return fail("trailing bytes after the object");
    if (!seen1) return fail_at(0, "missing field stage1_pid");
    if (!seen2) return fail_at(0, "missing field stage2_pid");
    return out;
  }

 private:
  result<pid_t> pid_value(std::string_view key) {
    std::size_t at = i_;
    bool negative = eat('-');
    if (i_ >= s_.size() || s_[i_] < '0' || s_[i_] > '9')
      return fail_at(at, std::string(key) + " is not an integer");
    if (s_[i_] == '0' && i_ + 1 < s_.size() && s_[i_ + 1] >= '0' && s_[i_ + 1] <= '9')
      return fail_at(at, std::string(key) + " has a leading zero");
    long long v = 0;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
      v = v * 10 + (s_[i_++] - '0');
      if (v > INT_MAX) return fail_at(at, std::string(key) + " is out of range");
    }
    if (peek() == '.' || peek() == 'e' || peek() == 'E')
      return fail_at(at, std::string(key) + " is not an integer");
    if (negative || v == 0) return fail_at(at, std::string(key) + " is not a positive pid");
    return static_cast<pid_t>(v);
  }

  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  bool eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  error fail(std::string what) const { return fail_at(i_, std::move(what)); }
  error fail_at(std::size_t at, std::string what) const {
    return nsentry_error(errc::malformed_message, step::pid_report,
                         "offset " + std::to_string(at) + ": " + what);
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

}  // namespace detail

// Strictly decodes one report (the trailing newline, if present, is whitespace).
inline result<pid_report> parse_pid_report(std::string_view text) {
  return detail::pid_report_parser(text).parse();
}

// Reads exactly one line from `fd` — byte by byte, so that nothing after the newline is taken
// from a socket the caller keeps using — and decodes it. End of file before a newline, or a line
// longer than `limit`, is an error. Retries EINTR; blocks like read(2).
inline result<pid_report> read_pid_report(int fd, std::size_t limit = 4096) {
  std::string line;
  for (;;) {
    std::byte b;
    NSENTRY_TRY(std::size_t n, read_some(fd, std::span(&b, 1)));
    if (n == 0) {
      return nsentry_error(errc::malformed_message, step::pid_report,
                           line.empty() ? std::string("end of file before any byte")
                                        : "end of file after " + std::to_string(line.size()) +
                                              " bytes without a newline");
    }
    line.push_back(static_cast<char>(b));
    if (static_cast<char>(b) == '\n') break;
    if (line.size() >= limit)
      return nsentry_error(errc::malformed_message, step::pid_report,
                           "no newline within " + std::to_string(limit) + " bytes");
  }
  return parse_pid_report(line);
}

}  // namespace nsentry::inline v0::runc
