// tests/alloc_counter.hpp — counts heap allocations, so a test can show that a code path
// (one that runs between clone and exec, or in an ELF constructor) allocates nothing.
// Include from exactly one translation unit of a test binary: it replaces operator new/delete.
#pragma once

#include <atomic>
#include <cstdlib>
#include <new>

inline std::atomic<long> allocations{0};

// GCC 12 at -O2 (bazel build -c opt) inlines these replacements into callers and then reports
// malloc/free as "mismatched" with new/delete (-Wmismatched-new-delete, a false positive for a
// replacement operator that is itself built on malloc). The warning is reported at the free()
// below, after inlining, so it is silenced for the rest of the including translation unit.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

void* operator new(std::size_t n) {
  ++allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
// Arrays too: the default operator new[] calls operator new, but a sanitizer runtime replaces
// operator new[] itself (ASan does), and then an array allocation would go uncounted.
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
