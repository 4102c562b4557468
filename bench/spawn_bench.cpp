// Namespace entry and spawn costs, as ratios against the raw floor measured in the same run.
//
//   bash bench/run.sh                                  the whole suite, alternated, JSON
//   bazel-bin/bench/spawn_bench --json=out.json [--quick] [--filter=spawn/]   (as root)
//   bazel run -c opt //bench:spawn_bench               the same comparisons under Google
//                                                      Benchmark (no alternation, no p99)
//
// Every comparison is a set of sides run in alternation by bench::alternating_suite; the
// baseline side is the floor (raw syscalls on pre-opened fds, posix_spawn, a C program).
//  setns_per_kind   setns(fd, kind) into a target's namespace and back, per kind (user: not
//                   reversible in one process, left out)
//  join             setns(pidfd, all) vs per-fd setns; nsentry join_pid/join_paths vs the raw
//                   floor (pidfd_open + setns(pidfd, flags) + close)
//  unshare          unshare(kind) vs nsentry create_namespaces, per kind (then setns back)
//  userns_maps      new user namespace + uid/gid maps + exec /bin/true: run_plan vs raw
//  scoped           enter_scoped<net_ns> + restore vs two raw setns on open fds, 1 and 2 threads
//  enter            `nsentry enter -t PID --all -- /bin/true` vs `nsenter -t PID -a /bin/true`
//                   vs bench/enter_floor.c (the same work in C)
//  spawn            fork+exec, vfork, raw clone3(CLONE_VM|CLONE_VFORK), posix_spawn, nsentry
//                   spawn_exec (vfork-style and copy) with the parent at 10 MiB / 256 MiB /
//                   1 GiB / 4 GiB resident (touched, no huge pages), then 10 MiB again
// The namespace target is `unshare --net --uts --ipc --mount --pid --cgroup --time --fork
// sleep`: seven kinds differ from ours.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "bench/process.hpp"
#include "bench/ratio_reporter.hpp"
#include "nsentry/child.hpp"
#include "nsentry/create.hpp"
#include "nsentry/exec_spec.hpp"
#include "nsentry/executor.hpp"
#include "nsentry/join.hpp"
#include "nsentry/scoped_entry.hpp"
#include "nsentry/spawn.hpp"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

extern char** environ;

#if defined(__x86_64__)
// long bench_clone3_run(clone_args*, size, int (*fn)(void*), void* arg): raw clone3; the child
// runs fn(arg) on the stack given in the args and exits with its result. (A C wrapper cannot
// return in a child that has a different stack.)
asm(R"(
  .text
  .globl bench_clone3_run
  .type bench_clone3_run,@function
bench_clone3_run:
  push %r12
  push %r13
  mov %rdx, %r12
  mov %rcx, %r13
  mov $435, %eax
  syscall
  test %rax, %rax
  jnz 1f
  xor %ebp, %ebp
  mov %r13, %rdi
  call *%r12
  mov %eax, %edi
  mov $60, %eax
  syscall
  hlt
1:
  pop %r13
  pop %r12
  ret
  .size bench_clone3_run, .-bench_clone3_run
)");
extern "C" long bench_clone3_run(void* args, std::size_t size, int (*fn)(void*), void* arg);
#endif

