// bench/ratio_reporter.hpp — ratios against a baseline measured in the same run.
//
// Two ways, one helper:
//  - ratio_reporter: Google Benchmark's console output, plus each run's time kept by name, so
//    that after all benchmarks ran a bench can print "what / baseline" for the pairs it cares
//    about (`bazel run //bench:X`, the quick look while working);
//  - alternating_suite: what bench/run.sh uses. Each comparison's sides run in alternation
//    (A B A B ..., one batch each per round) after a warm-up, every call timed on its own, so
//    that a noisy neighbour or a frequency change hits all sides alike; per side the median and
//    p99 of the calls, per comparison the ratio of medians against the baseline side; JSON out.
// Absolute times on a shared machine drift; ratios within one run are what nsentry reports.
#pragma once

#include <benchmark/benchmark.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <thread>
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

// One side of a comparison: `op` is one measured call (false: it failed, the comparison is
// skipped with a note); `after`, if set, runs untimed after each call (undo what op did).
struct side {
  std::string name;
  std::function<bool()> op;
  std::function<void()> after = {};
};

struct comparison {
  std::string group;     // "setns_per_kind", "spawn", ... (the plot script's grouping)
  std::string name;      // "net", "rss_4096MiB", ...
  std::string baseline;  // the side every ratio is against
  std::vector<side> sides;
  std::function<bool()> setup = {};  // once before the comparison (false: skipped)
  int threads = 1;                   // >1: each batch runs in that many threads at once
  double weight = 1;                 // scales the per-batch time budget (slow operations)
  std::string note = {};
};

struct suite_options {
  int rounds = 25;       // batches per side, alternated
  double batch_ms = 40;  // time budget of one batch (at least min_calls calls)
  int min_calls = 3;
  int max_calls = 20000;
  double warmup_ms = 50;  // per side, before the first round
};

// Parses --quick, --rounds=N, --batch-ms=X, --json=FILE, --filter=SUBSTR out of argv (leaving
// the rest for Google Benchmark). Returns true when any of them asked for the suite.
struct suite_args {
  bool suite = false;
  bool quick = false;
  std::string json, filter;
  suite_options opt;
  bool parse(int& argc, char** argv) {
    int out = 1;
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto val = [&](const char* k) -> const char* {
        return a.rfind(k, 0) == 0 ? argv[i] + std::strlen(k) : nullptr;
      };
      if (a == "--suite") {
        suite = true;
      } else if (a == "--quick") {
        suite = quick = true;
        opt.rounds = 7;
        opt.batch_ms = 12;
        opt.warmup_ms = 15;
        opt.min_calls = 1;
      } else if (auto v = val("--json=")) {
        suite = true;
        json = v;
      } else if (auto v = val("--filter=")) {
        filter = v;
      } else if (auto v = val("--rounds=")) {
        opt.rounds = std::atoi(v);
      } else if (auto v = val("--batch-ms=")) {
        opt.batch_ms = std::atof(v);
      } else {
        argv[out++] = argv[i];
      }
    }
    argc = out;
    argv[argc] = nullptr;
    return suite;
  }
};

class alternating_suite {
 public:
  void add(comparison c) { comps_.push_back(std::move(c)); }
  const std::vector<comparison>& comparisons() const noexcept { return comps_; }

  // Also usable under Google Benchmark: one benchmark per side, "group/name/side".
  void register_with_google_benchmark() const {
    for (const auto& c : comps_)
      for (const auto& s : c.sides) {
        auto setup = c.setup;
        auto sd = s;
        auto* b = benchmark::RegisterBenchmark((c.group + "/" + c.name + "/" + s.name).c_str(),
                                               [setup, sd](benchmark::State& st) {
                                                 if (setup && !setup()) {
                                                   st.SkipWithError("setup failed");
                                                   return;
                                                 }
                                                 for (auto _ : st) {
                                                   if (!sd.op()) {
                                                     st.SkipWithError("operation failed");
                                                     break;
                                                   }
                                                   if (sd.after) {
                                                     st.PauseTiming();
                                                     sd.after();
                                                     st.ResumeTiming();
                                                   }
                                                 }
                                               });
        b->UseRealTime();
        if (c.threads > 1) b->Threads(c.threads);
      }
  }

