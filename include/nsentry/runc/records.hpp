// nsentry/runc/records.hpp — the records runc's stages add to the library's channel.
//
// Stage-1 reports stage-2's pid (stage-0 writes the pid JSON, then answers with stage-2's
// go-ahead); stage-2 reports that its setup is finished (stage-0 then exits 0).
// Contract: constexpr data; async-signal-safe.
#pragma once

#include <cstdint>

#include "nsentry/channel.hpp"

namespace nsentry::inline v0::runc {

enum class stage_record : std::uint8_t {
  child_pid = static_cast<std::uint8_t>(record_type::first_client),  // value: stage-2's pid
  finished,                                                          // stage-2 is set up
};

constexpr record_type client_record(stage_record r) noexcept { return static_cast<record_type>(r); }

}  // namespace nsentry::inline v0::runc
