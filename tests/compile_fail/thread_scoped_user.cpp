// A thread-scoped set may not hold user (or time): the kernel refuses them to threads.
// expect: constraints not satisfied
#include "nsentry/ns.hpp"
using namespace nsentry;
int main() {
#ifdef NSENTRY_MISUSE
  constexpr ns_set s = thread_ns_set<net_ns, user_ns>::value;
#else
  constexpr ns_set s = thread_ns_set<net_ns, uts_ns>::value;
#endif
  return static_cast<int>(s.size());
}
