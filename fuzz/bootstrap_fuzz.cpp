// libFuzzer target for the bootstrap codec: fuzz/run.sh builds and runs it (clang, ASan, UBSan).
#include <cstdio>
#include <cstdlib>

#include "fuzz/bootstrap_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto bytes = std::as_bytes(std::span(data, size));
  if (auto broken = nsentry::fuzz::check_bootstrap_input(bytes); !broken.empty()) {
    std::fprintf(stderr, "property violated: %s\n", broken.c_str());
    std::abort();
  }
  return 0;
}