namespace {

using namespace nsentry;
using bench::env_or;
using bench::reap;
using bench::reap_ok;
using bench::run_cmd;

struct kind_row {
  const char* name;
  int flag;
  ns_kind kind;
};
// The kinds a process can enter and leave again (user: no way back to the parent namespace).
constexpr kind_row kinds[] = {
    {"cgroup", CLONE_NEWCGROUP, ns_kind::cgroup}, {"ipc", CLONE_NEWIPC, ns_kind::ipc},
    {"mnt", CLONE_NEWNS, ns_kind::mnt},           {"net", CLONE_NEWNET, ns_kind::net},
    {"pid", CLONE_NEWPID, ns_kind::pid},          {"time", CLONE_NEWTIME, ns_kind::time},
    {"uts", CLONE_NEWUTS, ns_kind::uts},
};
constexpr std::size_t n_kinds = sizeof kinds / sizeof kinds[0];

// --- the namespace target and our own namespaces -------------------------------------------------

pid_t target_pid = 0;
pid_t unshare_pid = 0;
int home_fd[n_kinds];
int target_fd[n_kinds];
int target_pidfd = -1;
int all_flags = 0;
ns_set all_kinds;

void start_target() {
  const char* a[] = {"unshare", "--net",  "--uts",        "--ipc", "--mount", "--pid", "--cgroup",
                     "--time",  "--fork", "--kill-child", "sleep", "3600",    nullptr};
  // Its stdio on /dev/null: it must not hold a pipe of whoever reads our output.
  posix_spawn_file_actions_t fa;
  ::posix_spawn_file_actions_init(&fa);
  for (int fd : {0, 1, 2}) ::posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", O_RDWR, 0);
  int rc = ::posix_spawnp(&unshare_pid, "unshare", &fa, nullptr, const_cast<char**>(a), environ);
  ::posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    unshare_pid = 0;
    return;
  }
  for (int i = 0; i < 300 && target_pid == 0; ++i) {
    ::usleep(10000);
    auto path = "/proc/" + std::to_string(unshare_pid) + "/task/" + std::to_string(unshare_pid) +
                "/children";
    if (FILE* f = std::fopen(path.c_str(), "r")) {
      if (std::fscanf(f, "%d", &target_pid) != 1) target_pid = 0;
      std::fclose(f);
    }
  }
  ::usleep(50000);  // let the grandchild exec sleep
  for (std::size_t i = 0; i < n_kinds; ++i) {
    home_fd[i] =
        ::open(("/proc/self/ns/" + std::string(kinds[i].name)).c_str(), O_RDONLY | O_CLOEXEC);
    target_fd[i] = ::open(proc_ns_path(target_pid, kinds[i].kind).c_str(), O_RDONLY | O_CLOEXEC);
    all_flags |= kinds[i].flag;
    all_kinds.insert(kinds[i].kind);
  }
  target_pidfd = static_cast<int>(::syscall(SYS_pidfd_open, target_pid, 0));
}

void go_home() {
  for (std::size_t i = 0; i < n_kinds; ++i) ::setns(home_fd[i], kinds[i].flag);
}

bool have_target() { return target_pid > 0 && target_pidfd >= 0; }

// --- parent RSS --------------------------------------------------------------------------------

void* big = nullptr;
std::size_t big_size = 0;
std::size_t base_rss = 0;  // bytes resident before any buffer

std::size_t rss_now() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<std::size_t>(resident) * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

// Makes the whole process about `mib` MiB resident: a buffer, touched, with small pages (huge
// pages would make fork's page-table copy 512 times cheaper than a real heap's).
bool set_rss(std::size_t mib) {
  std::size_t want = (mib << 20) > base_rss ? (mib << 20) - base_rss : 0;
  if (big) ::munmap(big, big_size);
  big = nullptr;
  big_size = want;
  if (want == 0) return true;
  big = ::mmap(nullptr, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (big == MAP_FAILED) {
    big = nullptr;
    return false;
  }
  ::madvise(big, want, MADV_NOHUGEPAGE);
  std::memset(big, 1, want);
  return true;
}

// --- spawn methods -----------------------------------------------------------------------------

char true_path[] = "/bin/true";
char* true_argv[] = {true_path, nullptr};

bool do_posix_spawn() {
  pid_t pid;
  if (::posix_spawn(&pid, true_path, nullptr, nullptr, true_argv, environ) != 0) return false;
  return reap_ok(pid);
}

bool do_fork_exec() {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execve(true_path, true_argv, environ);
    ::_exit(127);
  }
  return pid > 0 && reap_ok(pid);
}

bool do_vfork_exec() {
  pid_t pid = ::vfork();
  if (pid == 0) {
    ::execve(true_path, true_argv, environ);
    ::_exit(127);
  }
  return pid > 0 && reap_ok(pid);
}

#if defined(__x86_64__)
struct raw_clone_args {
  std::uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};
char* clone_stack = nullptr;  // mapped once, not zero-filled per call
constexpr std::size_t clone_stack_size = 64 * 1024;

