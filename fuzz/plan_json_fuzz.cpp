// libFuzzer target for the JSON plan reader (tools/plan_json.hpp): fuzz/run.sh builds and runs
// it (clang, ASan, UBSan, link -lboost_json). The property is fuzz/plan_json_check.hpp.
#include <cstdio>
#include <cstdlib>

#include "fuzz/plan_json_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto bytes = std::as_bytes(std::span(data, size));
  if (auto broken = nsentry::fuzz::check_plan_json_input(bytes); !broken.empty()) {
    std::fprintf(stderr, "property violated: %s\n", broken.c_str());
    std::abort();
  }
  return 0;
}
