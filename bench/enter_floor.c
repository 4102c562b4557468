// enter_floor: the least a program can do for `nsentry enter -t PID --all -- CMD` — the C floor
// that bench/run.sh compares `nsentry enter` and `nsenter -a` against.
//
//   enter_floor PID CMD [ARG...]
//
// pidfd_open(PID) first (a recycled pid cannot redirect it later), stat-compare
// /proc/PID/ns/<kind> with /proc/self/ns/<kind> to find the kinds that differ, one
// setns(pidfd, flags) for all of them, vfork + execv CMD, wait, exit with CMD's status.
// No error detail beyond perror: this is a measuring stick, not a tool.
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

static const struct {
  const char* name;
  int flag;
} kinds[] = {{"cgroup", CLONE_NEWCGROUP}, {"ipc", CLONE_NEWIPC}, {"mnt", CLONE_NEWNS},
             {"net", CLONE_NEWNET},       {"pid", CLONE_NEWPID}, {"time", CLONE_NEWTIME},
             {"user", CLONE_NEWUSER},     {"uts", CLONE_NEWUTS}};

int main(int argc, char** argv) {
  if (argc < 3) {
    fputs("usage: enter_floor PID CMD [ARG...]\n", stderr);
    return 2;
  }
  int pid = atoi(argv[1]);
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0) {
    perror("pidfd_open");
    return 1;
  }
  int flags = 0;
  for (unsigned i = 0; i < sizeof kinds / sizeof kinds[0]; ++i) {
    char theirs[64], ours[64];
    struct stat a, b;
    snprintf(theirs, sizeof theirs, "/proc/%d/ns/%s", pid, kinds[i].name);
    snprintf(ours, sizeof ours, "/proc/self/ns/%s", kinds[i].name);
    if (stat(theirs, &a) != 0 || stat(ours, &b) != 0) continue;
    if (a.st_ino != b.st_ino || a.st_dev != b.st_dev) flags |= kinds[i].flag;
  }
  if (flags && setns(pidfd, flags) != 0) {
    perror("setns");
    return 1;
  }
  pid_t child = vfork();
  if (child == 0) {
    execv(argv[2], argv + 2);
    _exit(127);
  }
  if (child < 0) {
    perror("vfork");
    return 1;
  }
  int st;
  if (waitpid(child, &st, 0) < 0) {
    perror("waitpid");
    return 1;
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
