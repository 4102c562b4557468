// fuzz/bootstrap_check.hpp — the property the fuzzer and the replay test both hold the codec to.
//
// For any bytes and either protocol: parsing returns (never crashes, never reads outside the
// input); a failure is malformed_message or invalid_plan with a non-empty detail; a success
// re-encodes, and the re-encoding parses to the same plan and re-encodes to the same bytes
// (decode . encode . decode == decode; encode is a fixed point after one pass).
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "nsentry/bootstrap.hpp"

namespace nsentry::fuzz {

// Empty when the property holds, else what broke.
inline std::string check_bootstrap_input(std::span<const std::byte> data) {
  for (auto proto : {runc_protocol::v1_1, runc_protocol::v1_2}) {
    const std::string tag = proto == runc_protocol::v1_1 ? "[1.1] " : "[1.2] ";
    auto p = bootstrap::parse(data, proto);
    if (!p) {
      const auto& e = p.error();
      if (!(e == errc::malformed_message || e == errc::invalid_plan))
        return tag + "unexpected error kind: " + e.message();
      if (e.detail.empty()) return tag + "error without detail: " + e.message();
      continue;
    }
    auto enc = bootstrap::encode(p.value(), proto);
    if (!enc) return tag + "a parsed plan does not encode: " + enc.error().message();
    auto again = bootstrap::parse(enc.value(), proto);
    if (!again) return tag + "an encoded plan does not parse: " + again.error().message();
    if (!(again.value() == p.value())) return tag + "decode(encode(decode(x))) != decode(x)";
    auto enc2 = bootstrap::encode(again.value(), proto);
    if (!enc2 || enc2.value() != enc.value()) return tag + "encode is not stable";
  }
  return {};
}

}  // namespace nsentry::fuzz