  // After RunSpecifiedBenchmarks with `rep`: each side against its comparison's baseline.
  void print_ratios(const ratio_reporter& rep) const {
    std::printf("\nRatios against each comparison's baseline (same run, not alternated):\n");
    for (const auto& c : comps_) {
      std::string suffix =
          "/real_time" + (c.threads > 1 ? "/threads:" + std::to_string(c.threads) : std::string());
      std::string prefix = c.group + "/" + c.name + "/";
      for (const auto& s : c.sides)
        if (s.name != c.baseline)
          rep.ratio(prefix + s.name + suffix, prefix + c.baseline + suffix, 60);
    }
  }

  void run(const suite_options& o, const std::string& filter = {}) {
    for (auto& c : comps_) {
      std::string full = c.group + "/" + c.name;
      if (!filter.empty() && full.find(filter) == std::string::npos) continue;
      result r{&c, false, {}, {}};
      run_one(c, o, r);
      results_.push_back(std::move(r));
      print(results_.back());
    }
  }

  // {"comparisons":[{"group","name","baseline","threads","note","skipped",
  //   "sides":[{"name","median_ns","p99_ns","p10_ns","p90_ns","mean_ns","calls"}],
  //   "ratios":{"side": median/baseline median, ...}}]}
  bool write_json(const std::string& path, const std::string& program) const {
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f) return false;
    std::fprintf(f, "{\"program\": \"%s\", \"comparisons\": [", program.c_str());
    for (std::size_t i = 0; i < results_.size(); ++i) {
      const auto& r = results_[i];
      std::fprintf(f,
                   "%s\n  {\"group\": \"%s\", \"name\": \"%s\", \"baseline\": \"%s\", "
                   "\"threads\": %d, \"note\": \"%s\", \"skipped\": %s, \"sides\": [",
                   i ? "," : "", esc(r.c->group).c_str(), esc(r.c->name).c_str(),
                   esc(r.c->baseline).c_str(), r.c->threads, esc(r.note).c_str(),
                   r.skipped ? "true" : "false");
      for (std::size_t j = 0; j < r.stats.size(); ++j) {
        const auto& s = r.stats[j];
        std::fprintf(f,
                     "%s\n    {\"name\": \"%s\", \"median_ns\": %.1f, \"p99_ns\": %.1f, "
                     "\"p10_ns\": %.1f, \"p90_ns\": %.1f, \"mean_ns\": %.1f, \"calls\": %zu}",
                     j ? "," : "", esc(s.name).c_str(), s.median, s.p99, s.p10, s.p90, s.mean,
                     s.calls);
      }
      std::fprintf(f, "], \"ratios\": {");
      bool first = true;
      if (const side_stats* b = r.find(r.c->baseline))
        for (const auto& s : r.stats) {
          std::fprintf(f, "%s\"%s\": %.4f", first ? "" : ", ", esc(s.name).c_str(),
                       s.median / b->median);
          first = false;
        }
      std::fprintf(f, "}}");
    }
    std::fprintf(f, "\n]}\n");
    return std::fclose(f) == 0;
  }

 private:
  struct side_stats {
    std::string name;
    double median = 0, p99 = 0, p10 = 0, p90 = 0, mean = 0;
    std::size_t calls = 0;
  };
  struct result {
    const comparison* c;
    bool skipped = false;
    std::string note;
    std::vector<side_stats> stats;
    const side_stats* find(const std::string& n) const {
      for (const auto& s : stats)
        if (s.name == n) return &s;
      return nullptr;
    }
  };

  static double now_ns() {
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
  }

  static std::string esc(const std::string& in) {
    std::string out;
    for (char ch : in) {
      if (ch == '"' || ch == '\\') out += '\\';
      if (static_cast<unsigned char>(ch) >= 0x20) out += ch;
    }
    return out;
  }

  // One batch: calls until the budget is spent (at least min_calls), each timed. In threads
  // > 1, every thread runs its own batch at the same time. False: a call failed.
  static bool batch(const comparison& c, const side& s, double budget_ns, int min_calls,
                    int max_calls, std::vector<double>* out) {
    auto body = [&](std::vector<double>& v, bool& ok) {
      double start = now_ns();
      for (int n = 0; n < max_calls; ++n) {
        double t0 = now_ns();
        if (!s.op()) {
          ok = false;
          return;
        }
        double t1 = now_ns();
        if (out) v.push_back(t1 - t0);
        if (s.after) s.after();
        if (n + 1 >= min_calls && t1 - start >= budget_ns) break;
      }
    };
    if (c.threads <= 1) {
      std::vector<double> v;
      bool ok = true;
      body(v, ok);
      if (out) out->insert(out->end(), v.begin(), v.end());
      return ok;
    }
    std::vector<std::vector<double>> vs(c.threads);
    std::vector<char> oks(c.threads, 1);
    std::vector<std::thread> ts;
    for (int t = 0; t < c.threads; ++t)
      ts.emplace_back([&, t] {
        bool ok = true;
        body(vs[t], ok);
        oks[t] = ok;
      });
    for (auto& t : ts) t.join();
    for (auto& v : vs)
      if (out) out->insert(out->end(), v.begin(), v.end());
    return std::all_of(oks.begin(), oks.end(), [](char k) { return k != 0; });
  }

  static double pct(const std::vector<double>& sorted, double p) {
    if (sorted.empty()) return 0;
    double idx = p * static_cast<double>(sorted.size() - 1);
    auto lo = static_cast<std::size_t>(idx);
    auto hi = std::min(lo + 1, sorted.size() - 1);
    double frac = idx - static_cast<double>(lo);
    return sorted[lo] * (1 - frac) + sorted[hi] * frac;
  }

  static void run_one(const comparison& c, const suite_options& o, result& r) {
    r.note = c.note;
    if (c.setup && !c.setup()) {
      r.skipped = true;
      if (r.note.empty()) r.note = "setup failed";
      return;
    }
    std::vector<std::vector<double>> samples(c.sides.size());
    for (const auto& s : c.sides)  // warm-up, results dropped
      if (!batch(c, s, o.warmup_ms * 1e6 * c.weight, 1, o.max_calls, nullptr)) {
        r.skipped = true;
        r.note = (r.note.empty() ? "" : r.note + "; ") + s.name + " failed";
        return;
      }
    for (int round = 0; round < o.rounds; ++round)
      for (std::size_t i = 0; i < c.sides.size(); ++i) {
        // Alternate the order within a round too (A B, B A, ...): no side always goes first.
        std::size_t k = round % 2 ? c.sides.size() - 1 - i : i;
        if (!batch(c, c.sides[k], o.batch_ms * 1e6 * c.weight, o.min_calls, o.max_calls,
                   &samples[k])) {
          r.skipped = true;
          r.note = (r.note.empty() ? "" : r.note + "; ") + c.sides[k].name + " failed";
          return;
        }
      }
    for (std::size_t i = 0; i < c.sides.size(); ++i) {
      auto& v = samples[i];
      std::sort(v.begin(), v.end());
      side_stats s;
      s.name = c.sides[i].name;
      s.calls = v.size();
      s.median = pct(v, 0.5);
      s.p99 = pct(v, 0.99);
      s.p10 = pct(v, 0.10);
      s.p90 = pct(v, 0.90);
      double sum = 0;
      for (double x : v) sum += x;
      s.mean = v.empty() ? 0 : sum / static_cast<double>(v.size());
      r.stats.push_back(s);
    }
  }

  static void print(const result& r) {
    std::printf(
        "%s/%s%s\n", r.c->group.c_str(), r.c->name.c_str(),
        r.c->threads > 1 ? (" (" + std::to_string(r.c->threads) + " threads)").c_str() : "");
    if (r.skipped) {
      std::printf("  skipped: %s\n", r.note.c_str());
      std::fflush(stdout);
      return;
    }
    const side_stats* b = r.find(r.c->baseline);
    for (const auto& s : r.stats)
      std::printf("  %-28s median %11.2f us  p99 %11.2f us  n=%-6zu %6.2fx\n", s.name.c_str(),
                  s.median / 1e3, s.p99 / 1e3, s.calls, b ? s.median / b->median : 0.0);
    std::fflush(stdout);
  }

  std::vector<comparison> comps_;
  std::vector<result> results_;
};

}  // namespace nsentry::bench
