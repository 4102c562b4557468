// Spawn and join costs, as ratios against the raw floor measured in the same run.
//
//   bazel run -c opt //bench:spawn_bench            (as root: it makes a namespace target)
//
// spawn: fork+exec (copies page tables: grows with RSS) vs nsentry's vfork-style spawn
// (CLONE_VM|CLONE_VFORK: must not grow) vs nsentry's clone3 copy path, each at a small RSS and
// with 1 GiB touched; floor = glibc posix_spawn (also vfork-style) at the small RSS.
// join: setns(pidfd, net|uts) vs opening /proc/<pid>/ns/{net,uts} and two setns; floor = two
// setns on fds opened once. enter: `nsentry enter` vs util-linux `nsenter` running /bin/true;
// floor = posix_spawn of /bin/true.
#include <benchmark/benchmark.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench/ratio_reporter.hpp"
#include "nsentry/child.hpp"
#include "nsentry/exec_spec.hpp"
#include "nsentry/spawn.hpp"
#include "nsentry/join.hpp"

extern char** environ;

namespace {

using namespace nsentry;

// --- parent RSS --------------------------------------------------------------------------------

void* big = nullptr;
constexpr std::size_t big_size = std::size_t{1} << 30;

void set_rss(benchmark::State& state) {
  bool want = state.range(0) != 0;
  if (want && !big) {
    big = ::mmap(nullptr, big_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (big == MAP_FAILED) state.SkipWithError("mmap 1 GiB failed");
    std::memset(big, 1, big_size);  // touched: real page-table entries to copy
  } else if (!want && big) {
    ::munmap(big, big_size);
    big = nullptr;
  }
}

pid_t raw_spawn(const char* path, char* const argv[]) {
  pid_t pid;
  if (::posix_spawn(&pid, path, nullptr, nullptr, argv, environ) != 0) std::abort();
  return pid;
}

void reap(pid_t pid) {
  int st;
  ::waitpid(pid, &st, 0);
}

char true_path[] = "/bin/true";
char* true_argv[] = {true_path, nullptr};

// --- spawn -----------------------------------------------------------------------------------

void BM_floor_posix_spawn(benchmark::State& state) {
  set_rss(state);
  for (auto _ : state) reap(raw_spawn(true_path, true_argv));
}
BENCHMARK(BM_floor_posix_spawn)->Arg(0)->Arg(1)->UseRealTime();

void BM_fork_exec(benchmark::State& state) {
  set_rss(state);
  for (auto _ : state) {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::execve(true_path, true_argv, environ);
      ::_exit(127);
    }
    reap(pid);
  }
}
BENCHMARK(BM_fork_exec)->Arg(0)->Arg(1)->UseRealTime();

void spawn_with(benchmark::State& state, bool share) {
  set_rss(state);
  auto cmd = exec_spec::make({true_path});
  spawn_options o;
  o.share_memory = share;
  for (auto _ : state) {
    auto c = spawn_exec(cmd.value(), o);
    if (!c) {
      state.SkipWithError(c.error().message().c_str());
      break;
    }
    (void)c.value().wait();
  }
}

void BM_nsentry_vfork_spawn(benchmark::State& state) { spawn_with(state, true); }
BENCHMARK(BM_nsentry_vfork_spawn)->Arg(0)->Arg(1)->UseRealTime();

void BM_nsentry_clone3_spawn(benchmark::State& state) { spawn_with(state, false); }
BENCHMARK(BM_nsentry_clone3_spawn)->Arg(0)->Arg(1)->UseRealTime();

// --- join --------------------------------------------------------------------------------------

pid_t target_pid = 0;
pid_t unshare_pid = 0;

void start_target() {
  char* argv[] = {const_cast<char*>("unshare"), const_cast<char*>("--net"),
                  const_cast<char*>("--uts"), const_cast<char*>("--fork"),
                  const_cast<char*>("--kill-child"), const_cast<char*>("sleep"),
                  const_cast<char*>("600"), nullptr};
  if (::posix_spawnp(&unshare_pid, "unshare", nullptr, nullptr, argv, environ) != 0) return;
  for (int i = 0; i < 200 && target_pid == 0; ++i) {
    ::usleep(10000);
    auto path = "/proc/" + std::to_string(unshare_pid) + "/task/" + std::to_string(unshare_pid) +
                "/children";
    if (FILE* f = std::fopen(path.c_str(), "r")) {
      if (std::fscanf(f, "%d", &target_pid) != 1) target_pid = 0;
      std::fclose(f);
    }
  }
  ::usleep(50000);  // let the grandchild exec sleep
}

// Each iteration enters the target's net+uts and comes back (two setns on saved fds).
struct home {
  int net = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  int uts = ::open("/proc/thread-self/ns/uts", O_RDONLY | O_CLOEXEC);
  void back() const {
    ::setns(net, CLONE_NEWNET);
    ::setns(uts, CLONE_NEWUTS);
  }
  ~home() {
    ::close(net);
    ::close(uts);
  }
};

void BM_floor_setns_preopened(benchmark::State& state) {
  home h;
  int net = ::open(proc_ns_path(target_pid, ns_kind::net).c_str(), O_RDONLY | O_CLOEXEC);
  int uts = ::open(proc_ns_path(target_pid, ns_kind::uts).c_str(), O_RDONLY | O_CLOEXEC);
  for (auto _ : state) {
    ::setns(net, CLONE_NEWNET);
    ::setns(uts, CLONE_NEWUTS);
    h.back();
  }
  ::close(net);
  ::close(uts);
}
BENCHMARK(BM_floor_setns_preopened)->UseRealTime();

// The pidfd path (join_pid: one setns(pidfd, flags)) and the per-file path (join_paths on
// /proc/<pid>/ns/*, what join_pid falls back to before Linux 5.8).
void join_bench(benchmark::State& state, bool pidfd_path) {
  home h;
  const std::vector<ns_join> paths{{ns_kind::net, proc_ns_path(target_pid, ns_kind::net)},
                                   {ns_kind::uts, proc_ns_path(target_pid, ns_kind::uts)}};
  for (auto _ : state) {
    auto r = pidfd_path ? join_pid(target_pid, ns_set{ns_kind::net, ns_kind::uts})
                        : join_paths(paths);
    if (!r) {
      state.SkipWithError(r.error().message().c_str());
      break;
    }
    h.back();
  }
}

void BM_join_pid_setns_pidfd(benchmark::State& state) { join_bench(state, true); }
BENCHMARK(BM_join_pid_setns_pidfd)->UseRealTime();

void BM_join_pid_per_fd(benchmark::State& state) { join_bench(state, false); }
BENCHMARK(BM_join_pid_per_fd)->UseRealTime();

// --- enter vs nsenter ----------------------------------------------------------------------------

std::string nsentry_bin() {
  const char* e = std::getenv("NSENTRY_BIN");
  return e ? e : "tools/nsentry";
}

void run_argv(benchmark::State& state, std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto _ : state) {
    pid_t pid;
    if (::posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) {
      state.SkipWithError("spawn failed");
      break;
    }
    int st;
    ::waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      state.SkipWithError("command failed");
      break;
    }
  }
}

