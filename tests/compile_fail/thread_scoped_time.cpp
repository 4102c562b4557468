// A thread-scoped set may not hold time.
// expect: constraints not satisfied
#include "nsentry/ns.hpp"
using namespace nsentry;
int main() {
#ifdef NSENTRY_MISUSE
  constexpr ns_set s = thread_ns_set<time_ns>::value;
#else
  constexpr ns_set s = thread_ns_set<mnt_ns>::value;
#endif
  return static_cast<int>(s.size());
}
