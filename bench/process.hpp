// bench/process.hpp — starting and reaping the processes a benchmark measures.
#pragma once

#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <vector>

extern char** environ;

namespace nsentry::bench {

// Waits for `pid` (through EINTR); true when it exited with status 0.
inline bool reap_ok(pid_t pid) {
  int st;
  while (::waitpid(pid, &st, 0) == -1)
    if (errno != EINTR) return false;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

inline void reap(pid_t pid) { (void)reap_ok(pid); }

// posix_spawnp of args (PATH searched), waited for; true when it exited with status 0.
inline bool run_cmd(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid;
  if (::posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return false;
  return reap_ok(pid);
}

inline std::string env_or(const char* name, const char* fallback) {
  const char* e = std::getenv(name);
  return e && *e ? e : fallback;
}

}  // namespace nsentry::bench
