// minimal_runc_init: a program that is its own runc init, the way runc's binary is.
//
// Started by a runc-style parent (the bootstrap message on the socket named by
// _LIBCONTAINER_INITPIPE), the ELF constructor installed by the header below runs stage-0
// (reads the message, reports {"stage1_pid":N,"stage2_pid":M} on the pipe) and stage-1
// (joins/creates the namespaces) before main, and only stage-2 reaches main: inside the new
// namespaces, as uid/gid 0, session leader, with the init pipe still open. Started any other
// way, the constructor does nothing and main runs as a plain program.
//
//   examples/runc_driver.py bazel-bin/examples/minimal_runc_init MESSAGE.bin   (see smoke.sh)
#define NSENTRY_RUNC_PROTOCOL 12  // runc >= 1.2's message; 11 for runc 1.1
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "nsentry/runc/constructor.hpp"

int main() {
  const char* pipe = std::getenv("_LIBCONTAINER_INITPIPE");
  // What runc's Go init would do next (read its config on fd 3, pivot_root, exec the user's
  // process) is the container runtime's business; this init only says where it is.
  std::printf("role=%s\n", pipe && *pipe ? "stage-2" : "plain");
  std::printf("pid=%d\nuid=%u\n", static_cast<int>(::getpid()), ::getuid());
  for (const char* kind : {"ipc", "mnt", "net", "pid", "uts"}) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/ns/%s", kind);
    struct stat st {};
    std::printf("ns.%s=%lu\n", kind,
                ::stat(path, &st) == 0 ? static_cast<unsigned long>(st.st_ino) : 0UL);
  }
  return 0;
}
