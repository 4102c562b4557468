// The whole runc-init pipeline against the same plan run directly through the library, as
// ratios measured in the same run.
//
//   bazel run -c opt //bench:runc_init_bench     (as root: it creates namespaces)
//
// runc_init: what runc's Go parent pays — socketpair, fork+exec of `nsentry runc-init -- CMD`
// with the socket as fd 3, the bootstrap message written, the pid report read, stage-0,
// stage-1 and stage-2 reaped (CLONE_PARENT makes all three our children); CMD is /bin/true.
// run_plan: run_plan(plan, /bin/true) and wait — the executor's three processes, no exec of
// nsentry, no message. Plans: `uts` (one cheap namespace) and runc's default set
// (mnt uts ipc pid net, the a_default capture). floor: posix_spawn of /bin/true.
#include <benchmark/benchmark.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/ratio_reporter.hpp"
#include "nsentry/bootstrap.hpp"
#include "nsentry/executor.hpp"
#include "nsentry/runc/pid_report.hpp"

extern char** environ;

namespace {

using namespace nsentry;

std::string nsentry_bin() {
  const char* e = std::getenv("NSENTRY_BIN");
  return e ? e : "tools/nsentry";
}

plan plan_of(int which) {
  plan p;
  p.create = which == 0 ? ns_set{ns_kind::uts}
                        : ns_set{ns_kind::mnt, ns_kind::uts, ns_kind::ipc, ns_kind::pid, ns_kind::net};
  return p;
}

void reap(pid_t pid) {
  int st;
  while (::waitpid(pid, &st, 0) == -1 && errno == EINTR) {
  }
}

void BM_floor_true(benchmark::State& state) {
  char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
  for (auto _ : state) {
    pid_t pid;
    if (::posix_spawn(&pid, argv[0], nullptr, nullptr, argv, environ) != 0) {
      state.SkipWithError("posix_spawn");
      return;
    }
    reap(pid);
  }
}
BENCHMARK(BM_floor_true)->UseRealTime();

void BM_run_plan(benchmark::State& state) {
  plan p = plan_of(static_cast<int>(state.range(0)));
  auto cmd = exec_spec::make({"/bin/true"});
  for (auto _ : state) {
    auto c = run_plan(p, cmd.value());
    if (!c) {
      state.SkipWithError(c.error().message().c_str());
      return;
    }
    (void)c.value().wait();
  }
}
BENCHMARK(BM_run_plan)->Arg(0)->Arg(1)->UseRealTime();

void BM_runc_init(benchmark::State& state) {
  auto bytes = bootstrap::encode(plan_of(static_cast<int>(state.range(0))));
  std::string msg(reinterpret_cast<const char*>(bytes.value().data()), bytes.value().size());
  std::string bin = nsentry_bin();
  std::vector<std::string> args{bin, "runc-init", "--", "/bin/true"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string env_init = "_LIBCONTAINER_INITPIPE=3";
  char* envp[] = {env_init.data(), nullptr};
  for (auto _ : state) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
      state.SkipWithError("socketpair");
      return;
    }
    pid_t pid = ::fork();
    if (pid == 0) {
      if (::dup2(sv[1], 3) == 3) ::execve(argv[0], argv.data(), envp);
      ::_exit(127);
    }
    ::close(sv[1]);
    bool ok = ::write(sv[0], msg.data(), msg.size()) == static_cast<ssize_t>(msg.size());
    auto report = ok ? runc::read_pid_report(sv[0]) : nsentry_error(errc::short_transfer, step::write);
    ::close(sv[0]);
    reap(pid);
    if (!report) {
      state.SkipWithError(report.error().message().c_str());
      return;
    }
    reap(report.value().stage1);
    reap(report.value().stage2);
  }
}
BENCHMARK(BM_runc_init)->Arg(0)->Arg(1)->UseRealTime();

void print_ratios(const bench::ratio_reporter& rep) {
  std::printf("\nRatios measured in this run:\n");
  for (const char* arg : {"/0/real_time", "/1/real_time"}) {
    rep.ratio(std::string("BM_runc_init") + arg, std::string("BM_run_plan") + arg, 32);
    rep.ratio(std::string("BM_runc_init") + arg, "BM_floor_true/real_time", 32);
    rep.ratio(std::string("BM_run_plan") + arg, "BM_floor_true/real_time", 32);
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  bench::ratio_reporter rep;
  benchmark::RunSpecifiedBenchmarks(&rep);
  print_ratios(rep);
  benchmark::Shutdown();
}
