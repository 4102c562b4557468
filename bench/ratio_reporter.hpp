// bench/ratio_reporter.hpp — ratios against a baseline measured in the same run.
//
// Google Benchmark's console output, plus each run's time kept by name, so that after all
// benchmarks ran a bench can print "what / baseline" for the pairs it cares about. Absolute
// times on a shared machine drift; ratios within one run are what nsentry reports.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace nsentry::bench {

class ratio_reporter : public benchmark::ConsoleReporter {
 public:
  enum class clock { real, cpu };
  explicit ratio_reporter(clock c = clock::real) : clock_(c) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs)
      if (r.run_type == Run::RT_Iteration && !r.error_occurred)
        times_[r.benchmark_name()] =
            clock_ == clock::real ? r.GetAdjustedRealTime() : r.GetAdjustedCPUTime();
    ConsoleReporter::ReportRuns(runs);
  }

  // Prints "  <what>  1.23x  (vs <base>)"; nothing when either was filtered out of the run.
  void ratio(const std::string& what, const std::string& base, int width = 45) const {
    auto w = times_.find(what), b = times_.find(base);
    if (w == times_.end() || b == times_.end()) return;
    std::printf("  %-*s %6.2fx  (vs %s)\n", width, what.c_str(), w->second / b->second,
                base.c_str());
  }

  // Every recorded time, by benchmark name, in the benchmark's time unit.
  const std::map<std::string, double>& times() const noexcept { return times_; }

 private:
  clock clock_;
  std::map<std::string, double> times_;
};

}  // namespace nsentry::bench
