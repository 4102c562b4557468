// nsentry/runc/sealed_exe.hpp — run from a sealed in-memory copy of our own binary.
//
// Why (CVE-2019-5736 class): a runc init joins the container's namespaces while its
// /proc/self/exe still names the host binary. A process in the container can open
// /proc/<init>/exe and, once the init has exec'd the container's process, write through it to
// overwrite the host's runtime binary. Re-executing first from a memfd copy sealed against
// writing, growing and shrinking (and against removing the seals) leaves nothing on the host
// reachable through /proc/<pid>/exe, and the copy itself cannot be modified.
//
// `reexec_sealed(argv, envp)` does this once, by runc 1.1's rules (cloned_binary.c): if
// /proc/self/exe already carries all four seals (F_GET_SEALS), or `_LIBCONTAINER_CLONED_BINARY`
// is set and the executable is on a read-only mount or has no links left (a copy made by runc or
// another runtime), it returns success at once — the loop guard. Otherwise it copies
// /proc/self/exe into memfd_create(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC), seals it, and
// execveat(AT_EMPTY_PATH)s it with the given argv and envp plus `_LIBCONTAINER_CLONED_BINARY=1`
// (as runc 1.1 does; runc's Go init clears its environment before the container's process);
// it returns only on failure.
//
// Kernel: memfd_create and sealing >= 3.17, execveat >= 3.19. MFD_EXEC exists from 6.3 (with
// vm.memfd_noexec); older kernels reject it with EINVAL, and then the memfd is created without it
// (it is executable by default there). vm.memfd_noexec=2 forbids executable memfds: the result
// is an error, not a silent fallback to the unsealed binary. Needs /proc mounted. No privilege.
//
// Contract: call it single-threaded (exec replaces the whole process), before anything else
// has happened, e.g. first thing in an ELF constructor, whose (argc, argv, envp) arguments glibc
// provides. The memfd is close-on-exec, so the new image does not inherit a descriptor to it.
// Parent-side code (errors allocate); not for use between clone and exec.
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nsentry/error.hpp"
#include "nsentry/fd.hpp"
#include "nsentry/sys.hpp"

