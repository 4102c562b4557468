// nsentry/bootstrap.hpp — runc's bootstrap message (the init pipe's netlink-framed request)
// read into an nsentry::plan and written back, byte for byte.
//
//   auto p = bootstrap::parse(bytes);                          // runc >= 1.2 ids
//   auto q = bootstrap::read(fd, runc_protocol::v1_1);         // one message off a stream
//   auto b = bootstrap::encode(*p);                            // runc's attribute order
//
// Wire format (host byte order): a 16-byte nlmsghdr {u32 len, u16 type = 62000, u16 flags,
// u32 seq, u32 pid}, then attributes {u16 nla_len (4 + payload, without padding), u16 type,
// payload, zero padding to 4}. See docs/bootstrap.md for the attribute table.
//
// Strictness (every failure is errc::malformed_message, step "bootstrap", and the detail names
// the byte offset and the attribute, e.g.
// "attribute 27283 at offset 24: length 300 runs past the end of the message (128 bytes)"):
//  - the header: at least 16 bytes, len equal to the bytes given, not over the size limit, type
//    INIT_MSG (NLMSG_ERROR and everything else refused); flags, seq and pid are ignored;
//  - every attribute: nla_len >= 4, payload and padding inside the message, known type, u32 and
//    bool payloads exactly 4 bytes, strings NUL-terminated with no NUL inside;
//  - duplicates are REFUSED. runc's C parser lets the last one win, but runc's encoder never
//    writes one, so a duplicate is corruption or forgery and nsentry will not guess;
//  - contents: NS_PATHS elements "kind:path" with a /proc/self/ns kind and a non-empty path,
//    CLONE_FLAGS holding only CLONE_NEW* bits, maps the kernel would take (id_map::parse),
//    OOM_SCORE_ADJ a decimal in -1000..1000, time offsets "<clock> <secs> <nanosecs>\n".
// After the wire checks the plan must pass plan::validate() (errc::invalid_plan otherwise).
// The parser never reads outside the span, never loops without progress, never throws
// except std::bad_alloc.
//
// Attribute 27290 changed meaning: MOUNT_SOURCES in runc 1.1, TIMENSOFFSET in runc >= 1.2.
// Hence runc_protocol, defaulting to v1_2.
//
// Contract: parent-side; thread-safe (no shared state); read() makes only read(2) calls through
// sys::calls, and reads exactly one message, nothing past it. parse() builds error text only
// when it fails: a message without NS_PATHS, maps, tool paths or mount sources parses with no
// heap allocation, and so does one whose id maps have at most 4 ranges each (id_map keeps them
// in place); otherwise one allocation for the join list, one per id map over 4 ranges, and one
// per string longer than std::string's inline buffer (tests/bootstrap_test.cpp).
#pragma once

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nsentry/error.hpp"
#include "nsentry/fd.hpp"
#include "nsentry/id_map.hpp"
#include "nsentry/ns.hpp"
#include "nsentry/plan.hpp"

