// An integer constant with a non-namespace bit given to ns_set.
// expect: constant expression
#include "nsentry/ns.hpp"
using namespace nsentry;
int main() {
#ifdef NSENTRY_MISUSE
  constexpr ns_set s{CLONE_NEWNET | CLONE_VM};
#else
  constexpr ns_set s{CLONE_NEWNET | CLONE_NEWNS};
#endif
  return static_cast<int>(s.size());
}
