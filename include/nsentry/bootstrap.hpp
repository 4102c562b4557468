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
// when it fails, and builds the plan in the result it returns. It allocates nothing for a
// message whose paths fit path_string's inline capacity (111 bytes) and whose id maps have at
// most 4 ranges: every runc capture (tests/bootstrap_test.cpp). Otherwise one allocation per
// longer path, one per id map of 5..16 ranges, and runc 1.1's MOUNT_SOURCES list.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
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
inline constexpr unsigned attr_count =
    static_cast<unsigned>(attr::mount_sources) - static_cast<unsigned>(attr::clone_flags) + 1;

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

  // The accessors are small enough to inline; their errors are built out of line.
  result<std::uint32_t> u32() const {
    if (payload.size() != 4) return not_u32();
    return load32(payload.data());
  }

  // The payload without its NUL, which is part of nla_len; not checked for a NUL inside, for
  // the texts whose own parser refuses one (and which then report string()'s error).
  result<std::string_view> terminated() const {
    if (payload.empty() || payload.back() != std::byte{0}) return unterminated();
    return std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size() - 1);
  }

  // The payload without its NUL. `allow_inner_nul` is for the NUL-separated MOUNT_SOURCES list.
  result<std::string_view> string(bool allow_inner_nul = false) const {
    NSENTRY_TRY(auto s, terminated());
    if (!allow_inner_nul) {
      if (auto nul = s.find('\0'); nul != std::string_view::npos) return nul_inside(nul);
    }
    return s;
  }

 private:
  [[gnu::cold, gnu::noinline]] error not_u32() const {
    return malformed(where() + "payload is " + std::to_string(payload.size()) +
                     " bytes, expected a 4-byte integer");
  }
  [[gnu::cold, gnu::noinline]] error unterminated() const {
    return malformed(where() + "string payload lacks its terminating NUL");
  }
  [[gnu::cold, gnu::noinline]] error nul_inside(std::size_t at) const {
    return malformed(where() + "string has a NUL inside, at offset " +
                     std::to_string(offset + attr_header_size + at));
  }
};

// The first NS_PATHS element of `text` that parse_ns_paths would refuse, and why, with the text
// it always gave; only called when there is one.
[[gnu::cold, gnu::noinline]] inline error ns_paths_error(const attribute_view& a,
                                                         std::string_view text) {
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
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return malformed(a.where() + "NS_PATHS refused");  // not reached: called on a refusal
}

// Each kind's name as an integer, its i-th byte the name's i-th character.
constexpr std::uint64_t packed_name(std::string_view name) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < name.size(); ++i)
    v |= std::uint64_t{static_cast<unsigned char>(name[i])} << (8 * i);
  return v;
}
static_assert(std::ranges::all_of(ns_kinds, [](const auto& r) { return r.name.size() < 8; }),
              "kind_before_colon reads a kind, its ':' included, in 8 bytes");

// A perfect hash of the packed names: (name * multiplier) >> (64 - bits) differs for every
// kind; the multiplier is found at compile time.
inline constexpr unsigned kind_hash_bits = 4;
inline constexpr std::uint64_t kind_hash_multiplier = [] {
  for (std::uint64_t m = 0x9E3779B97F4A7C15;; m += 2) {
    bool used[1 << kind_hash_bits] = {};
    bool ok = true;
    for (const auto& r : ns_kinds) {
      const auto h = (packed_name(r.name) * m) >> (64 - kind_hash_bits);
      ok = ok && !used[h];
      used[h] = true;
    }
    if (ok) return m;
  }
}();
struct kind_slot {
  std::uint64_t name = 0;  // 0: no kind hashes here
  ns_kind kind{};
};
inline constexpr std::array<kind_slot, 1 << kind_hash_bits> kind_slots = [] {
  std::array<kind_slot, 1 << kind_hash_bits> out{};
  for (const auto& r : ns_kinds)
    out[(packed_name(r.name) * kind_hash_multiplier) >> (64 - kind_hash_bits)] = {
        packed_name(r.name), r.kind};
  return out;
}();

// The kind named by "<kind>:" at the start of [p, end) (`end - p` >= 8), and the ':' after it,
// if a known kind's name and its ':' are there; else nullopt.
inline std::optional<std::pair<ns_kind, const char*>> kind_before_colon(const char* p,
                                                                        const char* end) noexcept {
  std::uint64_t x;
  std::memcpy(&x, p, 8);
  if constexpr (std::endian::native == std::endian::big) x = __builtin_bswap64(x);
  // The first ':' byte: the lowest set top bit of `m` (exact for the first zero byte of y).
  const std::uint64_t y = x ^ 0x3A3A3A3A3A3A3A3A;
  const std::uint64_t m = (y - 0x0101010101010101) & ~y & 0x8080808080808080;
  if (m == 0) return std::nullopt;
  const auto colon = static_cast<std::size_t>(std::countr_zero(m)) / 8;
  if (colon == 0 || colon >= static_cast<std::size_t>(end - p)) return std::nullopt;
  const std::uint64_t key = x & ((std::uint64_t{1} << (8 * colon)) - 1);
  const kind_slot& slot = kind_slots[(key * kind_hash_multiplier) >> (64 - kind_hash_bits)];
  if (slot.name != key) return std::nullopt;
  return std::pair{slot.kind, p + colon};
}

