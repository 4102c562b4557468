// Parse + validate of each runc capture, against getppid() (the cheapest real syscall) measured
// in the same run. Each parse benchmark reports `x_getppid`: its time per message over getppid's
// time per call. Run: bazel run -c opt //bench:bootstrap_bench -- [--benchmark_min_time=0.05]
// (reads the captures from ../shared/testdata/runc-1.1.5 or $NSENTRY_CAPTURES).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "bench/ratio_reporter.hpp"
#include "nsentry/bootstrap.hpp"

namespace {

struct capture {
  std::string name;
  std::vector<std::byte> bytes;
};

std::filesystem::path captures_dir() {
  if (const char* d = std::getenv("NSENTRY_CAPTURES")) return d;
  // bazel run executes in the runfiles tree; BUILD_WORKSPACE_DIRECTORY is the source tree.
  if (const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY"))
    return std::filesystem::path(ws) / "../shared/testdata/runc-1.1.5";
  return "../shared/testdata/runc-1.1.5";
}

std::vector<capture> load() {
  std::vector<capture> out;
  for (const auto& e : std::filesystem::directory_iterator(captures_dir())) {
    if (e.path().extension() != ".bin") continue;
    std::ifstream f(e.path(), std::ios::binary);
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::vector<std::byte> b(s.size());
    std::transform(s.begin(), s.end(), b.begin(), [](char c) { return std::byte(c); });
    out.push_back({e.path().stem().string(), std::move(b)});
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.name < b.name; });
  return out;
}

void BM_getppid(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(::getppid());
}

void BM_parse(benchmark::State& state, const capture* c) {
  for (auto _ : state) {
    auto p = nsentry::bootstrap::parse(c->bytes, nsentry::runc_protocol::v1_1);
    if (!p) state.SkipWithError("capture does not parse");
    benchmark::DoNotOptimize(p);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * c->bytes.size()));
}


}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  static const auto captures = load();
  if (captures.empty()) {
    std::fprintf(stderr, "no captures in %s (set NSENTRY_CAPTURES)\n", captures_dir().c_str());
    return 1;
  }
  benchmark::RegisterBenchmark("getppid", BM_getppid);
  for (const auto& c : captures)
    benchmark::RegisterBenchmark(("parse/" + c.name).c_str(), BM_parse, &c);
  nsentry::bench::ratio_reporter reporter(nsentry::bench::ratio_reporter::clock::cpu);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  const auto& ns_per_op = reporter.times();
  auto base = ns_per_op.find("getppid");
  if (base == ns_per_op.end()) return 0;  // filtered out: no baseline, no ratios
  std::printf("\nparse+validate time / getppid() time (same run, getppid = %.1f ns):\n",
              base->second);
  for (const auto& [name, ns] : ns_per_op)
    if (name != "getppid") std::printf("  %-28s %6.2fx  (%.0f ns)\n", name.c_str(), ns / base->second, ns);
  benchmark::Shutdown();
  return 0;
}
