// nsentry/runc/log.hpp — runc's nsexec logging, byte for byte, without allocating.
//
// Line format (runc's, including its odd spacing; the Go side decodes each line as JSON):
//   {"level":"debug", "msg": "nsexec-1[1234]: <text>"}\n
// - the stage tag is `nsexec` before staging and `nsexec-0`/`-1`/`-2` after (`set_stage`);
// - the pid is getpid() at write time, i.e. as seen in the writer's own pid namespace (stage-2
//   in a new pid namespace logs `[1]`);
// - <text> is JSON-escaped: `"` `\` as `\"` `\\`; 0x08 0x0A 0x0D 0x09 0x0C as `\b \n \r \t \f`;
//   other bytes below 0x20 and 0x7F as `\u00XX` (lower-case hex, as runc). Bytes >= 0x80 pass
//   through unchanged, as in runc: valid UTF-8 stays valid, other bytes are the caller's problem.
// - a line is written only when a log pipe is set and its level <= the configured level
//   (logrus order: a smaller number is more severe). This filter applies to `fatal` too, as in
//   runc.
// - `fatal()` without a log pipe writes `FATAL: <text>\n` (unescaped) to stderr instead.
//
// Bound: a line is at most `max_log_line` = 4096 bytes (PIPE_BUF, so a write to a pipe is atomic
// and lines of concurrently logging stages never interleave). A longer text is cut at a whole
// escape sequence, never inside a UTF-8 sequence, and ends in `...` before the closing `"}`; the
// line stays valid JSON.
//
// Contract: every member is noexcept, allocation-free and async-signal-safe (a fixed stack
// buffer, one sys::calls.write per line, retried only on EINTR, errno preserved), so it may be
// used between clone and exec and in ELF constructors. Write errors are ignored: logging is
// best effort, as in runc. A logger is a small value; each stage process uses its own copy, so
// `set_stage` needs no synchronisation. Any Linux.
#pragma once

#include <string.h>  // strerrordesc_np (glibc >= 2.32)
#include <unistd.h>

#include <cerrno>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>

#include "nsentry/runc/env.hpp"
#include "nsentry/sys.hpp"

namespace nsentry::inline v0::runc {

inline constexpr std::size_t max_log_line = 4096;

// The text of an errno value (what runc's `%m` prints), usable as a log part.
struct errno_text {
  int value;
};

namespace detail {

// Appends into a fixed buffer, never past `limit`; remembers whether anything was dropped.
class line_buffer {
 public:
  line_buffer(char* data, std::size_t limit) noexcept : data_(data), limit_(limit) {}

  // Copies as much of `s` as fits.
  void raw(std::string_view s) noexcept {
    for (char c : s) {
      if (truncated_ || len_ == limit_) {
        truncated_ = true;
        return;
      }
      data_[len_++] = c;
    }
  }

  // JSON string body, per runc's escape_json_string.
  void escaped(std::string_view s) noexcept {
    for (std::size_t i = 0; i < s.size() && !truncated_; ++i) {
      auto c = static_cast<unsigned char>(s[i]);
      char esc[6];
      std::size_t n = 0;
      switch (c) {
        case '"':
          esc[0] = '\\', esc[1] = '"', n = 2;
          break;
        case '\\':
          esc[0] = '\\', esc[1] = '\\', n = 2;
          break;
        case '\b':
          esc[0] = '\\', esc[1] = 'b', n = 2;
          break;
        case '\n':
          esc[0] = '\\', esc[1] = 'n', n = 2;
          break;
        case '\r':
          esc[0] = '\\', esc[1] = 'r', n = 2;
          break;
        case '\t':
          esc[0] = '\\', esc[1] = 't', n = 2;
          break;
        case '\f':
          esc[0] = '\\', esc[1] = 'f', n = 2;
          break;
        default:
          if (c < 0x20 || c == 0x7f) {
            constexpr char hex[] = "0123456789abcdef";
            esc[0] = '\\', esc[1] = 'u', esc[2] = '0', esc[3] = '0';
            esc[4] = hex[c >> 4], esc[5] = hex[c & 0xf];
            n = 6;
          } else {
            esc[0] = static_cast<char>(c);
            n = 1;
          }
      }
      if (limit_ - len_ < n) {
        truncated_ = true;
        // Cutting before a continuation byte would split a UTF-8 sequence: drop its start too.
        if ((c & 0xc0) == 0x80) {
          while (len_ > 0 && (static_cast<unsigned char>(data_[len_ - 1]) & 0xc0) == 0x80) --len_;
          if (len_ > 0 && static_cast<unsigned char>(data_[len_ - 1]) >= 0xc0) --len_;
        }
        return;
      }
      for (std::size_t k = 0; k < n; ++k) data_[len_++] = esc[k];
    }
  }

  template <std::integral I>
  void number(I v) noexcept {
    char digits[24];
    std::size_t n = 0;
    bool negative = false;
    std::uintmax_t u;
    if constexpr (std::is_signed_v<I>) {
      negative = v < 0;
      u = negative ? std::uintmax_t(0) - static_cast<std::uintmax_t>(v)
                   : static_cast<std::uintmax_t>(v);
    } else {
      u = v;
    }
    do {
      digits[n++] = static_cast<char>('0' + u % 10);
      u /= 10;
    } while (u != 0);
    if (negative) digits[n++] = '-';
    if (truncated_ || limit_ - len_ < n) {  // a number is never cut: half a pid would lie
      truncated_ = true;
      return;
    }
    while (n > 0) data_[len_++] = digits[--n];
  }

