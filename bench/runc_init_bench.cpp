// The whole runc-init pipeline against the same plan run directly through the library, and
// runc with nsentry's init against stock runc (its own nsexec), as ratios measured in the same
// run.
//
//   bash bench/run.sh                                        the whole suite, alternated, JSON
//   bazel-bin/bench/runc_init_bench --json=out.json [--quick]           (as root)
//   bazel run -c opt //bench:runc_init_bench      the same under Google Benchmark
//
// runc_init: what runc's Go parent pays — socketpair, fork+exec of `nsentry runc-init -- CMD`
// with the socket as fd 3, the bootstrap message written, the pid report read, stage-0,
// stage-1 and stage-2 reaped (CLONE_PARENT makes all three our children); CMD is /bin/true.
// run_plan: run_plan(plan, /bin/true) and wait — the executor's three processes, no exec of
// nsentry, no message. Plans: `uts` (one cheap namespace) and runc's default set
// (mnt uts ipc pid net, the a_default capture). floor: posix_spawn of /bin/true.
// runc_run: `runc run` of /bin/true in a busybox bundle, the runc built with nsentry's init vs
// stock runc 1.1 (nsexec with its self-clone), same Go parent. Needs RUNC_STOCK, RUNC_NSENTRY
// and RUNC_BUNDLE (bench/run.sh sets them from tests/runc/build-runc.sh's output when it is
// there); skipped with a note otherwise.
// nsexec: the init alone, without runc's Go side — runc 1.1's own nsexec (bench/nsexec_program.c,
// built from runc's source by bench/build_nsexec.sh) vs nsentry's runc/constructor.hpp
// (bench/nsentry_init_program.cpp), each in a static program whose main exits 0, both driven by
// the same runc 1.1-style parent: init socketpair as fd 3, the same message (runc's default set,
// mnt uts ipc pid net, protocol 1.1), the setup byte, the pid report, the three stages reaped;
// with the self-clone (both as runc 1.1 makes it: a read-only bind mount of the binary, as root)
// and without. Needs NSEXEC_PROGRAM(_NOCLONE) and NSENTRY_INIT_PROGRAM(_NOCLONE) (bench/run.sh).
// A third side, c_floor (INIT_FLOOR_PROGRAM(_NOCLONE), bench/init_floor.c), is a lower bound for
// any init of that message under that parent: how far below nsexec an init can get at all.
#include <benchmark/benchmark.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/process.hpp"
#include "bench/ratio_reporter.hpp"
#include "nsentry/bootstrap.hpp"
#include "nsentry/executor.hpp"
#include "nsentry/runc/pid_report.hpp"

extern char** environ;

namespace {

using namespace nsentry;
using bench::env_or;
using bench::reap_ok;
using bench::run_cmd;

plan plan_of(int which) {
  plan p;
  p.create = which == 0
                 ? ns_set{ns_kind::uts}
                 : ns_set{ns_kind::mnt, ns_kind::uts, ns_kind::ipc, ns_kind::pid, ns_kind::net};
  return p;
}

bool floor_true() {
  char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
  pid_t pid;
  if (::posix_spawn(&pid, argv[0], nullptr, nullptr, argv, environ) != 0) return false;
  return reap_ok(pid);
}

bool run_plan_true(const plan& p) {
  static exec_spec cmd = exec_spec::make({"/bin/true"}).value();
  auto c = run_plan(p, cmd);
  if (!c) return false;
  auto st = c.value().wait();
  return st.has_value();
}

// What runc's Go parent does around an init: the message on the init socket (fd 3), with
// protocol 1.1 the setup byte (0x00) before the pid report, and stage-0, stage-1 and stage-2
// reaped, each with status 0.
bool runc_style_parent(std::vector<std::string> args, const std::string& msg, bool setup_byte) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  static std::string env_init = "_LIBCONTAINER_INITPIPE=3";
  char* envp[] = {env_init.data(), nullptr};
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) return false;
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::dup2(sv[1], 3) == 3) ::execve(argv[0], argv.data(), envp);
    ::_exit(127);
  }
  ::close(sv[1]);
  bool ok = ::write(sv[0], msg.data(), msg.size()) == static_cast<ssize_t>(msg.size());
  char setup = 0;
  if (setup_byte) ok = ok && ::read(sv[0], &setup, 1) == 1 && setup == 0;
  auto report = ok ? runc::read_pid_report(sv[0]) : nsentry_error(errc::short_transfer, step::read);
  ::close(sv[0]);
  bool stage0 = bench::reap_ok(pid);
  if (!report) return false;
  bool stage1 = bench::reap_ok(report.value().stage1);
  return bench::reap_ok(report.value().stage2) && stage0 && stage1;
}

// `nsentry runc-init -- /bin/true` (protocol 1.2: no setup byte).
bool runc_init_true(const std::string& msg, const std::string& bin) {
  return runc_style_parent({bin, "runc-init", "--", "/bin/true"}, msg, false);
}