int clone_child(void*) {
  ::execve(true_path, true_argv, environ);
  return 127;
}

bool do_clone3_vm_vfork() {
  if (!clone_stack)
    clone_stack = static_cast<char*>(::mmap(nullptr, clone_stack_size, PROT_READ | PROT_WRITE,
                                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0));
  raw_clone_args a{};
  a.flags = CLONE_VM | CLONE_VFORK;
  a.exit_signal = SIGCHLD;
  a.stack = reinterpret_cast<std::uint64_t>(clone_stack);
  a.stack_size = clone_stack_size;
  long pid = bench_clone3_run(&a, sizeof a, clone_child, nullptr);
  return pid > 0 && reap_ok(static_cast<pid_t>(pid));
}
#endif

const exec_spec& true_cmd() {
  static exec_spec cmd = exec_spec::make({true_path}).value();
  return cmd;
}

bool do_nsentry_spawn(bool share) {
  spawn_options o;
  o.share_memory = share;
  auto c = spawn_exec(true_cmd(), o);
  if (!c) return false;
  auto st = c.value().wait();
  return st.has_value();
}

// --- commands ------------------------------------------------------------------------------------

bool executable(const std::string& p) { return ::access(p.c_str(), X_OK) == 0; }

// --- the comparisons ---------------------------------------------------------------------------

