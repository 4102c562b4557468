// nsentry/id_map.hpp — uid/gid map ranges, the kernel's text format, and its rules.
//
// The text is what /proc/<pid>/uid_map takes: one range per line, "inside outside count\n".
// Validation mirrors the kernel's map_write() (Linux >= 4.15), so a map that passes here is one
// the kernel accepts as to form; whether the writer is *allowed* to map it is the kernel's call.
// Contract: pure data, no syscalls; parse/format allocate (parent side only).
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nsentry/error.hpp"

namespace nsentry::inline v0 {

struct id_range {
  std::uint32_t inside = 0;   // first id inside the namespace
  std::uint32_t outside = 0;  // first id in the parent namespace
  std::uint32_t count = 0;
  bool operator==(const id_range&) const = default;
};

namespace detail {

// An id map's ranges: up to `inline_ranges` in place (a runc map has one or a few, so parsing
// one allocates nothing), more on the heap. Invariant: size_ > inline_ranges exactly when
// heap_ holds all the ranges.
class id_range_store {
 public:
  static constexpr std::size_t inline_ranges = 4;

  id_range_store() = default;
  id_range_store(const id_range_store&) = default;
  id_range_store& operator=(const id_range_store&) = default;
  id_range_store(id_range_store&& o) noexcept : size_(o.size_), heap_(std::move(o.heap_)) {
    std::copy(o.inline_, o.inline_ + inline_ranges, inline_);
    o.size_ = 0;
  }
  id_range_store& operator=(id_range_store&& o) noexcept {
    if (this != &o) {
      size_ = o.size_;
      std::copy(o.inline_, o.inline_ + inline_ranges, inline_);
      heap_ = std::move(o.heap_);
      o.size_ = 0;
    }
    return *this;
  }
  explicit id_range_store(std::vector<id_range>&& v) {
    if (v.size() <= inline_ranges) {
      std::copy(v.begin(), v.end(), inline_);
      size_ = v.size();
    } else {
      size_ = v.size();
      heap_ = std::move(v);
    }
  }

  void reserve(std::size_t n) {
    if (n > inline_ranges) heap_.reserve(n);
  }
  void push_back(const id_range& r) {
    if (size_ < inline_ranges) {
      inline_[size_] = r;
    } else {
      if (size_ == inline_ranges) {
        heap_.reserve(2 * inline_ranges);
        heap_.assign(inline_, inline_ + inline_ranges);
      }
      heap_.push_back(r);
    }
    ++size_;
  }

  const id_range* data() const noexcept { return size_ <= inline_ranges ? inline_ : heap_.data(); }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  const id_range& operator[](std::size_t i) const noexcept { return data()[i]; }
  const id_range* begin() const noexcept { return data(); }
  const id_range* end() const noexcept { return data() + size_; }

  bool operator==(const id_range_store& o) const noexcept {
    return size_ == o.size_ && std::equal(begin(), end(), o.begin());
  }

 private:
  std::size_t size_ = 0;
  id_range inline_[inline_ranges]{};
  std::vector<id_range> heap_;
};

}  // namespace detail

class id_map {
 public:
  static constexpr std::size_t max_ranges = 340;       // UID_GID_MAP_MAX_EXTENTS
  static constexpr std::size_t max_text_bytes = 4095;  // the kernel refuses a write >= PAGE_SIZE

  id_map() = default;

  // Validated construction from ranges. `which` names the map in errors ("uid_map"/"gid_map").
  static result<id_map> from_ranges(std::vector<id_range> ranges,
                                    nsentry::step which = step::id_map) {
    id_map m;
    m.ranges_ = detail::id_range_store(std::move(ranges));
    NSENTRY_TRY(m.validate(which));
    return m;
  }

  // Parses the kernel's text. Fields are decimal, separated by spaces or tabs; every line ends
  // in '\n' except that the last one may omit it. Errors name the 1-based line.
  static result<id_map> parse(std::string_view text, nsentry::step which = step::id_map) {
    id_map m;
    NSENTRY_TRY(m.assign_parsed(text, which));
    return m;
  }

  // parse() into this map: its ranges replaced, or left empty on failure. No id_map is moved.
  result<void> assign_parsed(std::string_view text, nsentry::step which = step::id_map) {
    if (!ranges_.empty()) ranges_ = {};
    auto r = parse_ranges(text, which);
    if (!r) ranges_ = {};
    return r;
  }

  // "0 100000 65536\n" per range, the format runc and the kernel use.
  std::string format() const {
    std::string out;
    for (const auto& r : ranges_) {
      out += std::to_string(r.inside);
      out += ' ';
      out += std::to_string(r.outside);
      out += ' ';
      out += std::to_string(r.count);
      out += '\n';
    }
    return out;
  }