void BM_floor_true(benchmark::State& state) { run_argv(state, {"/bin/true"}); }
BENCHMARK(BM_floor_true)->UseRealTime();

void BM_nsentry_enter(benchmark::State& state) {
  run_argv(state, {nsentry_bin(), "enter", "-t", std::to_string(target_pid), "--net", "--uts",
                   "/bin/true"});
}
BENCHMARK(BM_nsentry_enter)->UseRealTime();

void BM_nsenter(benchmark::State& state) {
  run_argv(state, {"nsenter", "-t", std::to_string(target_pid), "--net", "--uts", "/bin/true"});
}
BENCHMARK(BM_nsenter)->UseRealTime();

// --- ratios --------------------------------------------------------------------------------------

void print_ratios(const bench::ratio_reporter& rep) {
  std::printf("\nRatios against the floor measured in this run:\n");
  for (const char* rss : {"/0/real_time", "/1/real_time"})
    for (const char* b : {"BM_fork_exec", "BM_nsentry_vfork_spawn", "BM_nsentry_clone3_spawn",
                          "BM_floor_posix_spawn"})
      rep.ratio(std::string(b) + rss, "BM_floor_posix_spawn/0/real_time");
  rep.ratio("BM_join_pid_setns_pidfd/real_time", "BM_floor_setns_preopened/real_time");
  rep.ratio("BM_join_pid_per_fd/real_time", "BM_floor_setns_preopened/real_time");
  rep.ratio("BM_nsentry_enter/real_time", "BM_floor_true/real_time");
  rep.ratio("BM_nsenter/real_time", "BM_floor_true/real_time");
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  start_target();
  if (target_pid == 0) std::fprintf(stderr, "no namespace target (needs root and unshare)\n");
  bench::ratio_reporter rep;
  benchmark::RunSpecifiedBenchmarks(&rep);
  print_ratios(rep);
  if (unshare_pid) {
    ::kill(unshare_pid, SIGKILL);
    reap(unshare_pid);
  }
  benchmark::Shutdown();
}
