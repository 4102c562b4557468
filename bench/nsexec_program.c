// nsexec_program: runc 1.1's own init (libcontainer/nsenter's nsexec.c and cloned_binary.c,
// compiled from runc's source by bench/build_nsexec.sh, not kept here) in a program whose
// main exits 0 — the baseline of runc_init_bench's `nsexec/*` comparisons. The constructor is
// the one runc's nsenter.go installs; started by a runc-style parent, stage-0 and stage-1 exit
// inside it and stage-2 returns to main.
// -DNSEXEC_NO_CLONE: without the self-clone (ensure_cloned_binary does nothing).
extern void nsexec(void);

#ifdef NSEXEC_NO_CLONE
int ensure_cloned_binary(void) { return 0; }
#endif

__attribute__((constructor)) static void init(void) { nsexec(); }

int main(void) { return 0; }