// "kind:path,kind:path" into `out`, which is empty and holds one join per kind: a kind named
// twice is refused before it could overflow. The loop builds no text (ns_paths_error does).
inline result<void> parse_ns_paths(const attribute_view& a, plan::join_list& out) {
  NSENTRY_TRY(auto text, a.string());
  ns_set seen;
  const char* p = text.data();
  const char* const end = p + text.size();
  for (;;) {
    const void* c = std::memchr(p, ',', static_cast<std::size_t>(end - p));
    const char* const comma = c ? static_cast<const char*>(c) : end;
    std::optional<std::pair<ns_kind, const char*>> kind;
    if (comma - p >= 8) {
      kind = kind_before_colon(p, comma);
    } else if (const void* colon = std::memchr(p, ':', static_cast<std::size_t>(comma - p))) {
      auto k = ns_kind_from_name(std::string_view(p, static_cast<const char*>(colon)));
      if (k) kind.emplace(*k, static_cast<const char*>(colon));
    }
    if (!kind || kind->second + 1 == comma || seen.contains(kind->first))
      return ns_paths_error(a, text);
    seen.insert(kind->first);
    out.emplace_back(kind->first, std::string_view(kind->second + 1, comma));
    if (comma == end) break;
    p = comma + 1;
  }
  return success();
}

// The map parser refuses a NUL, so the text is searched for one only when it fails.
inline result<void> parse_map(const attribute_view& a, nsentry::step which, id_map& out) {
  NSENTRY_TRY(auto text, a.terminated());
  if (text.empty()) return malformed(a.where() + "empty " + std::string(name_of(which)));
  if (auto r = out.assign_parsed(text, which); !r) {
    NSENTRY_TRY(a.string());
    return malformed(a.where() + std::string(name_of(which)) + " " + r.error().detail);
  }
  return success();
}

// parse_decimal refuses a NUL, so the text is searched for one only when it fails.
inline result<int> parse_oom(const attribute_view& a) {
  NSENTRY_TRY(auto text, a.terminated());
  // Up to "-1000": read here, as parse_decimal would.
  if (const std::size_t neg = !text.empty() && text[0] == '-';
      text.size() > neg && text.size() - neg <= 4) {
    int v = 0;
    std::size_t i = neg;
    for (unsigned d;
         i < text.size() && (d = static_cast<unsigned char>(text[i]) - unsigned{'0'}) <= 9; ++i)
      v = v * 10 + static_cast<int>(d);
    if (i == text.size() && v <= 1000) return neg ? -v : v;
  }
  long long v = 0;
  if (!parse_decimal(text, v)) {
    NSENTRY_TRY(a.string());
    return malformed(a.where() + "oom_score_adj " + quoted(text) + " is not a decimal integer");
  }
  if (v < -1000 || v > 1000)
    return malformed(a.where() + "oom_score_adj " + quoted(text) + " is outside -1000..1000");
  return static_cast<int>(v);
}

