// tools/plan_json.hpp — nsentry::plan as JSON, the schema `nsentry decode` prints and
// `nsentry encode` / `nsentry run --plan` read.
//
// {"create": ["user","mnt"], "join": [{"ns":"net","path":"/run/netns/x"}],
//  "uid_map": [{"inside":0,"outside":100000,"count":65536}], "gid_map": [...],
//  "setgroups": false, "rootless_euid": false, "oom_score_adj": -998 | null,
//  "uidmap_tool": "/usr/bin/newuidmap" | null, "gidmap_tool": ... | null,
//  "time_offsets": [{"clock":"monotonic","secs":172800,"nanosecs":0}],
//  "mount_sources": ["/src", ""] | null}
//
// Byte strings (join paths, the two tool paths, mount sources) are Linux paths: any bytes but
// NUL. One is written as a JSON string when it is valid UTF-8 (RFC 3629), otherwise as
// {"base64": "<RFC 4648 base64, padded>"}; the reader takes either form for any of them, so
// every path round-trips byte for byte. A NUL byte (in either form) is refused.
//
// plan_to_json writes every key. plan_from_json is strict: unknown keys, wrong types, numbers
// out of range, unknown kind or clock names, duplicate create entries, non-canonical base64 and
// (plan_from_json_bytes) duplicate keys in any object are errors; a missing
// key means its empty value (null, [], false). The result passes plan::validate().
// Errors: errc::invalid_plan, step "json", detail "<JSON path>: <what>" ("$.uid_map[0].count:
// expected an integer in 0..4294967295"); map and plan rule errors keep their own step.
#pragma once

#include <algorithm>
#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>  // basic_parser<duplicate_key_finder>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nsentry/error.hpp"
#include "nsentry/id_map.hpp"
#include "nsentry/ns.hpp"
#include "nsentry/plan.hpp"

namespace nsentry::cli {

namespace detail {

// Well-formed UTF-8 as RFC 3629 / Unicode table 3-7 define it (no overlong forms, no
// surrogates, nothing above U+10FFFF): exactly the strings Boost.JSON's parser accepts.
inline bool is_utf8(std::string_view s) noexcept {
  auto at = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  for (std::size_t i = 0; i < s.size();) {
    const unsigned c = at(i);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n = 0;
    unsigned lo = 0x80, hi = 0xBF;  // range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;
    if (at(i + 1) < lo || at(i + 1) > hi) return false;
    for (std::size_t k = 2; k <= n; ++k)
      if (at(i + k) < 0x80 || at(i + k) > 0xBF) return false;
    i += n + 1;
  }
  return true;
}

inline constexpr char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

inline std::string base64_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < in.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, in.size() - i);
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 3; ++k)
      v = (v << 8) | (k < n ? static_cast<unsigned char>(in[i + k]) : 0u);
    for (std::size_t k = 0; k < 4; ++k)
      out += k <= n ? base64_alphabet[(v >> (18 - 6 * k)) & 0x3F] : '=';
  }
  return out;
}

// A byte string in the schema: a JSON string when it is valid UTF-8, else {"base64": "..."}.
inline boost::json::value bytes_to_json(std::string_view s) {
  if (is_utf8(s)) return boost::json::string(s);
  return boost::json::object{{"base64", base64_encode(s)}};
}

}  // namespace detail