  bool truncated() const noexcept { return truncated_; }
  std::size_t size() const noexcept { return len_; }

  // Ends the line with `tail`, after `cut` if any of the body was dropped. Writes past the
  // limit, into the room the owner reserved for them beyond it.
  void finish(std::string_view cut, std::string_view tail) noexcept {
    if (truncated_) {
      for (char c : cut) data_[len_++] = c;
    }
    for (char c : tail) data_[len_++] = c;
  }

 private:
  char* data_;
  std::size_t limit_;
  std::size_t len_ = 0;
  bool truncated_ = false;
};

inline std::string_view errno_string(int e, char (&scratch)[32]) noexcept {
  if (const char* d = ::strerrordesc_np(e)) return d;
  line_buffer b(scratch, sizeof scratch);
  b.raw("Unknown error ");
  b.number(e);
  return std::string_view(scratch, b.size());
}

// One text part, appended either escaped (JSON) or raw (stderr).
template <class T>
void append_part(line_buffer& b, bool escape, const T& part) noexcept {
  auto text = [&](std::string_view v) { escape ? b.escaped(v) : b.raw(v); };
  if constexpr (std::is_same_v<T, errno_text>) {
    char scratch[32];
    text(errno_string(part.value, scratch));
  } else if constexpr (std::is_same_v<T, char>) {
    text(std::string_view(&part, 1));
  } else if constexpr (std::is_same_v<T, bool>) {
    b.raw(part ? "true" : "false");
  } else if constexpr (std::is_enum_v<T>) {
    b.number(static_cast<std::underlying_type_t<T>>(part));
  } else if constexpr (std::is_integral_v<T>) {
    b.number(part);
  } else if constexpr (std::is_pointer_v<T>) {
    static_assert(std::is_convertible_v<T, const char*>, "log parts: pointers must be C strings");
    text(part == nullptr ? std::string_view("(null)") : std::string_view(part));
  } else {
    static_assert(std::is_convertible_v<const T&, std::string_view>,
                  "log parts are strings, integers, chars or errno_text");
    text(std::string_view(part));
  }
}

}  // namespace detail

class logger {
 public:
  // Stage tags: `nsexec` until staging starts, then `nsexec-<n>`.
  static constexpr int setup_stage = -1;

  // No log pipe: nothing is logged except fatal errors, which go to stderr.
  constexpr logger() noexcept = default;
  constexpr logger(std::optional<int> log_pipe, log_level level) noexcept
      : pipe_(log_pipe ? *log_pipe : -1), level_(level) {}
  explicit constexpr logger(const init_env& env) noexcept : logger(env.log_pipe, env.level) {}

  constexpr void set_stage(int stage) noexcept { stage_ = stage; }
  constexpr int stage() const noexcept { return stage_; }
  constexpr bool enabled(log_level l) const noexcept {
    return pipe_ >= 0 && static_cast<int>(l) <= static_cast<int>(level_);
  }

  // Logs the concatenation of `parts` (strings, integers, chars, errno_text) at level `l`.
  template <class... Parts>
  void log(log_level l, const Parts&... parts) const noexcept {
    if (!enabled(l)) return;
    char buf[max_log_line];
    std::size_t n = format_line(buf, l, parts...);
    emit(pipe_, buf, n);
  }

  template <class... Parts>
  void debug(const Parts&... parts) const noexcept {
    log(log_level::debug, parts...);
  }

  // A fatal error: a `fatal` line on the log pipe, or `FATAL: <text>\n` on stderr without one.
  // Does not exit; the caller exits 1 (runc's status for any failure).
  template <class... Parts>
  void fatal(const Parts&... parts) const noexcept {
    if (pipe_ >= 0) {
      log(log_level::fatal, parts...);
      return;
    }
    char buf[max_log_line];
    detail::line_buffer b(buf, max_log_line - 4);  // room for "...\n"
    b.raw("FATAL: ");
    (detail::append_part(b, false, parts), ...);
    b.finish("...", "\n");
    emit(STDERR_FILENO, buf, b.size());
  }

  // Formats one log line into `buf` and returns its length (<= max_log_line). Exposed so that
  // tests and the parent side can see exactly what `log` would write.
  template <class... Parts>
  std::size_t format_line(char (&buf)[max_log_line], log_level l,
                          const Parts&... parts) const noexcept {
    constexpr std::string_view tail = "\"}\n";
    constexpr std::string_view cut = "...";
    detail::line_buffer b(buf, max_log_line - tail.size() - cut.size());
    b.raw("{\"level\":\"");
    b.raw(name_of(l));
    b.raw("\", \"msg\": \"");
    b.raw("nsexec");
    if (stage_ != setup_stage) {
      b.raw("-");
      b.number(stage_);
    }
    b.raw("[");
    b.number(sys::calls.getpid());
    b.raw("]: ");
    (detail::append_part(b, true, parts), ...);
    b.finish(cut, tail);
    return b.size();
  }

 private:
  static void emit(int fd, const char* buf, std::size_t n) noexcept {
    int saved = errno;
    while (sys::calls.write(fd, buf, n) < 0 && errno == EINTR) {
    }
    errno = saved;
  }

  int pipe_ = -1;
  log_level level_ = log_level::debug;
  int stage_ = setup_stage;
};

}  // namespace nsentry::inline v0::runc
