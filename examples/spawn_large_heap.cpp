// spawn_large_heap: a process with a large heap starts a command inside every namespace of
// another process, and times it.
//
//   spawn_large_heap PID [HEAP_MIB] [-- CMD [ARGS...]]     (default: 1024 MiB, `readlink
//                                                          /proc/self/ns/*`)
//
// enter_and_exec() is nsenter's job: it changes the calling process, which a server or a
// library cannot afford. run_plan() leaves the caller alone: it joins in a new child (and forks
// once more for the pid namespace, which only children enter), so the caller may have threads
// and a large heap. The plan joins /proc/PID/ns/<kind> for every kind where PID differs from us;
// the files are opened before the clone, so a recycled PID cannot redirect the join.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "nsentry/nsentry.hpp"

using namespace nsentry;

namespace {

result<int> spawn_into(pid_t target, std::vector<std::string> argv) {
  plan p;
  NSENTRY_TRY(auto kinds, differing_namespaces(target));  // a shared user ns is left out
  for (ns_kind k : kinds) p.join.push_back({k, proc_ns_path(target, k)});
  NSENTRY_TRY(auto cmd, exec_spec::make(std::move(argv)));

  auto t0 = std::chrono::steady_clock::now();
  NSENTRY_TRY(auto c, run_plan(p, cmd));  // returns once cmd has been exec'd inside
  auto t1 = std::chrono::steady_clock::now();
  std::fprintf(stderr, "spawn_large_heap: joined %s and exec'd in %.2f ms\n", kinds.names().c_str(),
               std::chrono::duration<double, std::milli>(t1 - t0).count());

  NSENTRY_TRY(auto status, c.wait());  // the command's own status (mirrored through the fork)
  return status.shell_status();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PID [HEAP_MIB] [-- CMD [ARGS...]]\n", argv[0]);
    return 2;
  }
  const pid_t target = static_cast<pid_t>(std::atoi(argv[1]));
  std::size_t mib = 1024;
  int i = 2;
  if (i < argc && std::strcmp(argv[i], "--") != 0) mib = std::strtoul(argv[i++], nullptr, 10);
  if (i < argc && std::strcmp(argv[i], "--") == 0) ++i;
  std::vector<std::string> cmd(argv + i, argv + argc);
  if (cmd.empty())
    cmd = {
        "sh", "-c",
        "for k in cgroup ipc mnt net pid uts; do echo $k $(stat -L -c %i /proc/self/ns/$k); done"};

  // The large heap, every page touched so it is really resident (and would be copied by a
  // naive fork-based spawn).
  const std::size_t bytes = mib << 20;
  std::unique_ptr<char[]> heap(new char[bytes]);
  std::memset(heap.get(), 1, bytes);
  std::fprintf(stderr, "spawn_large_heap: %zu MiB resident\n", mib);

  auto r = spawn_into(target, std::move(cmd));
  if (!r) {
    std::fprintf(stderr, "spawn_large_heap: %s\n", r.error().message().c_str());
    return 125;
  }
  return r.value();
}