inline result<void> parse_tool(const attribute_view& a, std::optional<path_string>& out) {
  NSENTRY_TRY(auto text, a.string());
  if (text.empty()) return malformed(a.where() + "empty tool path");
  out.emplace(text);
  return success();
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

// runc >= 1.2: "<clock> <secs> <nanosecs>\n" per clock, in no particular order. Into `out`,
// which is empty and holds one offset per clock: a clock given twice is refused before it
// could overflow.
inline result<void> parse_time_offsets(const attribute_view& a, plan::time_offset_list& out) {
  NSENTRY_TRY(auto text, a.string());
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
  return success();
}

// Why the message's header is refused; only called when it is.
[[gnu::cold, gnu::noinline]] inline error header_error(std::span<const std::byte> msg,
                                                       std::size_t max_size) {
  const auto hdr = [] { return std::string("header at offset 0: "); };
  if (msg.size() < header_size)
    return malformed(hdr() + "message is " + std::to_string(msg.size()) +
                     " bytes, shorter than the 16-byte header");
  const std::uint32_t len = load32(msg.data());
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
  const std::uint16_t type = load16(msg.data() + 4);
  return malformed("header at offset 4: message type " + std::to_string(type) +
                   (type == 2 ? " (NLMSG_ERROR)" : "") + " is not INIT_MSG (62000)");
}

// Why the attribute header at `pos` (every one before it sound) is refused; only called when
// it is.
[[gnu::cold, gnu::noinline]] inline error attribute_error(std::span<const std::byte> msg,
                                                          std::size_t len, std::size_t pos) {
  if (len - pos < attr_header_size)
    return malformed("attribute at offset " + std::to_string(pos) + ": " +
                     std::to_string(len - pos) + " bytes left, too few for an attribute header");
  const std::uint16_t nla_len = load16(msg.data() + pos);
  const std::uint16_t type = load16(msg.data() + pos + 2);
  const std::string at = where(type, pos);
  if (nla_len < attr_header_size)
    return malformed(at + "length " + std::to_string(nla_len) +
                     " is below the 4-byte attribute header");
  if (nla_len > len - pos)
    return malformed(at + "length " + std::to_string(nla_len) +
                     " runs past the end of the message (" + std::to_string(len) + " bytes)");
  const std::size_t padded = (std::size_t{nla_len} + 3) & ~std::size_t{3};
  if (padded > len - pos)
    return malformed(at + "padding runs past the end of the message (" + std::to_string(len) +
                     " bytes)");
  if (type < static_cast<std::uint16_t>(attr::clone_flags) ||
      type > static_cast<std::uint16_t>(attr::mount_sources))
    return malformed(at + "unknown attribute type");
  std::size_t first = header_size;
  while (first < pos && load16(msg.data() + first + 2) != type)
    first += (std::size_t{load16(msg.data() + first)} + 3) & ~std::size_t{3};
  return malformed(at + "duplicate attribute (first at offset " + std::to_string(first) + ")");
}

// parse()'s body, filling `p` (a default plan). The checks build no text: header_error,
// attribute_error and the field parsers' own error functions do, when one fails.
inline result<void> parse_into(std::span<const std::byte> msg, runc_protocol protocol,
                               std::size_t max_size, plan& p) {
  if (msg.size() < header_size) return header_error(msg, max_size);
  const std::uint32_t len = load32(msg.data());
  if (len < header_size || len > max_size || len != msg.size() ||
      load16(msg.data() + 4) != init_msg)
    return header_error(msg, max_size);

  unsigned seen = 0;  // bit t: attribute clone_flags + t already read
  std::size_t pos = header_size;
  while (pos < len) {
    if (len - pos < attr_header_size) return attribute_error(msg, len, pos);
    const std::uint16_t nla_len = load16(msg.data() + pos);
    const std::uint16_t type = load16(msg.data() + pos + 2);
    const std::size_t padded = (std::size_t{nla_len} + 3) & ~std::size_t{3};
    // Unsigned: a type below clone_flags wraps to a large index.
    const unsigned index = static_cast<unsigned>(type) - static_cast<unsigned>(attr::clone_flags);
    if (nla_len < attr_header_size || padded > len - pos || index >= attr_count ||
        (seen >> index & 1))
      return attribute_error(msg, len, pos);
    seen |= 1u << index;
    const auto at = [type, pos] { return detail::where(type, pos); };

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
        NSENTRY_TRY(detail::parse_ns_paths(a, p.join));
        break;
      }
      case attr::uidmap: {
        NSENTRY_TRY(detail::parse_map(a, step::uid_map, p.uid_map));
        break;
      }
      case attr::gidmap: {
        NSENTRY_TRY(detail::parse_map(a, step::gid_map, p.gid_map));
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
        NSENTRY_TRY(detail::parse_tool(a, p.uidmap_tool));
        break;
      }
      case attr::gidmappath: {
        NSENTRY_TRY(detail::parse_tool(a, p.gidmap_tool));
        break;
      }
      case attr::mount_sources: {  // == attr::timensoffset
        if (protocol == runc_protocol::v1_1) {
          NSENTRY_TRY(p.mount_sources, detail::parse_mount_sources(a));
        } else {
          NSENTRY_TRY(detail::parse_time_offsets(a, p.time_offsets));
        }
        break;
      }
    }
    pos += padded;
  }
  return p.validate();
}

}  // namespace detail

// Parses one whole message: `msg` must be exactly the nlmsghdr's len bytes.
inline result<plan> parse(std::span<const std::byte> msg,
                          runc_protocol protocol = runc_protocol::v1_2,
                          std::size_t max_size = default_max_size) {
  // The plan is built inside the result that is returned, which one return statement of one
  // variable lets the compiler construct in the caller's storage: the plan is never moved.
  result<plan> out{std::in_place_type<plan>};
  if (auto r = detail::parse_into(msg, protocol, max_size, out.assume_value()); !r)
    out = std::move(r).error();
  return out;
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
      if (j.path.view().find(',') != std::string_view::npos)
        return nsentry_error(
            errc::invalid_plan, step::join,
            "path " + std::string(j.path) + " contains ',', which NS_PATHS cannot carry");
      NSENTRY_TRY(detail::no_nul(step::join, j.path));
      if (!paths.empty()) paths += ',';
      paths += name_of(j.kind);
      paths += ':';
      paths += j.path.view();
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
