// nsentry_init_program: nsentry's runc 1.1 init (runc/constructor.hpp, protocol 11) in a
// program whose main exits 0 — runc_init_bench's `nsexec/*` comparisons put it against runc
// 1.1's own nsexec in the same program shape (bench/nsexec_program.c). Started by a runc-style
// parent, stage-0 and stage-1 exit inside the constructor and stage-2 returns to main.
// -DNSENTRY_RUNC_SEALED=0: without the self-clone.
#define NSENTRY_RUNC_PROTOCOL 11
#include "nsentry/runc/constructor.hpp"

int main() { return 0; }