namespace nsentry::inline v0 {

// Which runc wrote (or will read) the message; only attribute 27290 depends on it.
enum class runc_protocol : std::uint8_t { v1_1, v1_2 };

// "1.1" or "1.2" (runc >= 1.2); anything else is nullopt. The one parser of protocol names.
constexpr std::optional<runc_protocol> runc_protocol_from_name(std::string_view name) noexcept {
  if (name == "1.1") return runc_protocol::v1_1;
  if (name == "1.2") return runc_protocol::v1_2;
  return std::nullopt;
}

namespace bootstrap {

inline constexpr std::uint16_t init_msg = 62000;  // runc's INIT_MSG nlmsg_type
inline constexpr std::uint16_t nlm_f_request = 1;
inline constexpr std::size_t header_size = 16;
inline constexpr std::size_t attr_header_size = 4;
// nla_len is 16 bits and duplicates are refused, so no valid message exceeds 16 + 10 * 65536
// bytes; 1 MiB leaves room without letting a hostile length field allocate much.
inline constexpr std::size_t default_max_size = 1 << 20;

enum class attr : std::uint16_t {
  clone_flags = 27281,
  ns_paths = 27282,
  uidmap = 27283,
  gidmap = 27284,
  setgroup = 27285,
  oom_score_adj = 27286,
  rootless_euid = 27287,
  uidmappath = 27288,
  gidmappath = 27289,
  mount_sources = 27290,  // runc 1.1
  timensoffset = 27290,   // runc >= 1.2
};

namespace detail {

inline error malformed(std::string detail) {
  return nsentry_error(errc::malformed_message, step::bootstrap, std::move(detail));
}

inline std::string where(std::uint16_t type, std::size_t offset) {
  return "attribute " + std::to_string(type) + " at offset " + std::to_string(offset) + ": ";
}

inline std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

inline std::uint16_t load16(const std::byte* p) noexcept {
  std::uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline std::uint32_t load32(const std::byte* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// How many times `c` occurs in `s` (memchr, not a byte loop: the counts size reservations).
inline std::size_t count_of(std::string_view s, char c) noexcept {
  std::size_t n = 0;
  const char* p = s.data();
  const char* const end = p + s.size();
  while (const void* hit = std::memchr(p, c, static_cast<std::size_t>(end - p))) {
    ++n;
    p = static_cast<const char*>(hit) + 1;
  }
  return n;
}

// Decimal with optional '-', no '+', no spaces: what Go's strconv.Itoa writes.
template <class Int>
bool parse_decimal(std::string_view s, Int& out) noexcept {
  if (s.empty() || s.front() == '+') return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && end == s.data() + s.size();
}

struct attribute_view {
  std::uint16_t type;
  std::size_t offset;
  std::span<const std::byte> payload;

  std::string where() const { return detail::where(type, offset); }

  result<std::uint32_t> u32() const {
    if (payload.size() != 4)
      return malformed(where() + "payload is " + std::to_string(payload.size()) +
                       " bytes, expected a 4-byte integer");
    return load32(payload.data());
  }

  // The payload without its NUL; the NUL is part of nla_len. `allow_inner_nul` is for the
  // NUL-separated MOUNT_SOURCES list.
  result<std::string_view> string(bool allow_inner_nul = false) const {
    if (payload.empty() || payload.back() != std::byte{0})
      return malformed(where() + "string payload lacks its terminating NUL");
    std::string_view s(reinterpret_cast<const char*>(payload.data()), payload.size() - 1);
    if (!allow_inner_nul) {
      if (auto nul = s.find('\0'); nul != std::string_view::npos)
        return malformed(where() + "string has a NUL inside, at offset " +
                         std::to_string(offset + attr_header_size + nul));
    }
    return s;
  }
};

inline result<std::vector<ns_join>> parse_ns_paths(const attribute_view& a) {
  NSENTRY_TRY(auto text, a.string());
  std::vector<ns_join> out;
  out.reserve(count_of(text, ',') + 1);
  ns_set seen;
  for (;;) {
    auto comma = text.find(',');
    std::string_view elem = text.substr(0, comma);
    auto colon = elem.find(':');
    if (colon == std::string_view::npos)
      return malformed(a.where() + "NS_PATHS element " + quoted(elem) + " has no ':'");
    auto kind = ns_kind_from_name(elem.substr(0, colon));
    if (!kind)
      return malformed(a.where() + "NS_PATHS element " + quoted(elem) +
                       " names unknown namespace kind " + quoted(elem.substr(0, colon)));
    if (colon + 1 == elem.size())
      return malformed(a.where() + "NS_PATHS element " + quoted(elem) + " has an empty path");
    if (seen.contains(*kind))
      return malformed(a.where() + "NS_PATHS names " + std::string(name_of(*kind)) + " twice");
    seen.insert(*kind);
    out.push_back({*kind, std::string(elem.substr(colon + 1))});
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

inline result<id_map> parse_map(const attribute_view& a, nsentry::step which) {
  NSENTRY_TRY(auto text, a.string());
  if (text.empty()) return malformed(a.where() + "empty " + std::string(name_of(which)));
  auto m = id_map::parse(text, which);
  if (!m) return malformed(a.where() + std::string(name_of(which)) + " " + m.error().detail);
  return std::move(m).value();
}

inline result<int> parse_oom(const attribute_view& a) {
  NSENTRY_TRY(auto text, a.string());
  long long v = 0;
  if (!parse_decimal(text, v))
    return malformed(a.where() + "oom_score_adj " + quoted(text) + " is not a decimal integer");
  if (v < -1000 || v > 1000)
    return malformed(a.where() + "oom_score_adj " + quoted(text) + " is outside -1000..1000");
  return static_cast<int>(v);
}

inline result<std::string> parse_tool(const attribute_view& a) {
  NSENTRY_TRY(auto text, a.string());
  if (text.empty()) return malformed(a.where() + "empty tool path");
  return std::string(text);
}

// runc 1.1: each mount's source NUL-terminated (empty for non-bind mounts), then one more NUL.
inline result<std::vector<std::string>> parse_mount_sources(const attribute_view& a) {
  NSENTRY_TRY(auto body, a.string(/*allow_inner_nul=*/true));
  if (!body.empty() && body.back() != '\0')
    return malformed(a.where() + "MOUNT_SOURCES does not end in an empty entry");
  std::vector<std::string> out;
  out.reserve(count_of(body, '\0'));
  while (!body.empty()) {
    auto nul = body.find('\0');
    out.emplace_back(body.substr(0, nul));
    body.remove_prefix(nul + 1);
  }
  return out;
}

// runc >= 1.2: "<clock> <secs> <nanosecs>\n" per clock, in no particular order.
inline result<std::vector<time_offset>> parse_time_offsets(const attribute_view& a) {
  NSENTRY_TRY(auto text, a.string());
  std::vector<time_offset> out;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    auto bad = [&](std::string why) {
      return malformed(a.where() + "TIMENSOFFSET line " + std::to_string(line_no) + " " +
                       quoted(line) + ": " + why);
    };
    if (nl == std::string_view::npos) return bad("does not end in a newline");
    text.remove_prefix(nl + 1);
    auto sp1 = line.find(' ');
    auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
      return bad("expected \"<clock> <secs> <nanosecs>\"");
    auto clock = time_clock_from_name(line.substr(0, sp1));
    if (!clock) return bad("unknown clock (monotonic or boottime)");
    time_offset t{*clock, 0, 0};
    if (!parse_decimal(line.substr(sp1 + 1, sp2 - sp1 - 1), t.secs))
      return bad("seconds are not a 64-bit decimal integer");
    if (!parse_decimal(line.substr(sp2 + 1), t.nanosecs) || t.nanosecs < 0 ||
        t.nanosecs > 999'999'999)
      return bad("nanoseconds are not a decimal in 0..999999999");
    for (const auto& o : out)
      if (o.clock == t.clock) return bad("clock given twice");
    out.push_back(t);
  }
  return out;
}

}  // namespace detail

// Parses one whole message: `msg` must be exactly the nlmsghdr's len bytes.
inline result<plan> parse(std::span<const std::byte> msg,
                          runc_protocol protocol = runc_protocol::v1_2,
                          std::size_t max_size = default_max_size) {
  using detail::malformed;
  // Error text is built only on the failure paths: the success path makes no strings at all.
  const auto hdr = [] { return std::string("header at offset 0: "); };
  if (msg.size() < header_size)
    return malformed(hdr() + "message is " + std::to_string(msg.size()) +
                     " bytes, shorter than the 16-byte header");
  const std::uint32_t len = detail::load32(msg.data());
  if (len < header_size)
    return malformed(hdr() + "length " + std::to_string(len) + " is below the 16-byte header");
  if (len > max_size)
    return malformed(hdr() + "length " + std::to_string(len) + " is over the limit of " +
                     std::to_string(max_size) + " bytes");
  if (len > msg.size())
    return malformed(hdr() + "length " + std::to_string(len) +
                     " runs past the end of the message (" + std::to_string(msg.size()) +
                     " bytes)");
  if (len < msg.size())
    return malformed(hdr() + "length " + std::to_string(len) + " but " +
                     std::to_string(msg.size()) + " bytes given");
  if (std::uint16_t type = detail::load16(msg.data() + 4); type != init_msg)
    return malformed("header at offset 4: message type " + std::to_string(type) +
                     (type == 2 ? " (NLMSG_ERROR)" : "") + " is not INIT_MSG (62000)");

  plan p;
  std::size_t first_seen[10] = {};  // offset of each known attribute already read, 0 = none
  std::size_t pos = header_size;
  while (pos < len) {
    if (len - pos < attr_header_size)
      return malformed("attribute at offset " + std::to_string(pos) + ": " +
                       std::to_string(len - pos) + " bytes left, too few for an attribute header");
    const std::uint16_t nla_len = detail::load16(msg.data() + pos);
    const std::uint16_t type = detail::load16(msg.data() + pos + 2);
    const auto at = [type, pos] { return detail::where(type, pos); };
    if (nla_len < attr_header_size)
      return malformed(at() + "length " + std::to_string(nla_len) +
                       " is below the 4-byte attribute header");
    if (nla_len > len - pos)
      return malformed(at() + "length " + std::to_string(nla_len) +
                       " runs past the end of the message (" + std::to_string(len) + " bytes)");
    const std::size_t padded = (std::size_t{nla_len} + 3) & ~std::size_t{3};
    if (padded > len - pos)
      return malformed(at() + "padding runs past the end of the message (" + std::to_string(len) +
                       " bytes)");
    if (type < static_cast<std::uint16_t>(attr::clone_flags) ||
        type > static_cast<std::uint16_t>(attr::mount_sources))
      return malformed(at() + "unknown attribute type");
    std::size_t& seen = first_seen[type - static_cast<std::uint16_t>(attr::clone_flags)];
    if (seen != 0)
      return malformed(at() + "duplicate attribute (first at offset " + std::to_string(seen) + ")");
    seen = pos;

    const detail::attribute_view a{type, pos,
                                   msg.subspan(pos + attr_header_size, nla_len - attr_header_size)};
    switch (static_cast<attr>(type)) {
      case attr::clone_flags: {
        NSENTRY_TRY(auto flags, a.u32());
        auto set = ns_set::from_clone_flags(flags);
        if (!set) return malformed(at() + set.error().detail);
        p.create = set.value();
        break;
      }
      case attr::ns_paths: {
        NSENTRY_TRY(p.join, detail::parse_ns_paths(a));
        break;
      }
      case attr::uidmap: {
        NSENTRY_TRY(p.uid_map, detail::parse_map(a, step::uid_map));
        break;
      }
      case attr::gidmap: {
        NSENTRY_TRY(p.gid_map, detail::parse_map(a, step::gid_map));
        break;
      }
      case attr::setgroup: {
        NSENTRY_TRY(auto v, a.u32());
        p.setgroups = v != 0;
        break;
      }
      case attr::oom_score_adj: {
        NSENTRY_TRY(p.oom_score_adj, detail::parse_oom(a));
        break;
      }
      case attr::rootless_euid: {
        NSENTRY_TRY(auto v, a.u32());
        p.rootless_euid = v != 0;
        break;
      }
      case attr::uidmappath: {
        NSENTRY_TRY(p.uidmap_tool, detail::parse_tool(a));
        break;
      }
      case attr::gidmappath: {
        NSENTRY_TRY(p.gidmap_tool, detail::parse_tool(a));
        break;
      }
      case attr::mount_sources: {  // == attr::timensoffset
        if (protocol == runc_protocol::v1_1) {
          NSENTRY_TRY(p.mount_sources, detail::parse_mount_sources(a));
        } else {
          NSENTRY_TRY(p.time_offsets, detail::parse_time_offsets(a));
        }
        break;
      }
    }
    pos += padded;
  }
  NSENTRY_TRY(p.validate());
  return p;
}

// Reads exactly one message from a stream (runc's init pipe): the header, then len - 16 bytes,
// looping over short reads and EINTR. Refuses a len over `max_size` before allocating.
inline result<plan> read(int fd, runc_protocol protocol = runc_protocol::v1_2,
                         std::size_t max_size = default_max_size) {
  std::vector<std::byte> buf(header_size);
  NSENTRY_TRY(auto got, read_full(fd, buf));
  if (got < header_size)
    return detail::malformed("header at offset " + std::to_string(got) + ": end of stream after " +
                             std::to_string(got) + " of 16 header bytes");
  const std::uint32_t len = detail::load32(buf.data());
  if (len < header_size || len > max_size) return parse(buf, protocol, max_size);
  buf.resize(len);
  NSENTRY_TRY(auto body, read_full(fd, std::span(buf).subspan(header_size)));
  if (body < len - header_size)
    return detail::malformed("header at offset 0: length " + std::to_string(len) +
                             " but the stream ended after " + std::to_string(header_size + body) +
                             " bytes");
  return parse(buf, protocol, max_size);
}

namespace detail {

inline void put16(std::vector<std::byte>& out, std::uint16_t v) {
  std::byte b[2];
  std::memcpy(b, &v, 2);
  out.insert(out.end(), b, b + 2);
}

inline void put32(std::vector<std::byte>& out, std::uint32_t v) {
  std::byte b[4];
  std::memcpy(b, &v, 4);
  out.insert(out.end(), b, b + 4);
}

inline result<void> put_attr(std::vector<std::byte>& out, attr type,
                             std::span<const std::byte> payload) {
  if (payload.size() > 0xFFFF - attr_header_size)
    return nsentry_error(errc::invalid_plan, step::bootstrap,
                         "attribute " + std::to_string(static_cast<unsigned>(type)) + " needs " +
                             std::to_string(payload.size()) +
                             " payload bytes, over the 65531 that nla_len can describe");
  put16(out, static_cast<std::uint16_t>(payload.size() + attr_header_size));
  put16(out, static_cast<std::uint16_t>(type));
  out.insert(out.end(), payload.begin(), payload.end());
  out.resize((out.size() + 3) & ~std::size_t{3}, std::byte{0});
  return success();
}

inline result<void> put_u32(std::vector<std::byte>& out, attr type, std::uint32_t v) {
  std::byte b[4];
  std::memcpy(b, &v, 4);
  return put_attr(out, type, b);
}

// The string and its NUL, which nla_len counts.
inline result<void> put_string(std::vector<std::byte>& out, attr type, std::string_view s) {
  std::string with_nul(s);
  with_nul += '\0';
  return put_attr(out, type, std::as_bytes(std::span(with_nul.data(), with_nul.size())));
}

inline result<void> no_nul(nsentry::step field, std::string_view s) {
  if (s.find('\0') != std::string_view::npos)
    return nsentry_error(errc::invalid_plan, field, "contains a NUL byte");
  return success();
}

}  // namespace detail

// Writes `p` as runc does: CLONE_FLAGS, NS_PATHS, UIDMAPPATH, UIDMAP, GIDMAP, GIDMAPPATH,
// SETGROUP (only when true), OOM_SCORE_ADJ, ROOTLESS_EUID (always), then TIMENSOFFSET (1.2) or
// MOUNT_SOURCES (1.1); header seq 1, flags NLM_F_REQUEST, pid 0. Fails (errc::invalid_plan) on
// a plan that does not validate, a field the protocol cannot carry, or text runc's framing
// cannot express (a ',' in a join path, a NUL anywhere, an attribute over 64 KiB).
inline result<std::vector<std::byte>> encode(const plan& p,
                                             runc_protocol protocol = runc_protocol::v1_2) {
  NSENTRY_TRY(p.validate());
  if (protocol == runc_protocol::v1_1 && !p.time_offsets.empty())
    return nsentry_error(errc::invalid_plan, step::time_offsets,
                         "runc 1.1 messages cannot carry time offsets");
  if (protocol == runc_protocol::v1_2 && p.mount_sources)
    return nsentry_error(errc::invalid_plan, step::mount_sources,
                         "runc >= 1.2 messages cannot carry mount sources");
  std::vector<std::byte> out;
  out.resize(header_size);
  NSENTRY_TRY(detail::put_u32(out, attr::clone_flags, p.create.clone_flags()));
  if (!p.join.empty()) {
    std::string paths;
    for (const auto& j : p.join) {
      if (j.path.find(',') != std::string::npos)
        return nsentry_error(errc::invalid_plan, step::join,
                             "path " + j.path + " contains ',', which NS_PATHS cannot carry");
      NSENTRY_TRY(detail::no_nul(step::join, j.path));
      if (!paths.empty()) paths += ',';
      paths += name_of(j.kind);
      paths += ':';
      paths += j.path;
    }
    NSENTRY_TRY(detail::put_string(out, attr::ns_paths, paths));
  }
  if (p.uidmap_tool) {
    NSENTRY_TRY(detail::no_nul(step::uidmap_tool, *p.uidmap_tool));
    if (p.uidmap_tool->empty())
      return nsentry_error(errc::invalid_plan, step::uidmap_tool, "empty path");
    NSENTRY_TRY(detail::put_string(out, attr::uidmappath, *p.uidmap_tool));
  }
  if (!p.uid_map.empty()) {
    NSENTRY_TRY(detail::put_string(out, attr::uidmap, p.uid_map.format()));
  }
  if (!p.gid_map.empty()) {
    NSENTRY_TRY(detail::put_string(out, attr::gidmap, p.gid_map.format()));
  }
  if (p.gidmap_tool) {
    NSENTRY_TRY(detail::no_nul(step::gidmap_tool, *p.gidmap_tool));
    if (p.gidmap_tool->empty())
      return nsentry_error(errc::invalid_plan, step::gidmap_tool, "empty path");
    NSENTRY_TRY(detail::put_string(out, attr::gidmappath, *p.gidmap_tool));
  }
  if (p.setgroups) {
    NSENTRY_TRY(detail::put_u32(out, attr::setgroup, 1));
  }
  if (p.oom_score_adj) {
    NSENTRY_TRY(detail::put_string(out, attr::oom_score_adj, std::to_string(*p.oom_score_adj)));
  }
  NSENTRY_TRY(detail::put_u32(out, attr::rootless_euid, p.rootless_euid ? 1 : 0));
  if (protocol == runc_protocol::v1_2 && !p.time_offsets.empty()) {
    NSENTRY_TRY(detail::put_string(out, attr::timensoffset, format_time_offsets(p.time_offsets)));
  }
  if (protocol == runc_protocol::v1_1 && p.mount_sources) {
    std::string body;
    for (const auto& s : *p.mount_sources) {
      NSENTRY_TRY(detail::no_nul(step::mount_sources, s));
      body += s;
      body += '\0';
    }
    NSENTRY_TRY(detail::put_string(out, attr::mount_sources, body));
  }
  std::vector<std::byte> hdr;
  detail::put32(hdr, static_cast<std::uint32_t>(out.size()));
  detail::put16(hdr, init_msg);
  detail::put16(hdr, nlm_f_request);
  detail::put32(hdr, 1);  // seq
  detail::put32(hdr, 0);  // pid
  std::copy(hdr.begin(), hdr.end(), out.begin());
  return out;
}

}  // namespace bootstrap
}  // namespace nsentry::inline v0