inline boost::json::object plan_to_json(const plan& p) {
  namespace json = boost::json;
  auto map_json = [](const id_map& m) {
    json::array a;
    for (const auto& r : m.ranges())
      a.push_back(json::object{{"inside", r.inside}, {"outside", r.outside}, {"count", r.count}});
    return a;
  };
  auto opt_string = [](const std::optional<path_string>& s) -> json::value {
    if (s) return detail::bytes_to_json(*s);
    return nullptr;
  };
  json::array create;
  for (ns_kind k : p.create) create.push_back(json::string(name_of(k)));
  json::array join;
  for (const auto& j : p.join)
    join.push_back(json::object{{"ns", name_of(j.kind)}, {"path", detail::bytes_to_json(j.path)}});
  json::array offsets;
  for (const auto& t : p.time_offsets)
    offsets.push_back(
        json::object{{"clock", name_of(t.clock)}, {"secs", t.secs}, {"nanosecs", t.nanosecs}});
  json::value mounts = nullptr;
  if (p.mount_sources) {
    json::array a;
    for (const auto& s : *p.mount_sources) a.push_back(detail::bytes_to_json(s));
    mounts = std::move(a);
  }
  json::value oom = nullptr;
  if (p.oom_score_adj) oom = *p.oom_score_adj;

  json::object o;
  o["create"] = std::move(create);
  o["join"] = std::move(join);
  o["uid_map"] = map_json(p.uid_map);
  o["gid_map"] = map_json(p.gid_map);
  o["setgroups"] = p.setgroups;
  o["rootless_euid"] = p.rootless_euid;
  o["oom_score_adj"] = std::move(oom);
  o["uidmap_tool"] = opt_string(p.uidmap_tool);
  o["gidmap_tool"] = opt_string(p.gidmap_tool);
  o["time_offsets"] = std::move(offsets);
  o["mount_sources"] = std::move(mounts);
  return o;
}

namespace detail {

inline error json_error(const std::string& where, std::string what) {
  return nsentry_error(errc::invalid_plan, step::json, where + ": " + std::move(what));
}

inline result<std::int64_t> json_int(const boost::json::value& v, const std::string& where,
                                     std::int64_t lo, std::int64_t hi) {
  if (v.is_int64() && v.get_int64() >= lo && v.get_int64() <= hi) return v.get_int64();
  if (v.is_uint64() && hi >= 0 && v.get_uint64() <= static_cast<std::uint64_t>(hi))
    return static_cast<std::int64_t>(v.get_uint64());
  return json_error(where,
                    "expected an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
}

inline result<std::string> json_str(const boost::json::value& v, const std::string& where) {
  if (!v.is_string()) return json_error(where, "expected a string");
  return std::string(v.get_string());
}

inline result<const boost::json::array*> json_arr(const boost::json::value& v,
                                                  const std::string& where) {
  if (!v.is_array()) return json_error(where, "expected an array");
  return &v.get_array();
}

inline result<bool> json_bool(const boost::json::value& v, const std::string& where) {
  if (!v.is_bool()) return json_error(where, "expected true or false");
  return v.get_bool();
}

// Checks that `o` has only `keys` and that every one of them is present.
inline result<const boost::json::object*> json_obj(const boost::json::value& v,
                                                   const std::string& where,
                                                   std::initializer_list<std::string_view> keys) {
  if (!v.is_object()) return json_error(where, "expected an object");
  const auto& o = v.get_object();
  for (const auto& [k, _] : o) {
    bool known = false;
    for (auto key : keys) known = known || key == k;
    if (!known) return json_error(where, "unknown key \"" + std::string(k) + "\"");
  }
  for (auto key : keys)
    if (!o.contains(key)) return json_error(where, "missing key \"" + std::string(key) + "\"");
  return &o;
}

inline result<id_map> json_map(const boost::json::value& v, const std::string& where,
                               nsentry::step which) {
  NSENTRY_TRY(auto arr, json_arr(v, where));
  std::vector<id_range> ranges;
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    NSENTRY_TRY(auto o, json_obj((*arr)[i], at, {"inside", "outside", "count"}));
    constexpr std::int64_t max32 = std::numeric_limits<std::uint32_t>::max();
    NSENTRY_TRY(auto in, json_int(o->at("inside"), at + ".inside", 0, max32));
    NSENTRY_TRY(auto out, json_int(o->at("outside"), at + ".outside", 0, max32));
    NSENTRY_TRY(auto count, json_int(o->at("count"), at + ".count", 0, max32));
    ranges.push_back({static_cast<std::uint32_t>(in), static_cast<std::uint32_t>(out),
                      static_cast<std::uint32_t>(count)});
  }
  return id_map::from_ranges(std::move(ranges), which);
}

// Strict RFC 4648 base64: padded to a multiple of 4, '=' only as padding, the unused bits of
// the last character zero, so that each byte string has exactly one spelling. `where` names
// the JSON string in errors.
inline result<std::string> base64_decode(std::string_view in, const std::string& where) {
  if (in.size() % 4 != 0)
    return json_error(where,
                      "base64 length " + std::to_string(in.size()) + " is not a multiple of 4");
  std::size_t pad = 0;
  if (!in.empty() && in.back() == '=') pad = in[in.size() - 2] == '=' ? 2 : 1;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < in.size() - pad; ++i) {
    const char c = in[i];
    std::uint32_t d = 0;
    if (c >= 'A' && c <= 'Z')
      d = static_cast<std::uint32_t>(c - 'A');
    else if (c >= 'a' && c <= 'z')
      d = static_cast<std::uint32_t>(c - 'a' + 26);
    else if (c >= '0' && c <= '9')
      d = static_cast<std::uint32_t>(c - '0' + 52);
    else if (c == '+')
      d = 62;
    else if (c == '/')
      d = 63;
    else
      return json_error(where,
                        "not base64: character " + std::to_string(i) + " is not in the alphabet");
    v = (v << 6) | d;
    if (i % 4 == 3) {
      out += static_cast<char>(v >> 16);
      out += static_cast<char>(v >> 8);
      out += static_cast<char>(v);
      v = 0;
    }
  }
  if (pad > 0) {
    // 4 - pad characters of the last group carry 3 - pad bytes; the rest of their bits is 0.
    const unsigned spare = pad == 1 ? 2 : 4;
    if ((v & ((1u << spare) - 1)) != 0)
      return json_error(where, "not canonical base64: character " +
                                   std::to_string(in.size() - pad - 1) + " has unused bits set");
    v >>= spare;
    if (pad == 1) out += static_cast<char>(v >> 8);
    out += static_cast<char>(v);
  }
  return out;
}

