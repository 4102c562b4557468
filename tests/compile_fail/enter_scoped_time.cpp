// enter_scoped may not take time: the kernel refuses it to one thread of a process.
// expect: constraints not satisfied
// expect: no matching function
#include "nsentry/scoped_entry.hpp"
using namespace nsentry;
int main() {
#ifdef NSENTRY_MISUSE
  auto g = enter_scoped<time_ns>(1);
#else
  auto g = enter_scoped<mnt_ns>(1);
#endif
  return g ? 0 : 1;
}
