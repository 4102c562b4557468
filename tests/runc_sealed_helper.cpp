// Test helper for runc_sealed_exe_test: re-executes itself sealed, then reports what the kernel
// says about its own executable, one "key=value" per line on stdout.
//   execs=N          how many re-executions happened before this image ran (expect 1)
//   open_wronly=E    errno of open("/proc/self/exe", O_WRONLY), 0 if it opened
//   open_rdwr=E      same with O_RDWR
//   write=E          errno of write(2) through a writable open, if one opened; else "none"
//   seals=S          F_GET_SEALS of /proc/self/exe
//   memfd_fds=K      descriptors of ours that point at a memfd (expect 0: CLOEXEC)
//   exe=LINK         readlink of /proc/self/exe
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "nsentry/runc/sealed_exe.hpp"

int main(int, char** argv) {
  const char* gen = ::getenv("SEALED_HELPER_EXECS");
  int execs = gen != nullptr ? std::atoi(gen) : 0;
  if (execs > 3) {  // a loop: stop it rather than spin
    std::printf("loop=%d\n", execs);
    return 3;
  }
  ::setenv("SEALED_HELPER_EXECS", std::to_string(execs + 1).c_str(), 1);
  if (auto r = nsentry::runc::reexec_sealed(argv, environ); !r) {
    std::printf("error=%s\n", r.error().message().c_str());
    return 2;
  }
  std::printf("execs=%d\n", execs);

  std::string write_result = "none";
  for (int mode : {O_WRONLY, O_RDWR}) {
    int fd = ::open("/proc/self/exe", mode | O_CLOEXEC);
    int err = fd < 0 ? errno : 0;
    std::printf("%s=%d\n", mode == O_WRONLY ? "open_wronly" : "open_rdwr", err);
    if (fd >= 0) {
      ssize_t n = ::write(fd, "x", 1);
      write_result = n < 0 ? std::to_string(errno) : "wrote";
      ::close(fd);
    }
  }
  std::printf("write=%s\n", write_result.c_str());

  int ro = ::open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  std::printf("seals=%d\n", ro < 0 ? -1 : ::fcntl(ro, F_GET_SEALS));
  if (ro >= 0) ::close(ro);

  int memfds = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d)) {
      char link[256] = {};
      std::string p = std::string("/proc/self/fd/") + e->d_name;
      if (::readlink(p.c_str(), link, sizeof link - 1) > 0 && std::strncmp(link, "/memfd:", 7) == 0)
        ++memfds;
    }
    ::closedir(d);
  }
  std::printf("memfd_fds=%d\n", memfds);
  char exe[512] = {};
  if (::readlink("/proc/self/exe", exe, sizeof exe - 1) < 0) exe[0] = '\0';
  std::printf("exe=%s\n", exe);
  return 0;
}
