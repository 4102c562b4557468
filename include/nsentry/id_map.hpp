// nsentry/id_map.hpp — uid/gid map ranges, the kernel's text format, and its rules.
//
// The text is what /proc/<pid>/uid_map takes: one range per line, "inside outside count\n".
// Validation mirrors the kernel's map_write() (Linux >= 4.15), so a map that passes here is one
// the kernel accepts as to form; whether the writer is *allowed* to map it is the kernel's call.
// Contract: pure data, no syscalls; parse/format allocate (parent side only).
#pragma once

#include <algorithm>
#include <cstdint>
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

class id_map {
 public:
  static constexpr std::size_t max_ranges = 340;      // UID_GID_MAP_MAX_EXTENTS
  static constexpr std::size_t max_text_bytes = 4095;  // the kernel refuses a write >= PAGE_SIZE

  id_map() = default;

  // Validated construction from ranges. `which` names the map in errors ("uid_map"/"gid_map").
  static result<id_map> from_ranges(std::vector<id_range> ranges,
                                    nsentry::step which = step::id_map) {
    id_map m;
    m.ranges_ = std::move(ranges);
    NSENTRY_TRY(m.validate(which));
    return m;
  }

  // Parses the kernel's text. Fields are decimal, separated by spaces or tabs; every line ends
  // in '\n' except that the last one may omit it. Errors name the 1-based line.
  static result<id_map> parse(std::string_view text, nsentry::step which = step::id_map) {
    if (text.size() > max_text_bytes)
      return bad(which, "text is " + std::to_string(text.size()) + " bytes, over the kernel's " +
                            std::to_string(max_text_bytes));
    id_map m;
    // One allocation for the ranges: a line per '\n', plus a last line without one.
    m.ranges_.reserve(static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) +
                      (text.empty() || text.back() == '\n' ? 0 : 1));
    std::size_t line_no = 0;
    while (!text.empty()) {
      ++line_no;
      auto nl = text.find('\n');
      std::string_view line = text.substr(0, nl);
      text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
      id_range r;
      std::uint32_t* fields[] = {&r.inside, &r.outside, &r.count};
      std::size_t pos = 0;
      for (std::size_t f = 0; f < 3; ++f) {
        while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
        std::size_t start = pos;
        std::uint64_t v = 0;
        while (pos < line.size() && line[pos] >= '0' && line[pos] <= '9') {
          v = v * 10 + static_cast<std::uint64_t>(line[pos] - '0');
          if (v > UINT32_MAX)
            return bad(which, line_no, "field " + std::to_string(f + 1) + " exceeds 4294967295");
          ++pos;
        }
        if (pos == start)
          return bad(which, line_no,
                     line.empty() ? std::string("empty line")
                                  : "expected 3 decimal fields \"inside outside count\", got \"" +
                                        std::string(line) + "\"");
        *fields[f] = static_cast<std::uint32_t>(v);
      }
      while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
      if (pos != line.size())
        return bad(which, line_no, "trailing text \"" + std::string(line.substr(pos)) + "\"");
      m.ranges_.push_back(r);
    }
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
        return bad(which, i + 1, "inside range " + span(r.inside, r.count) + " runs past 4294967294");
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
    if (std::size_t n = text_size(); n > max_text_bytes)
      return bad(which, "text is " + std::to_string(n) + " bytes, over the kernel's " +
                            std::to_string(max_text_bytes));
    return success();
  }

  const std::vector<id_range>& ranges() const noexcept { return ranges_; }
  bool empty() const noexcept { return ranges_.empty(); }
  std::size_t size() const noexcept { return ranges_.size(); }
  bool operator==(const id_map&) const = default;

 private:
  static bool overlap(std::uint32_t a, std::uint32_t an, std::uint32_t b, std::uint32_t bn) {
    return std::uint64_t{a} < std::uint64_t{b} + bn && std::uint64_t{b} < std::uint64_t{a} + an;
  }
  static std::string span(std::uint32_t first, std::uint32_t count) {
    return std::to_string(first) + "+" + std::to_string(count);
  }
  static constexpr std::size_t digits(std::uint32_t v) noexcept {
    std::size_t n = 1;
    while (v >= 10) {
      v /= 10;
      ++n;
    }
    return n;
  }
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

  std::vector<id_range> ranges_;
};

}  // namespace nsentry::inline v0