void build(bench::alternating_suite& s) {
  // setns per kind: into the target's namespace (timed) and back (untimed).
  {
    bench::comparison c{"setns_per_kind", "raw_setns_fd", "uts", {}};
    for (std::size_t i = 0; i < n_kinds; ++i)
      c.sides.push_back({kinds[i].name, [i] { return ::setns(target_fd[i], kinds[i].flag) == 0; },
                         [i] { ::setns(home_fd[i], kinds[i].flag); }});
    c.setup = have_target;
    c.note =
        "setns(fd, kind) on a pre-opened /proc/<target>/ns file; user left out (a process "
        "cannot return to its parent user namespace)";
    s.add(std::move(c));
  }
  // setns(pidfd, all) vs seven setns on pre-opened fds, and the open included.
  s.add({"join",
         "pidfd_vs_per_fd",
         "per_fd_preopened",
         {{"per_fd_preopened",
           [] {
             for (std::size_t i = 0; i < n_kinds; ++i)
               if (::setns(target_fd[i], kinds[i].flag) != 0) return false;
             return true;
           },
           go_home},
          {"setns_pidfd_preopened", [] { return ::setns(target_pidfd, all_flags) == 0; }, go_home},
          {"per_fd_open_setns_close",
           [] {
             for (std::size_t i = 0; i < n_kinds; ++i) {
               char p[64];
               std::snprintf(p, sizeof p, "/proc/%d/ns/%s", target_pid, kinds[i].name);
               int fd = ::open(p, O_RDONLY | O_CLOEXEC);
               if (fd < 0 || ::setns(fd, kinds[i].flag) != 0) return false;
               ::close(fd);
             }
             return true;
           },
           go_home}},
         have_target,
         1,
         1,
         "seven kinds (cgroup ipc mnt net pid time uts)"});
  // nsentry's joins vs the raw floor of join_pid: pidfd_open + setns(pidfd, flags) + close.
  s.add({"join",
         "nsentry_vs_floor",
         "raw_pidfd_open_setns",
         {{"raw_pidfd_open_setns",
           [] {
             int pfd = static_cast<int>(::syscall(SYS_pidfd_open, target_pid, 0));
             bool ok = pfd >= 0 && ::setns(pfd, all_flags) == 0;
             if (pfd >= 0) ::close(pfd);
             return ok;
           },
           go_home},
          {"nsentry_join_pid", [] { return join_pid(target_pid, all_kinds).has_value(); }, go_home},
          {"nsentry_join_paths",
           [] {
             static std::vector<ns_join> paths = [] {
               std::vector<ns_join> v;
               for (const auto& k : kinds) v.push_back({k.kind, proc_ns_path(target_pid, k.kind)});
               return v;
             }();
             return join_paths(paths).has_value();
           },
           go_home}},
         have_target,
         1,
         1,
         "all seven differing kinds; join_pid is target 1 (<= 1.15x)"});
  // unshare per kind, raw and through create_namespaces; setns back untimed.
  for (std::size_t i = 0; i < n_kinds; ++i) {
    ns_set one{kinds[i].kind};
    s.add({"unshare",
           kinds[i].name,
           "raw_unshare",
           {{"raw_unshare", [i] { return ::unshare(kinds[i].flag) == 0; },
             [i] { ::setns(home_fd[i], kinds[i].flag); }},
            {"nsentry_create_namespaces", [one] { return create_namespaces(one).has_value(); },
             [i] { ::setns(home_fd[i], kinds[i].flag); }}},
           have_target,
           1,
           kinds[i].flag == CLONE_NEWNET ? 3.0 : 1.0,
           "a new namespace each call, the old one released by setns back (untimed)"});
  }
  // user namespace + maps + exec /bin/true: run_plan vs the raw sequence.
  {
    static plan p = [] {
      plan q;
      q.create = ns_set{ns_kind::user};
      q.uid_map = id_map::parse("0 100000 65536\n", step::uid_map).value();
      q.gid_map = id_map::parse("0 100000 65536\n", step::gid_map).value();
      return q;
    }();
    auto raw = [] {
      int go[2], ready[2];
      if (::pipe2(go, O_CLOEXEC) != 0) return false;
      if (::pipe2(ready, O_CLOEXEC) != 0) return false;
      pid_t pid = ::fork();
      if (pid == 0) {
        char b = 0;
        if (::unshare(CLONE_NEWUSER) != 0) ::_exit(126);
        if (::write(ready[1], &b, 1) != 1) ::_exit(126);
        if (::read(go[0], &b, 1) != 1) ::_exit(126);
        if (::setresgid(0, 0, 0) != 0 || ::setresuid(0, 0, 0) != 0) ::_exit(126);
        ::execve(true_path, true_argv, environ);
        ::_exit(127);
      }
      ::close(go[0]);
      ::close(ready[1]);
      char b;
      bool ok = ::read(ready[0], &b, 1) == 1;
      for (const char* m : {"uid_map", "gid_map"}) {
        char path[64];
        std::snprintf(path, sizeof path, "/proc/%d/%s", pid, m);
        int fd = ::open(path, O_WRONLY | O_CLOEXEC);
        ok = ok && fd >= 0 && ::write(fd, "0 100000 65536\n", 15) == 15;
        if (fd >= 0) ::close(fd);
      }
      ok = ok && ::write(go[1], &b, 1) == 1;
      ::close(go[1]);
      ::close(ready[0]);
      return reap_ok(pid) && ok;
    };
    s.add({"userns_maps",
           "user_0_100000_65536",
           "raw_fork_unshare_maps",
           {{"raw_fork_unshare_maps", raw},
            {"nsentry_run_plan",
             [] {
               auto c = run_plan(p, true_cmd());
               if (!c) return false;
               auto st = c.value().wait();
               return st.has_value();
             }}},
           nullptr,
           1,
           2,
           "new user namespace, uid and gid map 0 100000 65536, exec /bin/true"});
  }
  // scoped entry of the target's net namespace and back, 1 and 2 threads.
  for (int threads : {1, 2}) {
    s.add({"scoped",
           "net_" + std::to_string(threads) + "_thread" + (threads > 1 ? "s" : ""),
           "raw_two_setns",
           {{"raw_two_setns",
             [] {
               static const std::size_t net = 3;  // kinds[3] is net
               return ::setns(target_fd[net], CLONE_NEWNET) == 0 &&
                      ::setns(home_fd[net], CLONE_NEWNET) == 0;
             }},
            {"nsentry_ns_home",
             [] {
               // The reusable-fd entry: this thread's own namespace opened once (ns_home), the
               // target's file held by the caller; each visit is one setns in and one out.
               thread_local auto home = ns_home::open(ns_set::of<net_ns>());
               thread_local auto held = [] {
                 opened_namespaces o;
                 (void)o.add_fd(ns_kind::net, target_fd[3]);
                 return o;
               }();
               if (!home) return false;
               auto g = home.value().enter(held);
               return g.has_value();
             }},
            {"nsentry_enter_scoped",
             [] {
               auto g = enter_scoped<net_ns>(target_pid);
               return g.has_value();  // the guard restores on the way out (timed)
             }}},
           have_target,
           threads,
           1,
           "enter + restore; target 2 (<= 1.1x): ns_home"});
  }
  // The whole process: nsentry enter vs nsenter vs the C floor.
  {
    std::string nsentry_bin = env_or("NSENTRY_BIN", "tools/nsentry");
    std::string floor_bin = env_or("ENTER_FLOOR_BIN", "bench/enter_floor");
    auto pid = [] { return std::to_string(target_pid); };
    s.add({"enter",
           "all_bin_true",
           "c_floor",
           {{"c_floor",
             [=] {
               return run_cmd({floor_bin, pid(), true_path});
             }},
            {"nsentry_enter",
             [=] {
               return run_cmd({nsentry_bin, "enter", "-t", pid(), "--all", "--", true_path});
             }},
            {"nsenter_a",
             [=] {
               return run_cmd({"nsenter", "-t", pid(), "-a", true_path});
             }},
            {"posix_spawn_true", do_posix_spawn}},
           [=] { return have_target() && executable(nsentry_bin) && executable(floor_bin); },
           1,
           2,
           "each side a process started with posix_spawn and waited for; target 4 (<= 1.1x)"});
  }
  // Spawn methods at growing parent RSS, then small again.
  const std::pair<std::size_t, const char*> phases[] = {{10, "rss_10MiB"},
                                                        {256, "rss_256MiB"},
                                                        {1024, "rss_1024MiB"},
                                                        {4096, "rss_4096MiB"},
                                                        {10, "rss_10MiB_again"}};
  for (const auto& [mib, name] : phases) {
    bench::comparison c{"spawn", name, "posix_spawn", {}};
    c.sides = {
      {"posix_spawn", do_posix_spawn},
      {"fork_exec", do_fork_exec},
      {"vfork_exec", do_vfork_exec},
#if defined(__x86_64__)
      {"clone3_vm_vfork", do_clone3_vm_vfork},
#endif
      {"nsentry_spawn_exec", [] { return do_nsentry_spawn(true); }},
      {"nsentry_spawn_exec_copy", [] { return do_nsentry_spawn(false); }}
    };
    c.setup = [mib = mib] { return set_rss(mib); };
    c.weight = mib >= 1024 ? 3 : 1;
    c.note = "parent ~" + std::to_string(mib) + " MiB resident (touched, MADV_NOHUGEPAGE)";
    s.add(std::move(c));
  }
}

