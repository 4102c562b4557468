// nsentry/fd.hpp — owned file descriptors, pidfds, and the EINTR policy.
//
// EINTR policy (one place, every caller):
//  - open, read, write, waitid: retried on EINTR — they either did nothing or report progress.
//  - close: never retried. Linux releases the descriptor even when close() reports EINTR, so a
//    retry could close a descriptor another thread just received. The error is reported.
// Every descriptor nsentry opens is O_CLOEXEC / SOCK_CLOEXEC / F_DUPFD_CLOEXEC.
// Contract: unique_fd's members other than the result-returning factories are noexcept,
// allocation-free and async-signal-safe; usable between clone and exec.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "nsentry/error.hpp"
#include "nsentry/sys.hpp"

namespace nsentry::inline v0 {

class unique_fd {
 public:
  constexpr unique_fd() noexcept = default;
  constexpr explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  constexpr int get() const noexcept { return fd_; }
  constexpr bool valid() const noexcept { return fd_ >= 0; }
  constexpr explicit operator bool() const noexcept { return valid(); }

  // Hands the descriptor to the caller, who now owns it.
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

  // Closes now and reports the kernel's answer. The guard is empty afterwards whatever the
  // outcome (see the EINTR policy); closing an empty guard is a no-op success.
  result<void> close() noexcept {
    if (fd_ < 0) return success();
    int fd = std::exchange(fd_, -1);
    if (sys::calls.close(fd) == -1) return posix_error(step::close);
    return success();
  }

  // Closes, ignoring the kernel's answer (destructor semantics).
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) {
      int saved = errno;
      sys::calls.close(fd_);
      errno = saved;
    }
    fd_ = fd;
  }

  // A second owned descriptor for the same open file, O_CLOEXEC.
  result<unique_fd> dup() const {
    int fd = sys::calls.dupfd(fd_, 0, 1);
    if (fd == -1) return posix_error(step::dup);
    return unique_fd(fd);
  }

 private:
  int fd_ = -1;
};

// --- EINTR-retrying I/O --------------------------------------------------------------------

// openat(2) with O_CLOEXEC always added; retried on EINTR.
inline result<unique_fd> open_at(int dirfd, const std::string& path, int flags, mode_t mode = 0) {
  for (;;) {
    int fd = sys::calls.openat(dirfd, path.c_str(), flags | O_CLOEXEC, mode);
    if (fd >= 0) return unique_fd(fd);
    if (errno != EINTR) return posix_error(step::open, path);
  }
}

inline result<unique_fd> open_file(const std::string& path, int flags, mode_t mode = 0) {
  return open_at(AT_FDCWD, path, flags, mode);
}

// One read(2), retried on EINTR. 0 means end of file.
inline result<std::size_t> read_some(int fd, std::span<std::byte> buf) {
  for (;;) {
    ssize_t n = sys::calls.read(fd, buf.data(), buf.size());
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno != EINTR) return posix_error(step::read);
  }
}

// Reads until `buf` is full or end of file; returns the count read. Loops over short reads.
inline result<std::size_t> read_full(int fd, std::span<std::byte> buf) {
  std::size_t got = 0;
  while (got < buf.size()) {
    NSENTRY_TRY(auto n, read_some(fd, buf.subspan(got)));
    if (n == 0) break;
    got += n;
  }
  return got;
}

// Writes all of `buf`, looping over short writes and EINTR.
inline result<void> write_all(int fd, std::span<const std::byte> buf) {
  while (!buf.empty()) {
    ssize_t n = sys::calls.write(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return posix_error(step::write);
    }
    buf = buf.subspan(static_cast<std::size_t>(n));
  }
  return success();
}

inline result<void> write_all(int fd, std::string_view text) {
  return write_all(fd, std::as_bytes(std::span(text.data(), text.size())));
}

// Reads `fd` to end of file, refusing more than `limit` bytes (errc::too_large). `name` names
// the source in errors.
inline result<std::string> read_all(int fd, std::size_t limit, std::string_view name) {
  std::string out;
  char chunk[16384];
  for (;;) {
    auto n = read_some(fd, std::as_writable_bytes(std::span(chunk)));
    if (!n) return with_path(std::move(n).error(), std::string(name));
    if (n.value() == 0) break;
    out.append(chunk, n.value());
    if (out.size() > limit)
      return with_path(nsentry_error(errc::too_large, step::read,
                                     "over the limit of " + std::to_string(limit) + " bytes"),
                       std::string(name));
  }
  return out;
}

// Reads a whole (small, /proc-style) file; "-" is standard input.
inline result<std::string> read_file(const std::string& path, std::size_t limit = 1 << 20) {
  if (path == "-") return read_all(STDIN_FILENO, limit, "stdin");
  NSENTRY_TRY(auto fd, open_file(path, O_RDONLY));
  return read_all(fd.get(), limit, path);
}

// Writes `text` to an existing file in one write(2) (what /proc map files require).
inline result<void> write_file(const std::string& path, std::string_view text) {
  NSENTRY_TRY(auto fd, open_file(path, O_WRONLY));
  for (;;) {
    ssize_t n = sys::calls.write(fd.get(), text.data(), text.size());
    if (n == static_cast<ssize_t>(text.size())) break;
    if (n < 0 && errno == EINTR) continue;
    if (n >= 0) return posix_error(step::write, path, EIO);  // a /proc control file took part
    return posix_error(step::write, path);
  }
  NSENTRY_TRY(fd.close());
  return success();
}

// --- pidfd ---------------------------------------------------------------------------------

// An owned pidfd (Linux >= 5.3): a handle on a process that cannot be confused with a
// recycled pid. Move-only; closing it does not affect the process.
class pidfd {
 public:
  pidfd() noexcept = default;
  pidfd(unique_fd fd, pid_t pid) noexcept : fd_(std::move(fd)), pid_(pid) {}

  // pidfd_open(2); fails with ENOSYS before Linux 5.3, ESRCH if the process is gone.
  static result<pidfd> open(pid_t pid) {
    int fd = sys::calls.pidfd_open(pid, 0);
    if (fd == -1) return with_pid(posix_error(step::pidfd_open), pid);
    // pidfd_open sets O_CLOEXEC itself.
    return pidfd(unique_fd(fd), pid);
  }

  int get() const noexcept { return fd_.get(); }
  pid_t pid() const noexcept { return pid_; }
  bool valid() const noexcept { return fd_.valid(); }

  result<void> send_signal(int sig) const {
    if (sys::calls.pidfd_send_signal(fd_.get(), sig, nullptr, 0) == -1)
      return with_pid(posix_error(step::pidfd_send_signal), pid_);
    return success();
  }

  unique_fd release_fd() noexcept {
    pid_ = 0;
    return std::move(fd_);
  }

 private:
  unique_fd fd_;
  pid_t pid_ = 0;
};

// waitid(2) retried on EINTR. `options` must include WEXITED (and may add WNOHANG).
inline result<siginfo_t> wait_id(idtype_t type, id_t id, int options) {
  for (;;) {
    siginfo_t info{};
    if (sys::calls.waitid(type, id, &info, options) == 0) return info;
    if (errno != EINTR) return posix_error(step::wait);
  }
}

}  // namespace nsentry::inline v0