  // The kernel's rules: at most 340 ranges, counts > 0, no range past 2^32-1, no two ranges
  // overlapping inside nor outside, text under one page.
  result<void> validate(nsentry::step which = step::id_map) const {
    if (ranges_.size() > max_ranges)
      return bad(which, std::to_string(ranges_.size()) + " ranges, over the kernel's limit of " +
                            std::to_string(max_ranges));
    const id_range* const rs = ranges_.data();
    const std::size_t size = ranges_.size();
    for (std::size_t i = 0; i < size; ++i) {
      const id_range& r = rs[i];
      if (r.count == 0) return bad(which, i + 1, "count is 0");
      if (std::uint64_t{r.inside} + r.count > UINT32_MAX)
        return bad(which, i + 1,
                   "inside range " + span(r.inside, r.count) + " runs past 4294967294");
      if (std::uint64_t{r.outside} + r.count > UINT32_MAX)
        return bad(which, i + 1,
                   "outside range " + span(r.outside, r.count) + " runs past 4294967294");
      for (std::size_t j = 0; j < i; ++j) {
        const id_range& o = rs[j];
        if (overlap(o.inside, o.count, r.inside, r.count))
          return bad(which, i + 1,
                     "inside range " + span(r.inside, r.count) + " overlaps line " +
                         std::to_string(j + 1) + " (" + span(o.inside, o.count) + ")");
        if (overlap(o.outside, o.count, r.outside, r.count))
          return bad(which, i + 1,
                     "outside range " + span(r.outside, r.count) + " overlaps line " +
                         std::to_string(j + 1) + " (" + span(o.outside, o.count) + ")");
      }
    }
    // Only a map of more than 124 ranges can have a text over one page.
    if (std::size_t n = size * max_line_bytes > max_text_bytes ? text_size() : 0;
        n > max_text_bytes)
      return bad(which, "text is " + std::to_string(n) + " bytes, over the kernel's " +
                            std::to_string(max_text_bytes));
    return success();
  }

  // A view of the ranges, valid while the map is neither modified nor destroyed.
  std::span<const id_range> ranges() const noexcept { return {ranges_.data(), ranges_.size()}; }
  bool empty() const noexcept { return ranges_.empty(); }
  std::size_t size() const noexcept { return ranges_.size(); }
  bool operator==(const id_map&) const = default;

 private:
  // Everything but the reset on failure; the map is empty. The loop builds no text: errors are
  // made out of line.
  result<void> parse_ranges(std::string_view text, nsentry::step which) {
    if (text.size() > max_text_bytes)
      return bad(which, "text is " + std::to_string(text.size()) + " bytes, over the kernel's " +
                            std::to_string(max_text_bytes));
    // The text with 8 NULs after it: every scan stops at a NUL (neither digit nor blank) without
    // an end check, and digits are read 8 bytes at a time (read_digits).
    char buf[max_text_bytes + 8];
    std::memcpy(buf, text.data(), text.size());
    std::memset(buf + text.size(), 0, 8);
    const char* p = buf;
    const char* const end = buf + text.size();
    std::size_t line_no = 0;
    bool invalid = false;  // a range validate() refuses
    while (p != end) {
      ++line_no;
      const char* const line_begin = p;
      std::uint32_t r[3];
      for (std::size_t f = 0; f < 3; ++f) {
        while (*p == ' ' || *p == '\t') ++p;
        const digit_run d = read_digits(p);
        if (d.length == 0) return no_fields(which, line_no, line_begin, end);
        if (d.value > UINT32_MAX) return overflow(which, line_no, f);
        r[f] = static_cast<std::uint32_t>(d.value);
        p += d.length;
      }
      while (*p == ' ' || *p == '\t') ++p;
      if (p != end && *p != '\n') return trailing(which, line_no, line_begin, p, end);
      if (p != end) ++p;  // the '\n'
      const id_range range{r[0], r[1], r[2]};
      invalid = invalid || !fits(range, ranges_.data(), ranges_.size());
      // None up to 4 ranges (kept in place), then one allocation for up to 16.
      if (ranges_.size() == detail::id_range_store::inline_ranges) ranges_.reserve(16);
      ranges_.push_back(range);
    }
    // validate()'s checks were made above, but for the count of ranges and the text's size;
    // validate() names the first failure.
    if (invalid || ranges_.size() * max_line_bytes > max_text_bytes) return validate(which);
    return success();
  }

  // Does `r` pass validate()'s checks after `prev`, assumed valid?
  static bool fits(const id_range& r, const id_range* prev, std::size_t n) noexcept {
    if (r.count == 0 || std::uint64_t{r.inside} + r.count > UINT32_MAX ||
        std::uint64_t{r.outside} + r.count > UINT32_MAX)
      return false;
    for (std::size_t j = 0; j < n; ++j)
      if (overlap(prev[j].inside, prev[j].count, r.inside, r.count) ||
          overlap(prev[j].outside, prev[j].count, r.outside, r.count))
        return false;
    return true;
  }

