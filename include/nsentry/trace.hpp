// nsentry/trace.hpp — an opt-in per-step latency breakdown of an entry sequence.
//
//   NSENTRY_TRY(auto tr, step_trace::make());
//   NSENTRY_TRY(auto c, run_plan(p, cmd, {.trace = &tr}));
//   std::fputs(tr.table().c_str(), stderr);   // or tr.json_lines()
//
// The buffer is one shared anonymous mapping, made by the parent before the clone: the child
// records its steps into it without allocating (async-signal-safe), the parent records its own
// (opening files, the clone, writing maps), and the parent reads it all afterwards. The fork
// for pid/time keeps the mapping shared, so the grandchild's steps land there too. Without a
// trace (a null buffer pointer) every recording site is one untaken branch.
//
// Times are CLOCK_REALTIME nanoseconds (read through the vDSO): a new time namespace offsets
// the monotonic clocks of its processes, and the realtime clock is the one a time namespace
// leaves alone. Contract: record_step() is noexcept, lock-free (one atomic increment) and
// async-signal-safe; make()/table()/json_lines() allocate (parent side).
#pragma once

#include <sys/mman.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "nsentry/error.hpp"
#include "nsentry/ns_kind.hpp"
#include "nsentry/step.hpp"

namespace nsentry::inline v0 {

struct trace_event {
  nsentry::step step = step::none;
  std::uint8_t kind = 0xff;  // an ns_kind, or 0xff
  std::int32_t err = 0;      // errno if the step failed
  std::int32_t pid = 0;      // the process that recorded it (in the caller's pid namespace: 0
                             // when not known there)
  std::uint64_t start_ns = 0;
  std::uint64_t duration_ns = 0;
};

// The shared buffer (lives in the mapping).
struct trace_buffer {
  std::atomic<std::uint32_t> count{0};
  std::uint32_t capacity = 0;
  trace_event events[1];  // `capacity` of them
};

inline std::uint64_t trace_now() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

// Records one step that started at `start` and ends now. No-op without a buffer.
inline void record_step(trace_buffer* b, step s, std::uint64_t start, int err = 0,
                        std::uint8_t kind = 0xff, std::int32_t pid = 0) noexcept {
  if (b == nullptr) return;
  std::uint32_t i = b->count.fetch_add(1, std::memory_order_relaxed);
  if (i >= b->capacity) return;
  b->events[i] = trace_event{s, kind, err, pid, start, trace_now() - start};
}

// Records the start of a step whose end another process sees (the final exec: its duration is
// filled in by trace::end_final when the parent sees the channel close).
inline void mark_start(trace_buffer* b, step s) noexcept {
  if (b == nullptr) return;
  std::uint32_t i = b->count.fetch_add(1, std::memory_order_relaxed);
  if (i >= b->capacity) return;
  b->events[i] = trace_event{s, 0xff, 0, 0, trace_now(), 0};
}

// A scope that records its own duration (parent or child side).
class trace_span {
 public:
  trace_span(trace_buffer* b, step s, std::uint8_t kind = 0xff) noexcept
      : b_(b), s_(s), kind_(kind), start_(b ? trace_now() : 0) {}
  void fail(int err) noexcept { err_ = err; }
  ~trace_span() { record_step(b_, s_, start_, err_, kind_); }
  trace_span(const trace_span&) = delete;
  trace_span& operator=(const trace_span&) = delete;

 private:
  trace_buffer* b_;
  step s_;
  std::uint8_t kind_;
  std::uint64_t start_;
  int err_ = 0;
};

// The caller's handle: owns the mapping.
class step_trace {
 public:
  static result<step_trace> make(std::uint32_t capacity = 128) {
    std::size_t bytes = sizeof(trace_buffer) + capacity * sizeof(trace_event);
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return posix_error(step::mmap);
    auto* b = new (p) trace_buffer;
    b->capacity = capacity;
    step_trace t;
    t.buf_ = b;
    t.bytes_ = bytes;
    return t;
  }
  step_trace(step_trace&& o) noexcept : buf_(std::exchange(o.buf_, nullptr)), bytes_(o.bytes_) {}
  step_trace& operator=(step_trace&& o) noexcept {
    std::swap(buf_, o.buf_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  step_trace(const step_trace&) = delete;
  step_trace& operator=(const step_trace&) = delete;
  ~step_trace() {
    if (buf_) ::munmap(buf_, bytes_);
  }

  trace_buffer* buffer() const noexcept { return buf_; }
  // In the order they were recorded, which is the order the steps *ended*: parent and child
  // record concurrently, so a parent step that began first (the clone) can land after the
  // child's first steps. in_start_order() is the timeline. Read once the sequence is over.
  std::span<const trace_event> events() const noexcept {
    std::uint32_t n = buf_->count.load(std::memory_order_acquire);
    return {buf_->events, n < buf_->capacity ? n : buf_->capacity};
  }
  void clear() noexcept { buf_->count.store(0, std::memory_order_relaxed); }

  // The final step's event (recorded by the child as it starts, e.g. exec) ends now: the
  // parent saw the channel close (exec) or the child exit.
  void end_final(step s) noexcept {
    auto n = events().size();
    for (std::size_t i = 0; i < n; ++i)
      if (buf_->events[i].step == s && buf_->events[i].duration_ns == 0)
        buf_->events[i].duration_ns = trace_now() - buf_->events[i].start_ns;
  }

  // The events sorted by start time (stable: steps that read the same clock tick keep their
  // record order). Allocates.
  std::vector<trace_event> in_start_order() const {
    std::vector<trace_event> v(events().begin(), events().end());
    std::stable_sort(v.begin(), v.end(), [](const trace_event& a, const trace_event& b) {
      return a.start_ns < b.start_ns;
    });
    return v;
  }

  // One line per step, in start order: offset from the first step, duration, step(kind), errno.
  std::string table() const {
    std::string out = "     start µs   duration µs  step\n";
    const auto timeline = in_start_order();
    const std::uint64_t t0 = timeline.empty() ? 0 : timeline.front().start_ns;
    char line[160];
    for (const auto& e : timeline) {
      std::snprintf(
          line, sizeof line, "%13.1f %13.1f  %s%s%s%s%s\n",
          static_cast<double>(e.start_ns - t0) / 1000.0,
          static_cast<double>(e.duration_ns) / 1000.0, std::string(name_of(e.step)).c_str(),
          e.kind < ns_kind_count ? "(" : "",
          e.kind < ns_kind_count ? std::string(name_of(static_cast<ns_kind>(e.kind))).c_str() : "",
          e.kind < ns_kind_count ? ")" : "",
          e.err ? (std::string(": ") + std::strerror(e.err)).c_str() : "");
      out += line;
    }
    return out;
  }

  // {"step":"setns","kind":"net","start_ns":...,"duration_ns":...,"errno":0} per line.
  std::string json_lines() const {
    std::string out;
    for (const auto& e : in_start_order()) {
      out += "{\"step\":\"";
      out += name_of(e.step);
      out += "\"";
      if (e.kind < ns_kind_count) {
        out += ",\"kind\":\"";
        out += name_of(static_cast<ns_kind>(e.kind));
        out += "\"";
      }
      out += ",\"start_ns\":" + std::to_string(e.start_ns) +
             ",\"duration_ns\":" + std::to_string(e.duration_ns) +
             ",\"errno\":" + std::to_string(e.err) + "}\n";
    }
    return out;
  }

 private:
  step_trace() = default;

  trace_buffer* buf_ = nullptr;
  std::size_t bytes_ = 0;
};

}  // namespace nsentry::inline v0