// A byte string in either form (see the top of this file); NUL is refused in both.
inline result<std::string> json_bytes(const boost::json::value& v, const std::string& where) {
  std::string bytes;
  if (v.is_string()) {
    bytes = v.get_string();
  } else if (v.is_object()) {
    NSENTRY_TRY(auto o, json_obj(v, where, {"base64"}));
    NSENTRY_TRY(auto text, json_str(o->at("base64"), where + ".base64"));
    NSENTRY_TRY(bytes, base64_decode(text, where + ".base64"));
  } else {
    return json_error(where, "expected a string or {\"base64\": string}");
  }
  if (auto nul = bytes.find('\0'); nul != std::string::npos)
    return json_error(where, "NUL byte at offset " + std::to_string(nul));
  return bytes;
}

inline result<std::optional<std::string>> json_opt_bytes(const boost::json::value& v,
                                                         const std::string& where) {
  if (v.is_null()) return std::optional<std::string>{};
  NSENTRY_TRY(auto s, json_bytes(v, where));
  return std::optional<std::string>(std::move(s));
}

}  // namespace detail

inline result<plan> plan_from_json(const boost::json::value& v) {
  using namespace detail;
  if (!v.is_object()) return json_error("$", "expected an object");
  const auto& o = v.get_object();
  static constexpr std::string_view keys[] = {"create",        "join",         "uid_map",
                                              "gid_map",       "setgroups",    "rootless_euid",
                                              "oom_score_adj", "uidmap_tool",  "gidmap_tool",
                                              "time_offsets",  "mount_sources"};
  for (const auto& [k, _] : o) {
    bool known = false;
    for (auto key : keys) known = known || key == k;
    if (!known) return json_error("$", "unknown key \"" + std::string(k) + "\"");
  }
  plan p;
  if (auto* c = o.if_contains("create")) {
    NSENTRY_TRY(auto arr, json_arr(*c, "$.create"));
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const std::string at = "$.create[" + std::to_string(i) + "]";
      NSENTRY_TRY(auto name, json_str((*arr)[i], at));
      auto k = ns_kind_from_name(name);
      if (!k) return json_error(at, "unknown namespace kind \"" + name + "\"");
      if (p.create.contains(*k)) return json_error(at, name + " listed twice");
      p.create.insert(*k);
    }
  }
  if (auto* j = o.if_contains("join")) {
    NSENTRY_TRY(auto arr, json_arr(*j, "$.join"));
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const std::string at = "$.join[" + std::to_string(i) + "]";
      NSENTRY_TRY(auto jo, json_obj((*arr)[i], at, {"ns", "path"}));
      NSENTRY_TRY(auto name, json_str(jo->at("ns"), at + ".ns"));
      auto k = ns_kind_from_name(name);
      if (!k) return json_error(at + ".ns", "unknown namespace kind \"" + name + "\"");
      NSENTRY_TRY(auto path, json_bytes(jo->at("path"), at + ".path"));
      if (p.join.size() == p.join.capacity())
        return json_error(at, "more entries than namespace kinds (a kind is joined twice)");
      p.join.push_back({*k, path});
    }
  }
  if (auto* m = o.if_contains("uid_map")) {
    NSENTRY_TRY(p.uid_map, json_map(*m, "$.uid_map", step::uid_map));
  }
  if (auto* m = o.if_contains("gid_map")) {
    NSENTRY_TRY(p.gid_map, json_map(*m, "$.gid_map", step::gid_map));
  }
  if (auto* b = o.if_contains("setgroups")) {
    NSENTRY_TRY(p.setgroups, json_bool(*b, "$.setgroups"));
  }
  if (auto* b = o.if_contains("rootless_euid")) {
    NSENTRY_TRY(p.rootless_euid, json_bool(*b, "$.rootless_euid"));
  }
  if (auto* n = o.if_contains("oom_score_adj"); n && !n->is_null()) {
    NSENTRY_TRY(auto v, json_int(*n, "$.oom_score_adj", -1000, 1000));
    p.oom_score_adj = static_cast<int>(v);
  }
  if (auto* s = o.if_contains("uidmap_tool")) {
    NSENTRY_TRY(p.uidmap_tool, json_opt_bytes(*s, "$.uidmap_tool"));
  }
  if (auto* s = o.if_contains("gidmap_tool")) {
    NSENTRY_TRY(p.gidmap_tool, json_opt_bytes(*s, "$.gidmap_tool"));
  }
  if (auto* t = o.if_contains("time_offsets")) {
    NSENTRY_TRY(auto arr, json_arr(*t, "$.time_offsets"));
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const std::string at = "$.time_offsets[" + std::to_string(i) + "]";
      NSENTRY_TRY(auto to, json_obj((*arr)[i], at, {"clock", "secs", "nanosecs"}));
      NSENTRY_TRY(auto name, json_str(to->at("clock"), at + ".clock"));
      auto clock = time_clock_from_name(name);
      if (!clock) return json_error(at + ".clock", "unknown clock \"" + name + "\"");
      NSENTRY_TRY(auto secs,
                  json_int(to->at("secs"), at + ".secs", std::numeric_limits<std::int64_t>::min(),
                           std::numeric_limits<std::int64_t>::max()));
      NSENTRY_TRY(auto ns, json_int(to->at("nanosecs"), at + ".nanosecs", 0, 999'999'999));
      if (p.time_offsets.size() == p.time_offsets.capacity())
        return json_error(at, "more entries than clocks (a clock is given twice)");
      p.time_offsets.push_back({*clock, secs, ns});
    }
  }
  if (auto* m = o.if_contains("mount_sources"); m && !m->is_null()) {
    NSENTRY_TRY(auto arr, json_arr(*m, "$.mount_sources"));
    std::vector<std::string> sources;
    for (std::size_t i = 0; i < arr->size(); ++i) {
      NSENTRY_TRY(auto s, json_bytes((*arr)[i], "$.mount_sources[" + std::to_string(i) + "]"));
      sources.push_back(std::move(s));
    }
    p.mount_sources = std::move(sources);
  }
  NSENTRY_TRY(p.validate());
  return p;
}

