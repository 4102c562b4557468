// tests/fault_matrix.hpp — a counting/failing sys::table for fault injection across processes.
//
// Every entry of sys::calls is replaced by a wrapper that counts its calls in a MAP_SHARED page
// (so calls made by forked children — the entry child, the mirror, vfork children — are
// counted too) and fails exactly the Nth call of one entry with a chosen errno.
#pragma once

#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <string>

#include "nsentry/sys.hpp"

namespace faults {

// clang-format off
#define FAULTS_ENTRIES(X) \
  X(openat) \
  X(close) \
  X(read) \
  X(write) \
  X(dupfd) \
  X(fstat) \
  X(pipe2) \
  X(socketpair) \
  X(setns) \
  X(unshare) \
  X(clone3) \
  X(fork) \
  X(pidfd_open) \
  X(pidfd_send_signal) \
  X(kill) \
  X(waitid) \
  X(setresuid) \
  X(setresgid) \
  X(setgroups) \
  X(setsid) \
  X(chdir) \
  X(prctl) \
  X(execve) \
  X(getpid) \
  X(memfd_create) \
  X(add_seals) \
  X(get_seals) \
  X(sendfile) \
  X(execveat) \
  X(clone) \
  X(fstatat) \
  X(sigaction) \
  X(thread_sigmask) \
  X(fchdir) \
  X(poll) \
  X(sendmsg) \
  X(recvmsg) \
  X(dup3) \
  X(setfd) \
  X(fstatfs) \
  X(close_range)
// clang-format on

enum entry : int {
#define FAULTS_ENUM(n) e_##n,
  FAULTS_ENTRIES(FAULTS_ENUM)
#undef FAULTS_ENUM
      entry_count
};

inline const char* entry_names[] = {
#define FAULTS_NAME(n) #n,
    FAULTS_ENTRIES(FAULTS_NAME)
#undef FAULTS_NAME
};

struct shared_state {
  std::atomic<int> counts[entry_count];
  std::atomic<int> fail_entry;  // -1: none
  std::atomic<int> fail_nth;    // 1-based
  std::atomic<int> fail_errno;
  std::atomic<int> fired;
};

inline shared_state* state() {
  static shared_state* s = [] {
    void* p = ::mmap(nullptr, sizeof(shared_state), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return static_cast<shared_state*>(p);
  }();
  return s;
}

inline void reset(int fail_entry = -1, int nth = 0, int err = 0) {
  shared_state* s = state();
  for (auto& c : s->counts) c.store(0);
  s->fail_entry.store(fail_entry);
  s->fail_nth.store(nth);
  s->fail_errno.store(err);
  s->fired.store(0);
}

// Should this call of entry `e` fail? (Counts it.)
inline bool should_fail(int e) {
  shared_state* s = state();
  int n = s->counts[e].fetch_add(1) + 1;
  if (s->fail_entry.load() == e && s->fail_nth.load() == n) {
    s->fired.store(1);
    return true;
  }
  return false;
}

template <class T>
struct wrap;
template <class R, class... A>
struct wrap<R (*)(A...)> {
  template <int E, R (*nsentry::sys::table::*M)(A...)>
  static R call(A... a) {
    if (should_fail(E)) {
      if constexpr (E == e_close)
        (void)(nsentry::sys::real_calls.*M)(a...);  // Linux: closed anyway
      errno = state()->fail_errno.load();
      return static_cast<R>(-1);
    }
    return (nsentry::sys::real_calls.*M)(a...);
  }
};

inline nsentry::sys::table counting_table() {
  nsentry::sys::table t = nsentry::sys::real_calls;
#define FAULTS_WRAP(n) \
  t.n = &wrap<decltype(nsentry::sys::table::n)>::template call<e_##n, &nsentry::sys::table::n>;
  FAULTS_ENTRIES(FAULTS_WRAP)
#undef FAULTS_WRAP
  return t;
}

// Installs the counting table for good (call in a forked child only).
inline void install() { nsentry::sys::calls = counting_table(); }

}  // namespace faults
