// nsentry/id_map.hpp — uid/gid map ranges, the kernel's text format, and its rules.
//
// The text is what /proc/<pid>/uid_map takes: one range per line, "inside outside count\n".
// Validation mirrors the kernel's map_write() (Linux >= 4.15), so a map that passes here is one
// the kernel accepts as to form; whether the writer is *allowed* to map it is the kernel's call.
// Contract: pure data, no syscalls; parse/format allocate (parent side only).
#pragma once

#include <algorithm>
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
    if (text.size() > max_text_bytes)
      return bad(which, "text is " + std::to_string(text.size()) + " bytes, over the kernel's " +
                            std::to_string(max_text_bytes));
    // Ranges go to a local buffer first, so that a map of up to 4 lines (the usual) allocates
    // nothing and one of up to 16 allocates once, exactly; error text is built only on the
    // failure paths.
    constexpr std::size_t local_ranges = 16;
    std::uint32_t local[3 * local_ranges];  // inside, outside, count per range; not zeroed
    std::size_t n = 0;
    id_map m;
    const char* p = text.data();
    const char* const end = p + text.size();
    std::size_t line_no = 0;
    while (p != end) {
      ++line_no;
      const char* const line_begin = p;
      const auto line = [line_begin, end] {
        const void* nl = std::memchr(line_begin, '\n', static_cast<std::size_t>(end - line_begin));
        return std::string_view(line_begin, nl ? static_cast<const char*>(nl) : end);
      };
      std::uint32_t r[3];
      for (std::size_t f = 0; f < 3; ++f) {
        while (p != end && (*p == ' ' || *p == '\t')) ++p;
        const char* const start = p;
        const auto overflow = [&] {
          return bad(which, line_no, "field " + std::to_string(f + 1) + " exceeds 4294967295");
        };
        const auto digit = [](char c) {
          return static_cast<unsigned>(static_cast<unsigned char>(c)) - unsigned{'0'};
        };
        // 19 digits cannot overflow 64 bits, so the range check waits for the field's end;
        // longer fields (leading zeros) are checked digit by digit.
        std::uint64_t v = 0;
        for (const char* const fast_end = end - p > 19 ? p + 19 : end; p != fast_end; ++p) {
          const unsigned d = digit(*p);
          if (d > 9) break;
          v = v * 10 + d;
        }
        if (v > UINT32_MAX) return overflow();
        for (; p != end; ++p) {
          const unsigned d = digit(*p);
          if (d > 9) break;
          v = v * 10 + d;
          if (v > UINT32_MAX) return overflow();
        }
        if (p == start) {
          const std::string_view l = line();
          return bad(which, line_no,
                     l.empty() ? std::string("empty line")
                               : "expected 3 decimal fields \"inside outside count\", got \"" +
                                     std::string(l) + "\"");
        }
        r[f] = static_cast<std::uint32_t>(v);
      }
      while (p != end && (*p == ' ' || *p == '\t')) ++p;
      if (p != end && *p != '\n')
        return bad(which, line_no,
                   "trailing text \"" +
                       std::string(line().substr(static_cast<std::size_t>(p - line_begin))) + "\"");
      if (p != end) ++p;  // the '\n'
      if (n < local_ranges) {
        std::memcpy(local + 3 * n, r, sizeof r);
      } else {
        if (n == local_ranges) m.take(local, n, 2 * local_ranges);
        m.ranges_.push_back({r[0], r[1], r[2]});
      }
      ++n;
    }
    if (n <= local_ranges) m.take(local, n, n);
    NSENTRY_TRY(m.validate(which));
    return m;
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
    for (std::size_t i = 0; i < ranges_.size(); ++i) {
      const auto& r = ranges_[i];
      if (r.count == 0) return bad(which, i + 1, "count is 0");
      if (std::uint64_t{r.inside} + r.count > UINT32_MAX)
        return bad(which, i + 1,
                   "inside range " + span(r.inside, r.count) + " runs past 4294967294");
      if (std::uint64_t{r.outside} + r.count > UINT32_MAX)
        return bad(which, i + 1,
                   "outside range " + span(r.outside, r.count) + " runs past 4294967294");
      for (std::size_t j = 0; j < i; ++j) {
        const auto& o = ranges_[j];
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
    if (std::size_t n = ranges_.size() * max_line_bytes > max_text_bytes ? text_size() : 0;
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
  // Appends n ranges held as (inside, outside, count) triples, after reserving `capacity`.
  void take(const std::uint32_t* triples, std::size_t n, std::size_t capacity) {
    ranges_.reserve(capacity);
    for (std::size_t i = 0; i < n; ++i)
      ranges_.push_back({triples[3 * i], triples[3 * i + 1], triples[3 * i + 2]});
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
