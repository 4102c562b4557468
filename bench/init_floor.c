// init_floor: a lower bound for a runc 1.1 init of runc's default namespaces (mnt uts ipc pid
// net, no user namespace) — the floor that runc_init_bench's `nsexec/*` comparisons put next
// to runc 1.1's own nsexec and nsentry's constructor, driven by the same runc-style parent.
// It leaves out the sync between the stages that runc's contract needs, so no correct init
// can be as fast; what it keeps, no init can leave out.
//
//   _LIBCONTAINER_INITPIPE=3 init_floor_program      (built with -DSELF_CLONE=1 or 0)
//
// What it does:
//   self-clone (SELF_CLONE=1): open_tree(OPEN_TREE_CLONE) of /proc/self/exe, mount_setattr
//     read-only, execveat of it (the cheapest way there is; the marker in the environment is
//     trusted, where a real init must check the mount);
//   stage-0: the 0x00 setup byte, the message read (header, then payload; not parsed: the
//     flags are fixed here), clone stage-1 (CLONE_PARENT), exit;
//   stage-1: unshare of the five kinds, clone stage-2 (CLONE_PARENT, pid 1 of the new pid
//     namespace), the pid report written by stage-1 itself (one hop fewer than any real init:
//     stage-0 exits without waiting), exit;
//   stage-2: setsid, setgid(0), setuid(0), then main returns 0 as runc's Go side would run.
// No error detail beyond the exit code: this is a measuring stick, not an init.
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SELF_CLONE
#define SELF_CLONE 1
#endif

#define OPEN_TREE_CLONE_ 1
#define OPEN_TREE_CLOEXEC_ O_CLOEXEC
#define MOUNT_ATTR_RDONLY_ 0x00000001
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif

struct mount_attr_ {
  uint64_t attr_set, attr_clr, propagation, userns_fd;
};

extern char** environ;

static pid_t clone_parent(void) {
  return (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
}

static int write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int read_all(int fd, char* p, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

int main(int argc, char** argv) {
  (void)argc;
  (void)argv;
#if SELF_CLONE
  if (getenv("_LIBCONTAINER_CLONED_BINARY") == NULL) {
    int fd = (int)syscall(SYS_open_tree, AT_FDCWD, "/proc/self/exe",
                          OPEN_TREE_CLONE_ | OPEN_TREE_CLOEXEC_);
    if (fd < 0) return 10;
    struct mount_attr_ attr = {MOUNT_ATTR_RDONLY_, 0, 0, 0};
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof attr) != 0) return 11;
    char* env[256];
    size_t n = 0;
    for (char** e = environ; e && *e && n < 254; ++e) env[n++] = *e;
    env[n++] = "_LIBCONTAINER_CLONED_BINARY=1";
    env[n] = NULL;
    syscall(SYS_execveat, fd, "", argv, env, AT_EMPTY_PATH);
    return 12;
  }
#endif
  const int pipe_fd = 3;  // _LIBCONTAINER_INITPIPE, fixed by the bench's parent
  if (write_all(pipe_fd, "", 1) != 0) return 20;
  char msg[4096];
  if (read_all(pipe_fd, msg, 16) != 0) return 21;
  uint32_t len;
  memcpy(&len, msg, sizeof len);
  if (len < 16 || len > sizeof msg || read_all(pipe_fd, msg + 16, len - 16) != 0) return 22;

  pid_t stage1 = clone_parent();
  if (stage1 < 0) return 23;
  if (stage1 > 0) _exit(0);  // stage-0

  if (unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET) != 0)
    _exit(30);
  pid_t stage2 = clone_parent();
  if (stage2 < 0) _exit(31);
  if (stage2 > 0) {  // stage-1
    char line[64];
    int n = snprintf(line, sizeof line, "{\"stage1_pid\":%d,\"stage2_pid\":%d}\n", (int)getpid(),
                     (int)stage2);
    _exit(write_all(pipe_fd, line, (size_t)n) == 0 ? 0 : 32);
  }
  // stage-2
  if (setsid() < 0 || setgid(0) != 0 || setuid(0) != 0) _exit(40);
  return 0;
}