namespace nsentry::inline v0::runc {

inline constexpr int exe_seals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
inline constexpr const char* self_exe_path = "/proc/self/exe";
inline constexpr const char* cloned_binary_var = "_LIBCONTAINER_CLONED_BINARY";

// Whether `fd` carries all four seals. A file that cannot carry seals (not a memfd/shmem file:
// F_GET_SEALS fails with EINVAL) is simply not sealed.
inline result<bool> has_exe_seals(int fd) {
  int seals = sys::calls.get_seals(fd);
  if (seals == -1) {
    if (errno == EINVAL) return false;
    return posix_error(step::get_seals);
  }
  return (seals & exe_seals) == exe_seals;
}

// Whether the running image is already a sealed copy.
inline result<bool> running_sealed() {
  NSENTRY_TRY(auto exe, open_file(self_exe_path, O_RDONLY));
  auto sealed = has_exe_seals(exe.get());
  if (!sealed) return with_path(std::move(sealed).error(), self_exe_path);
  return sealed.value();
}

namespace detail {

inline bool env_has(char* const* envp, std::string_view name) noexcept {
  for (; envp != nullptr && *envp != nullptr; ++envp) {
    std::string_view e(*envp);
    if (e.size() > name.size() && e.substr(0, name.size()) == name && e[name.size()] == '=')
      return true;
  }
  return false;
}

}  // namespace detail

// runc 1.1's test: a fully sealed memfd; or, with `_LIBCONTAINER_CLONED_BINARY` in `envp`, an
// executable on a read-only mount or with no links (neither can be made by a container).
inline result<bool> running_cloned(char* const* envp) {
  NSENTRY_TRY(auto exe, open_file(self_exe_path, O_RDONLY));
  auto sealed = has_exe_seals(exe.get());
  if (!sealed) return with_path(std::move(sealed).error(), self_exe_path);
  if (sealed.value()) return true;
  if (!detail::env_has(envp, cloned_binary_var)) return false;
  struct statfs fs {};
  if (::fstatfs(exe.get(), &fs) == 0 && (fs.f_flags & ST_RDONLY)) return true;
  struct stat st {};
  return sys::calls.fstat(exe.get(), &st) == 0 && st.st_nlink == 0;
}

namespace detail {

inline result<void> copy_with_read_write(int in, int out) {
  char buf[64 * 1024];
  for (;;) {
    NSENTRY_TRY(std::size_t n, read_some(in, std::as_writable_bytes(std::span(buf))));
    if (n == 0) return success();
    NSENTRY_TRY(write_all(out, std::as_bytes(std::span(buf, n))));
  }
}

// Copies all of `in` (a regular file of `size` bytes) to the start of `out`. sendfile keeps
// the copy in the kernel; read/write covers kernels or files where it is refused.
inline result<void> copy_file(int in, int out, off_t size) {
  off_t done = 0;
  while (done < size) {
    ssize_t n = sys::calls.sendfile(out, in, nullptr, static_cast<std::size_t>(size - done));
    if (n > 0) {
      done += n;
      continue;
    }
    if (n == 0) break;  // the file shrank under us: caught by the size check below
    if (errno == EINTR) continue;
    if ((errno == EINVAL || errno == ENOSYS) && done == 0) return copy_with_read_write(in, out);
    return posix_error(step::sendfile);
  }
  return success();
}

}  // namespace detail

// A new memfd holding a copy of /proc/self/exe, sealed with `exe_seals`, O_CLOEXEC.
inline result<unique_fd> sealed_copy_of_self() {
  NSENTRY_TRY(auto exe, open_file(self_exe_path, O_RDONLY));
  struct stat st {};
  if (sys::calls.fstat(exe.get(), &st) == -1) return posix_error(step::fstat, self_exe_path);

  constexpr unsigned base = MFD_CLOEXEC | MFD_ALLOW_SEALING;
  int fd = sys::calls.memfd_create("nsentry-runc-init", base | MFD_EXEC);
  if (fd == -1 && errno == EINVAL) fd = sys::calls.memfd_create("nsentry-runc-init", base);
  if (fd == -1) return posix_error(step::memfd_create);
  unique_fd mem(fd);

  if (auto c = detail::copy_file(exe.get(), mem.get(), st.st_size); !c)
    return with_path(std::move(c).error(), self_exe_path);
  struct stat copied {};
  if (sys::calls.fstat(mem.get(), &copied) == -1) return posix_error(step::fstat, "memfd");
  if (copied.st_size != st.st_size)
    return nsentry_error(errc::short_transfer, step::copy_exe,
                         "copied " + std::to_string(copied.st_size) + " of " +
                             std::to_string(st.st_size) + " bytes");
  if (sys::calls.add_seals(mem.get(), exe_seals) == -1) return posix_error(step::add_seals);
  return mem;
}

// An O_PATH descriptor of /proc/self/exe on a read-only bind mount that is already detached
// (runc 1.1's first choice: no copy, so ~10 ms cheaper than the memfd for a 14 MB runc): bind
// /proc/self/exe onto a new empty file in `_LIBCONTAINER_STATEDIR` (absolute) or /tmp, remount
// it read-only, open it, detach the mount (MNT_DETACH; if that fails the descriptor is not
// trusted and is closed), unlink the file. Needs CAP_SYS_ADMIN in the mount namespace's owner:
// a rootless caller gets EPERM and uses the memfd.
inline result<unique_fd> readonly_bind_of_self(char* const* envp) {
  std::string dir = "/tmp";
  for (char* const* e = envp; e != nullptr && *e != nullptr; ++e) {
    std::string_view v(*e);
    constexpr std::string_view var = "_LIBCONTAINER_STATEDIR=";
    if (v.substr(0, var.size()) == var && v.size() > var.size() && v[var.size()] == '/')
      dir = std::string(v.substr(var.size()));
  }
  std::string path = dir + "/nsentry-exe.XXXXXX";
  int tmp = ::mkostemp(path.data(), O_CLOEXEC);
  if (tmp == -1) return posix_error(step::mkstemp, path);
  sys::calls.close(tmp);
  auto attempt = [&]() -> result<unique_fd> {
    if (::mount(self_exe_path, path.c_str(), "", MS_BIND, nullptr) == -1)
      return with_context(posix_error(step::mount, path), "mount(MS_BIND)");
    result<unique_fd> fd =
        ::mount("", path.c_str(), "", MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) == -1
            ? result<unique_fd>(
                  with_context(posix_error(step::mount, path), "mount(MS_REMOUNT|MS_RDONLY)"))
            : open_file(path, O_PATH | O_CLOEXEC);
    if (::umount2(path.c_str(), MNT_DETACH) == -1)
      return with_context(posix_error(step::umount, path), "umount2(MNT_DETACH)");
    return fd;
  };
  auto out = attempt();
  ::unlink(path.c_str());
  return out;
}

// An O_PATH descriptor of /proc/self/exe on a read-only mount that no mount namespace shows:
// open_tree(OPEN_TREE_CLONE) makes a detached bind mount of it, mount_setattr makes that mount
// read-only (Linux >= 5.12). Once the descriptor is closed (at the exec: O_CLOEXEC) the mount
// is dissolved, as runc 1.1's umount2(MNT_DETACH) leaves it: the running image stays on a
// read-only mount that nobody can remount. The same end state as readonly_bind_of_self without
// its temporary file, mount point and umount (on the development machine ~35 µs against
// 200-500 µs). Needs CAP_SYS_ADMIN in the mount namespace's owner (else EPERM).
inline result<unique_fd> detached_readonly_clone_of_self() {
  int fd = ::open_tree(AT_FDCWD, self_exe_path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (fd == -1)
    return with_context(posix_error(step::mount, self_exe_path), "open_tree(OPEN_TREE_CLONE)");
  unique_fd tree(fd);
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY;
  if (::mount_setattr(fd, "", AT_EMPTY_PATH, &attr, sizeof attr) == -1)
    return with_context(posix_error(step::mount, self_exe_path),
                        "mount_setattr(MOUNT_ATTR_RDONLY)");
  return tree;
}

// How to make the clone: a sealed memfd copy only, or runc 1.1's order (a read-only mount of
// the binary — detached from the start where the kernel can, else runc's bind / remount /
// detach — falling back to the memfd copy when mounting is not allowed).
enum class clone_via { memfd, readonly_bind_then_memfd };

// Re-executes from a clone of the binary unless already running from one (then: success at
// once). `argv` and `envp` (plus the marker) are passed to the new image. Returns only on
// failure.
inline result<void> reexec_cloned(char* const argv[], char* const envp[], clone_via how) {
  NSENTRY_TRY(bool cloned, running_cloned(envp));
  if (cloned) return success();
  unique_fd mem;
  if (how == clone_via::readonly_bind_then_memfd) {
    if (auto t = detached_readonly_clone_of_self())
      mem = std::move(t).value();
    else if (auto b = readonly_bind_of_self(envp))
      mem = std::move(b).value();
  }
  if (!mem) {
    NSENTRY_TRY(mem, sealed_copy_of_self());
  }
  std::vector<char*> env;
  for (char* const* e = envp; e != nullptr && *e != nullptr; ++e) env.push_back(*e);
  static char marker[] = "_LIBCONTAINER_CLONED_BINARY=1";
  if (!detail::env_has(envp, cloned_binary_var)) env.push_back(marker);
  env.push_back(nullptr);
  sys::calls.execveat(mem.get(), "", argv, env.data(), AT_EMPTY_PATH);
  return posix_error(step::execveat);
}

// Re-executes from a sealed memfd copy unless already running from a clone. Returns only on
// failure.
inline result<void> reexec_sealed(char* const argv[], char* const envp[]) {
  return reexec_cloned(argv, envp, clone_via::memfd);
}

}  // namespace nsentry::inline v0::runc
