// A program that is its own runc init through nsentry/runc/constructor.hpp (runc 1.1 ids).
// main runs only in stage-2 (or when not started as an init) and reports what it sees on
// stderr, as key=value lines; with arguments it execs them instead.
#define NSENTRY_RUNC_PROTOCOL 11
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "nsentry/runc/constructor.hpp"

namespace {

void ns_line(const char* kind) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/ns/%s", kind);
  struct stat st {};
  unsigned long ino = ::stat(path, &st) == 0 ? static_cast<unsigned long>(st.st_ino) : 0;
  std::fprintf(stderr, "ns.%s=%lu\n", kind, ino);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) {
    ::execvp(argv[1], argv + 1);
    std::perror("execvp");
    return 127;
  }
  const char* pipe = std::getenv("_LIBCONTAINER_INITPIPE");
  std::fprintf(stderr, "main=1\ninitpipe=%s\n", pipe ? pipe : "");
  // The init pipe is still open in stage-2 (runc's Go init keeps using it).
  std::fprintf(stderr, "fd3_open=%d\n", ::fcntl(3, F_GETFD) != -1 ? 1 : 0);
  char comm[32] = {}, exe[256] = {};
  if (FILE* f = std::fopen("/proc/self/comm", "r")) {
    if (std::fgets(comm, sizeof comm, f) == nullptr) comm[0] = '\0';
    std::fclose(f);
  }
  for (char* c = comm; *c; ++c)
    if (*c == '\n') *c = '\0';
  if (::readlink("/proc/self/exe", exe, sizeof exe - 1) < 0) exe[0] = '\0';
  const char* cloned = std::getenv("_LIBCONTAINER_CLONED_BINARY");
  struct statfs fs {};
  int ro = ::statfs("/proc/self/exe", &fs) == 0 && (fs.f_flags & ST_RDONLY) ? 1 : 0;
  std::fprintf(stderr, "comm=%s\nexe=%s\ncloned=%s\nexe_ro=%d\n", comm, exe, cloned ? cloned : "",
               ro);
  for (const char* k : {"user", "ipc", "uts", "net", "pid", "mnt", "cgroup", "time"}) ns_line(k);
  std::fprintf(stderr, "pid=%d\nuid=%u\ngid=%u\nsid_is_pid=%d\ngroups=%d\n",
               static_cast<int>(::getpid()), ::getuid(), ::getgid(),
               ::getsid(0) == ::getpid() ? 1 : 0, ::getgroups(0, nullptr));
  return 0;
}
