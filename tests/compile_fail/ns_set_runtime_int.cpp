// A run-time integer must go through ns_set::from_clone_flags, which checks it.
// expect: constant expression
// expect: consteval
#include "nsentry/ns.hpp"
using namespace nsentry;
int main(int argc, char**) {
  std::uint64_t flags = static_cast<std::uint64_t>(argc) << 30;
#ifdef NSENTRY_MISUSE
  ns_set s{flags};
#else
  ns_set s = ns_set::from_clone_flags(flags).value();
#endif
  return static_cast<int>(s.size());
}