void stop_target() {
  if (unshare_pid > 0) {
    ::kill(unshare_pid, SIGKILL);  // --kill-child takes the target with it
    reap(unshare_pid);
    unshare_pid = 0;
  }
}

}  // namespace

int main(int argc, char** argv) {
  bench::suite_args args;
  bool suite = args.parse(argc, argv);
  // Joining a mount namespace (and coming back) moves the cwd to its root: a relative path
  // given here would land there.
  if (!args.json.empty() && args.json[0] != '/')
    if (char* cwd = ::getcwd(nullptr, 0)) {
      args.json = std::string(cwd) + "/" + args.json;
      std::free(cwd);
    }
  base_rss = rss_now();
  start_target();
  std::atexit(stop_target);
  if (!have_target()) std::fprintf(stderr, "no namespace target (needs root and unshare)\n");
  bench::alternating_suite s;
  build(s);
  if (suite) {
    s.run(args.opt, args.filter);
    if (!args.json.empty() && !s.write_json(args.json, "spawn_bench")) {
      std::perror(args.json.c_str());
      return 1;
    }
  } else {
    benchmark::Initialize(&argc, argv);
    s.register_with_google_benchmark();
    bench::ratio_reporter rep;
    benchmark::RunSpecifiedBenchmarks(&rep);
    s.print_ratios(rep);
    benchmark::Shutdown();
  }
  stop_target();
  set_rss(0);
}
