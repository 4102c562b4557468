// A namespace set combined with a non-namespace clone flag.
// expect: operator|
// expect: invalid operands
#include "nsentry/ns.hpp"
using namespace nsentry;
int main() {
  ns_set s = ns_set::of<net_ns, uts_ns>();
#ifdef NSENTRY_MISUSE
  auto t = s | CLONE_VM;
#else
  auto t = s | ns_set{CLONE_NEWIPC};
#endif
  return static_cast<int>(t.size());
}