  static unsigned digit(char c) noexcept {
    return static_cast<unsigned>(static_cast<unsigned char>(c)) - unsigned{'0'};
  }
  struct digit_run {
    std::uint64_t value;  // over UINT32_MAX: only known to be over it
    std::size_t length;
  };
  // The decimal digits at `p`. The 8 bytes at `p` must be readable, and the digits must end
  // before the readable bytes do.
  static digit_run read_digits(const char* p) noexcept {
    std::uint64_t x;
    std::memcpy(&x, p, 8);
    if constexpr (std::endian::native == std::endian::big) x = __builtin_bswap64(x);
    // Byte i (the i-th character) of t is its digit's value if it is a digit; a byte's top bit
    // in `other` is set when it is not. A carry out of a byte only reaches later characters,
    // after a non-digit.
    const std::uint64_t t = x ^ 0x3030303030303030;
    const std::uint64_t other = ((t + 0x7676767676767676) | t) & 0x8080808080808080;
    if (other == 0) return read_long_digits(p);
    const auto count = static_cast<unsigned>(std::countr_zero(other)) / 8;
    if (count <= 1) return {t & 0xF & (0 - std::uint64_t{count}), count};  // 0 and 1 digit
    // The digits in the top `count` bytes, the first one lowest; then pairs, quads, octets.
    std::uint64_t v = t << (64 - 8 * count);
    v = (v * 10 + (v >> 8)) & 0x00FF00FF00FF00FF;
    v = (v * 100 + (v >> 16)) & 0x0000FFFF0000FFFF;
    return {(v * 10000 + (v >> 32)) & 0xFFFFFFFF, count};
  }
  // 8 digits or more (leading zeros, or a number past 99999999), one at a time, saturating.
  [[gnu::noinline]] static digit_run read_long_digits(const char* p) noexcept {
    std::uint64_t v = 0;
    std::size_t n = 0;
    for (unsigned d; (d = digit(p[n])) <= 9; ++n) v = v > UINT32_MAX ? v : v * 10 + d;
    return {v, n};
  }
  // The line that starts at `begin`, without its '\n'.
  static std::string_view line_at(const char* begin, const char* end) noexcept {
    const void* nl = std::memchr(begin, '\n', static_cast<std::size_t>(end - begin));
    return std::string_view(begin, nl ? static_cast<const char*>(nl) : end);
  }
  [[gnu::cold, gnu::noinline]] static error no_fields(nsentry::step which, std::size_t line_no,
                                                      const char* begin, const char* end) {
    const std::string_view l = line_at(begin, end);
    return bad(which, line_no,
               l.empty() ? std::string("empty line")
                         : "expected 3 decimal fields \"inside outside count\", got \"" +
                               std::string(l) + "\"");
  }
  [[gnu::cold, gnu::noinline]] static error overflow(nsentry::step which, std::size_t line_no,
                                                     std::size_t field) {
    return bad(which, line_no, "field " + std::to_string(field + 1) + " exceeds 4294967295");
  }
  [[gnu::cold, gnu::noinline]] static error trailing(nsentry::step which, std::size_t line_no,
                                                     const char* begin, const char* p,
                                                     const char* end) {
    return bad(which, line_no,
               "trailing text \"" +
                   std::string(line_at(begin, end).substr(static_cast<std::size_t>(p - begin))) +
                   "\"");
  }
  static bool overlap(std::uint32_t a, std::uint32_t an, std::uint32_t b, std::uint32_t bn) {
    return std::uint64_t{a} < std::uint64_t{b} + bn && std::uint64_t{b} < std::uint64_t{a} + an;
  }
  static std::string span(std::uint32_t first, std::uint32_t count) {
    return std::to_string(first) + "+" + std::to_string(count);
  }
  static constexpr std::size_t digits(std::uint32_t v) noexcept {
    return v < 10           ? 1
           : v < 100        ? 2
           : v < 1000       ? 3
           : v < 10000      ? 4
           : v < 100000     ? 5
           : v < 1000000    ? 6
           : v < 10000000   ? 7
           : v < 100000000  ? 8
           : v < 1000000000 ? 9
                            : 10;
  }
  static constexpr std::size_t max_line_bytes = 3 * 10 + 3;  // "4294967295 4294967295 ...\n"
  // The size of format()'s text, without building it.
  std::size_t text_size() const noexcept {
    std::size_t n = 0;
    for (const auto& r : ranges_) n += digits(r.inside) + digits(r.outside) + digits(r.count) + 3;
    return n;
  }
  static error bad(nsentry::step which, std::string detail) {
    return nsentry_error(errc::invalid_id_map, which, std::move(detail));
  }
  static error bad(nsentry::step which, std::size_t line, std::string detail) {
    return bad(which, "line " + std::to_string(line) + ": " + detail);
  }

  detail::id_range_store ranges_;
};

}  // namespace nsentry::inline v0
