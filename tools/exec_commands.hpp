// tools/exec_commands.hpp — `nsentry enter` and `nsentry run`.
#pragma once

#include <CLI/CLI.hpp>

namespace nsentry::cli {

inline void add_exec_commands(CLI::App&, int&) {}

}  // namespace nsentry::cli
