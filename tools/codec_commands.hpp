// tools/codec_commands.hpp — `nsentry decode` and `nsentry encode`.
#pragma once

#include <CLI/CLI.hpp>

namespace nsentry::cli {

inline void add_codec_commands(CLI::App&, int&) {}

}  // namespace nsentry::cli
