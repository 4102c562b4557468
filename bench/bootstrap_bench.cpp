// Parse + validate of each runc capture through the public API (bootstrap::parse), against
// getppid() (the cheapest real syscall) measured in the same run.
//
// Method: for each capture, `--rounds` rounds (default 301); each round times one batch of
// `--batch` getppid() calls and one batch of `--batch` parses of the capture,
// alternating which side goes first, and records parse-time / getppid-time for that round
// (thread CPU time, CLOCK_THREAD_CPUTIME_ID: time the thread spent preempted by other work on
// this shared machine is not charged to either side).
// Reported per capture: the median and p99 of those per-round ratios, the spread (p10..p90),
// both sides' median ns per call, and the heap allocations one parse makes (operator new calls,
// counted by this binary's replacement of operator new). Ratios, not absolute times: the machine
// is shared, and a ratio within one round cancels most of the drift. Run under `nice -n -10`.
//
//   bazel run -c opt //bench:bootstrap_bench -- [--rounds=N] [--batch=N] [--json=FILE]
//
// Instructions per parse, which the machine's load does not change (callgrind; the difference
// of two runs takes out start-up and loading):
//   valgrind --tool=callgrind bootstrap_bench --only=c_multimap --loop=2000   # minus --loop=1000
//
// Reads the captures from ../shared/testdata/runc-1.1.5 or $NSENTRY_CAPTURES.
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "nsentry/bootstrap.hpp"

namespace {

std::atomic<long> g_allocations{0};

}  // namespace

// GCC pairs the replaced operator new with free() at -O2 and warns; the pairing is intended.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

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

template <class T>
inline void keep(T&& v) {
  asm volatile("" : : "g"(&v) : "memory");
}

double now_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

double time_getppid(long batch) {
  const double t0 = now_ns();
  for (long i = 0; i < batch; ++i) {
    pid_t p = ::getppid();
    keep(p);
  }
  return (now_ns() - t0) / static_cast<double>(batch);
}

bool g_failed = false;

double time_parse(const capture& c, long batch) {
  const double t0 = now_ns();
  for (long i = 0; i < batch; ++i) {
    std::span<const std::byte> msg(c.bytes);
    keep(msg);  // the compiler may not assume the bytes are the same each time
    auto p = nsentry::bootstrap::parse(msg, nsentry::runc_protocol::v1_1);
    if (!p) g_failed = true;
    keep(p);
  }
  return (now_ns() - t0) / static_cast<double>(batch);
}

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

long flag(int argc, char** argv, std::string_view name, long fallback) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a.starts_with(name) && a.size() > name.size() && a[name.size()] == '=')
      return std::atol(argv[i] + name.size() + 1);
  }
  return fallback;
}

const char* flag_str(int argc, char** argv, std::string_view name) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a.starts_with(name) && a.size() > name.size() && a[name.size()] == '=')
      return argv[i] + name.size() + 1;
  }
  return nullptr;
}

struct row {
  std::string name;
  std::size_t bytes;
  long allocations;
  double median, p99, p10, p90, parse_ns, getppid_ns;
};

}  // namespace

int main(int argc, char** argv) {
  const long rounds = flag(argc, argv, "--rounds", 301);
  const long batch = flag(argc, argv, "--batch", 2000);
  const char* json = flag_str(argc, argv, "--json");
  const char* only = flag_str(argc, argv, "--only");
  const long loop = flag(argc, argv, "--loop", 0);
  static const auto captures = [only] {
    auto all = load();
    if (only) std::erase_if(all, [only](const capture& c) { return c.name != only; });
    return all;
  }();
  if (captures.empty()) {
    std::fprintf(stderr, "no captures in %s (set NSENTRY_CAPTURES)\n", captures_dir().c_str());
    return 1;
  }
  if (loop > 0) {  // parses only, untimed: for callgrind
    for (const auto& c : captures) time_parse(c, loop);
    return g_failed ? 1 : 0;
  }
  std::vector<row> rows;
  for (const auto& c : captures) {
    // Allocations of one parse (the result and everything it owns, freed at scope end).
    long allocs;
    {
      const long before = g_allocations.load();
      {
        auto p = nsentry::bootstrap::parse(c.bytes, nsentry::runc_protocol::v1_1);
        if (!p) {
          std::fprintf(stderr, "%s: %s\n", c.name.c_str(), p.error().detail.c_str());
          return 1;
        }
      }
      allocs = g_allocations.load() - before;
    }
    // Warm-up, then alternating rounds.
    time_getppid(batch);
    time_parse(c, batch);
    std::vector<double> ratios, pns, gns;
    ratios.reserve(static_cast<std::size_t>(rounds));
    for (long r = 0; r < rounds; ++r) {
      double g, p;
      if (r % 2 == 0) {
        g = time_getppid(batch);
        p = time_parse(c, batch);
      } else {
        p = time_parse(c, batch);
        g = time_getppid(batch);
      }
      ratios.push_back(p / g);
      pns.push_back(p);
      gns.push_back(g);
    }
    rows.push_back({c.name, c.bytes.size(), allocs, quantile(ratios, 0.5), quantile(ratios, 0.99),
                    quantile(ratios, 0.1), quantile(ratios, 0.9), quantile(pns, 0.5),
                    quantile(gns, 0.5)});
  }
  if (g_failed) {
    std::fprintf(stderr, "a capture failed to parse\n");
    return 1;
  }
  std::printf("parse+validate / getppid() per capture (%ld alternating rounds of %ld calls each)\n",
              rounds, batch);
  std::printf("%-20s %5s %6s %8s %8s %15s %9s %9s\n", "capture", "bytes", "allocs", "median", "p99",
              "p10..p90", "parse ns", "getppid");
  double worst = 0;
  for (const auto& r : rows) {
    worst = std::max(worst, r.median);
    std::printf("%-20s %5zu %6ld %7.2fx %7.2fx %6.2f..%-6.2f %9.1f %9.1f\n", r.name.c_str(),
                r.bytes, r.allocations, r.median, r.p99, r.p10, r.p90, r.parse_ns, r.getppid_ns);
  }
  std::printf("worst median ratio: %.2fx (target <= 1x)\n", worst);
  if (json) {
    if (FILE* f = std::fopen(json, "w")) {
      std::fprintf(f, "{\"rounds\":%ld,\"batch\":%ld,\"captures\":[", rounds, batch);
      for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto& r = rows[i];
        std::fprintf(f,
                     "%s{\"name\":\"%s\",\"bytes\":%zu,\"allocations\":%ld,\"ratio_median\":%.4f,"
                     "\"ratio_p99\":%.4f,\"ratio_p10\":%.4f,\"ratio_p90\":%.4f,\"parse_ns\":%.2f,"
                     "\"getppid_ns\":%.2f}",
                     i ? "," : "", r.name.c_str(), r.bytes, r.allocations, r.median, r.p99, r.p10,
                     r.p90, r.parse_ns, r.getppid_ns);
      }
      std::fprintf(f, "]}\n");
      std::fclose(f);
    }
  }
  return 0;
}
