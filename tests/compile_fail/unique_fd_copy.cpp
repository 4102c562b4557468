// unique_fd is move-only.
// expect: deleted
#include "nsentry/fd.hpp"
using namespace nsentry;
int main() {
  unique_fd a;
#ifdef NSENTRY_MISUSE
  unique_fd b = a;
#else
  unique_fd b = std::move(a);
#endif
  return b.valid();
}
