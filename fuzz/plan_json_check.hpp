// fuzz/plan_json_check.hpp — the property the JSON plan fuzzer holds tools/plan_json.hpp to.
//
// For any bytes, plan_from_json_bytes returns (never crashes, leaks or reads outside the input)
// and either
//  - refuses with errc::invalid_plan or errc::invalid_id_map and a non-empty detail, or
//  - yields a plan that passes plan::validate(), that plan_to_json -> serialize ->
//    plan_from_json_bytes turns into an equal plan (and serializes to the same text again), and
//    that bootstrap::encode writes for runc 1.2 (no mount sources) and 1.1 (no time offsets)
//    exactly when the message can carry it (representable() below); a written message parses
//    back (bootstrap::parse, same protocol) to the same plan.
#pragma once

#include <boost/json.hpp>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "nsentry/bootstrap.hpp"
#include "tools/plan_json.hpp"

namespace nsentry::fuzz {

// What bootstrap::encode documents it cannot write: a ',' in a join path, a NUL in any string,
// an empty tool path, an attribute payload over 65531 bytes, time offsets in 1.1 or mount
// sources in 1.2.
inline bool representable(const plan& p, runc_protocol proto) {
  constexpr std::size_t max_payload = 0xFFFF - 4;
  auto has_nul = [](std::string_view s) { return s.find('\0') != std::string_view::npos; };
  if (proto == runc_protocol::v1_1 && !p.time_offsets.empty()) return false;
  if (proto == runc_protocol::v1_2 && p.mount_sources) return false;
  std::size_t paths = 0;
  for (const auto& j : p.join) {
    if (j.path.view().find(',') != std::string_view::npos || has_nul(j.path)) return false;
    paths += (paths ? 1 : 0) + name_of(j.kind).size() + 1 + j.path.size();
  }
  if (paths + 1 > max_payload) return false;
  for (const auto* tool : {&p.uidmap_tool, &p.gidmap_tool})
    if (*tool && ((*tool)->empty() || has_nul(**tool) || (*tool)->size() + 1 > max_payload))
      return false;
  if (p.uid_map.format().size() + 1 > max_payload) return false;
  if (p.gid_map.format().size() + 1 > max_payload) return false;
  if (proto == runc_protocol::v1_2 && format_time_offsets(p.time_offsets).size() + 1 > max_payload)
    return false;
  if (proto == runc_protocol::v1_1 && p.mount_sources) {
    std::size_t body = 0;
    for (const auto& s : *p.mount_sources) {
      if (has_nul(s)) return false;
      body += s.size() + 1;
    }
    if (body + 1 > max_payload) return false;
  }
  return true;
}

// Empty when the property holds, else what broke.
inline std::string check_plan_json_input(std::span<const std::byte> data) {
  auto p = cli::plan_from_json_bytes(data);
  if (!p) {
    const auto& e = p.error();
    if (!(e == errc::invalid_plan || e == errc::invalid_id_map))
      return "unexpected error kind: " + e.message();
    if (e.detail.empty() || e.message().empty()) return "error without detail: " + e.message();
    return {};
  }
  const plan& plan = p.value();
  if (auto v = plan.validate(); !v) return "a read plan does not validate: " + v.error().message();

  const std::string text = boost::json::serialize(cli::plan_to_json(plan));
  auto again = cli::plan_from_json_bytes(std::as_bytes(std::span(text.data(), text.size())));
  if (!again) return "plan_to_json output is refused: " + again.error().message() + "\n" + text;
  if (!(again.value() == plan)) return "plan_from_json(plan_to_json(p)) != p\n" + text;
  if (boost::json::serialize(cli::plan_to_json(again.value())) != text)
    return "plan_to_json is not stable\n" + text;

  for (auto proto : {runc_protocol::v1_2, runc_protocol::v1_1}) {
    const std::string tag = proto == runc_protocol::v1_1 ? "[1.1] " : "[1.2] ";
    auto msg = bootstrap::encode(plan, proto);
    if (representable(plan, proto) != msg.has_value())
      return tag +
             (msg ? "encoded a plan it cannot represent\n"
                  : "cannot encode: " + msg.error().message() + "\n") +
             text;
    if (!msg) {
      if (msg.error().detail.empty()) return tag + "encode error without detail";
      continue;
    }
    auto back = bootstrap::parse(msg.value(), proto);
    if (!back)
      return tag + "an encoded plan does not parse: " + back.error().message() + "\n" + text;
    if (!(back.value() == plan)) return tag + "parse(encode(p)) != p\n" + text;
  }
  return {};
}

}  // namespace nsentry::fuzz