// A program that is its own runc 1.1 init (its constructor).
bool init_program_11(const std::string& msg, const std::string& bin) {
  return runc_style_parent({bin}, msg, true);
}

void build(bench::alternating_suite& s) {
  std::string bin = env_or("NSENTRY_BIN", "tools/nsentry");
  for (int which : {0, 1}) {
    auto bytes = bootstrap::encode(plan_of(which));
    std::string msg(reinterpret_cast<const char*>(bytes.value().data()), bytes.value().size());
    plan p = plan_of(which);
    s.add({"runc_init",
           which == 0 ? "uts" : "default_mnt_uts_ipc_pid_net",
           "run_plan",
           {{"run_plan", [p] { return run_plan_true(p); }},
            {"runc_init", [msg, bin] { return runc_init_true(msg, bin); }},
            {"posix_spawn_true", floor_true}},
           [bin] { return ::access(bin.c_str(), X_OK) == 0; },
           1,
           2,
           "runc_init: fork+exec of nsentry runc-init, message, three stages, exec /bin/true"});
  }
  // The init alone: runc 1.1's nsexec vs nsentry's constructor, same parent, same message.
  {
    auto bytes = bootstrap::encode(plan_of(1), runc_protocol::v1_1);
    std::string msg(reinterpret_cast<const char*>(bytes.value().data()), bytes.value().size());
    for (bool clone : {true, false}) {
      std::string stock = env_or(clone ? "NSEXEC_PROGRAM" : "NSEXEC_PROGRAM_NOCLONE", ""),
                  ours =
                      env_or(clone ? "NSENTRY_INIT_PROGRAM" : "NSENTRY_INIT_PROGRAM_NOCLONE", ""),
                  floor = env_or(clone ? "INIT_FLOOR_PROGRAM" : "INIT_FLOOR_PROGRAM_NOCLONE", "");
      auto runnable = [](const std::string& b) {
        return !b.empty() && ::access(b.c_str(), X_OK) == 0;
      };
      std::vector<bench::side> sides = {
          {"runc_1_1_nsexec", [msg, stock] { return init_program_11(msg, stock); }},
          {"nsentry_constructor", [msg, ours] { return init_program_11(msg, ours); }}};
      // A lower bound for any init (bench/init_floor.c), when built: the target's floor.
      if (runnable(floor))
        sides.push_back({"c_floor", [msg, floor] { return init_program_11(msg, floor); }});
      s.add({"nsexec", clone ? "self_clone" : "no_clone", "runc_1_1_nsexec", sides,
             [stock, ours, runnable] { return runnable(stock) && runnable(ours); }, 1, 2,
             std::string("runc 1.1's nsexec vs nsentry's constructor in a main-returns-0 program, "
                         "runc-style parent, runc's default namespaces, ") +
                 (clone ? "with the self-clone (target 5, <= 0.7x)" : "without the self-clone")});
    }
  }
  // runc run of /bin/true: nsentry's init vs runc's own nsexec, same Go parent.
  std::string stock = env_or("RUNC_STOCK", ""), ours = env_or("RUNC_NSENTRY", ""),
              bundle = env_or("RUNC_BUNDLE", ""),
              root = env_or("RUNC_STATE", "/run/nsentry-bench-runc");
  static int counter = 0;
  auto run = [bundle, root](const std::string& runc, const char* tag) {
    return [runc, bundle, root, tag] {
      std::string id = std::string("bench-") + tag + "-" + std::to_string(::getpid()) + "-" +
                       std::to_string(counter++);
      return run_cmd({runc, "--root", root + "-" + tag, "run", "--bundle", bundle, id});
    };
  };
  bool have = !stock.empty() && !ours.empty() && !bundle.empty();
  s.add({"runc",
         "run_bin_true",
         "stock_runc_nsexec",
         {{"stock_runc_nsexec", run(stock, "stock")}, {"nsentry_runc_init", run(ours, "nsentry")}},
         [have, stock, ours] {
           return have && ::access(stock.c_str(), X_OK) == 0 && ::access(ours.c_str(), X_OK) == 0;
         },
         1,
         6,
         have ? "runc run of /bin/true in a busybox bundle, runc 1.1 built with nsentry's init vs "
                "stock (tests/runc/build-runc.sh); target 5 (<= 0.7x)"
              : "no runc build (RUNC_STOCK/RUNC_NSENTRY/RUNC_BUNDLE unset: run "
                "tests/runc/build-runc.sh and integration.sh first)"});
}

}  // namespace

int main(int argc, char** argv) {
  bench::suite_args args;
  bool suite = args.parse(argc, argv);
  bench::alternating_suite s;
  build(s);
  if (suite) {
    s.run(args.opt, args.filter);
    if (!args.json.empty() && !s.write_json(args.json, "runc_init_bench")) {
      std::perror(args.json.c_str());
      return 1;
    }
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  s.register_with_google_benchmark();
  bench::ratio_reporter rep;
  benchmark::RunSpecifiedBenchmarks(&rep);
  s.print_ratios(rep);
  benchmark::Shutdown();
}