// Finds the first key repeated within one object. boost::json (1.81) builds values with the
// last duplicate winning and has no option to refuse them, so the text is scanned once more
// with a SAX handler. `where` is the object's JSON path, `key` the repeated key.
struct duplicate_key_finder {
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);
  using ec_t = boost::system::error_code;
  using sv = boost::json::string_view;

  struct frame {
    bool object;
    std::string path;
    std::vector<std::string> keys;  // objects: keys seen so far
    std::string key;                // objects: the key whose value comes next
    std::size_t index = 0;          // arrays: the index of the next element
  };
  std::vector<frame> frames;
  std::string partial;
  std::optional<std::pair<std::string, std::string>> found;  // (where, key)

  std::string child_path() const {
    if (frames.empty()) return "$";
    const frame& f = frames.back();
    return f.object ? f.path + "." + f.key : f.path + "[" + std::to_string(f.index) + "]";
  }
  void value_done() {
    if (!frames.empty() && !frames.back().object) ++frames.back().index;
  }
  bool open(bool object) {
    frames.push_back(frame{object, child_path(), {}, {}, 0});
    return true;
  }
  bool close() {
    frames.pop_back();
    value_done();
    return true;
  }
  bool on_document_begin(ec_t&) { return true; }
  bool on_document_end(ec_t&) { return true; }
  bool on_object_begin(ec_t&) { return open(true); }
  bool on_object_end(std::size_t, ec_t&) { return close(); }
  bool on_array_begin(ec_t&) { return open(false); }
  bool on_array_end(std::size_t, ec_t&) { return close(); }
  bool on_key_part(sv s, std::size_t, ec_t&) {
    partial.append(s.data(), s.size());
    return true;
  }
  bool on_key(sv s, std::size_t, ec_t& ec) {
    partial.append(s.data(), s.size());
    frame& f = frames.back();
    for (const auto& k : f.keys)
      if (k == partial) {
        found.emplace(f.path, partial);
        ec = boost::json::error::syntax;  // stop parsing; `found` says why
        return false;
      }
    f.keys.push_back(partial);
    f.key = std::move(partial);
    partial.clear();
    return true;
  }
  bool on_string_part(sv, std::size_t, ec_t&) { return true; }
  bool on_string(sv, std::size_t, ec_t&) {
    value_done();
    return true;
  }
  bool on_number_part(sv, ec_t&) { return true; }
  bool on_int64(std::int64_t, sv, ec_t&) {
    value_done();
    return true;
  }
  bool on_uint64(std::uint64_t, sv, ec_t&) {
    value_done();
    return true;
  }
  bool on_double(double, sv, ec_t&) {
    value_done();
    return true;
  }
  bool on_bool(bool, ec_t&) {
    value_done();
    return true;
  }
  bool on_null(ec_t&) {
    value_done();
    return true;
  }
  bool on_comment_part(sv, ec_t&) { return true; }
  bool on_comment(sv, ec_t&) { return true; }
};

// JSON text -> plan; a syntax error names its byte offset.
inline result<plan> plan_from_json_bytes(std::span<const std::byte> bytes) {
  boost::system::error_code ec;
  boost::json::stream_parser parser;
  std::size_t used = parser.write(reinterpret_cast<const char*>(bytes.data()), bytes.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec)
    return nsentry_error(errc::invalid_plan, step::json,
                         "byte " + std::to_string(used) + ": " + ec.message());
  // Duplicate keys are refused, as the bootstrap codec refuses repeated attributes.
  boost::json::basic_parser<duplicate_key_finder> dup{boost::json::parse_options{}};
  boost::system::error_code dup_ec;
  dup.write_some(false, reinterpret_cast<const char*>(bytes.data()), bytes.size(), dup_ec);
  if (const auto& f = dup.handler().found)
    return detail::json_error(f->first, "duplicate key \"" + f->second + "\"");
  return plan_from_json(parser.release());
}

}  // namespace nsentry::cli
