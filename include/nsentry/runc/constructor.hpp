// nsentry/runc/constructor.hpp — make a C++ program its own runc init, the way runc is.
//
//   #define NSENTRY_RUNC_PROTOCOL 11   // optional: 11 (runc 1.1) or 12 (runc >= 1.2, default)
//   #define NSENTRY_RUNC_SEALED 1      // optional: sealed self re-exec first (1) or not (0);
//                                      // default: as the protocol requires (1.1 yes, 1.2 no)
//   #include "nsentry/runc/constructor.hpp"
//   int main() { /* runs normally, or as stage-2 inside the container's namespaces */ }
//
// Including this header installs an ELF constructor that runs nsentry::runc::init() before
// main (and before the program's own static initialisers in other translation units may have
// started threads): started by a runc-style parent (_LIBCONTAINER_INITPIPE set), stage-0 and
// stage-1 do their work and exit inside the constructor, and only stage-2 reaches main — in
// the new namespaces, as uid/gid 0 and session leader, with the init pipe and log pipe still
// open, as runc's Go init expects. Without _LIBCONTAINER_INITPIPE the constructor does nothing.
// Any failure exits 1 with a fatal log line (or `FATAL: ...` on stderr) before main.
//
// Choosing the protocol (the meaning of attribute 27290): NSENTRY_RUNC_PROTOCOL at build time
// (11 or 12), overridden at run time by _NSENTRY_RUNC_PROTOCOL=1.1|1.2 in the environment.
//
// The self-clone (runc/sealed_exe.hpp, CVE-2019-5736): runc 1.1's init makes it before anything
// else and its Go side does not, so with protocol 1.1 (after the run-time override) it is on
// unless NSENTRY_RUNC_SEALED says 0; runc >= 1.2 clones the binary itself before starting init.
// By default the clone is made as runc 1.1 makes it: a detached read-only bind mount of the
// binary when that is allowed (root), else a sealed memfd copy; NSENTRY_RUNC_SEALED 1: always
// the sealed memfd.
//
// Include it in one translation unit of the program. Including it in more is harmless: every
// copy of the constructor checks one process-wide flag, so init() runs once.
#pragma once

#include "nsentry/runc/init.hpp"

#ifndef NSENTRY_RUNC_PROTOCOL
#define NSENTRY_RUNC_PROTOCOL 12
#endif
#ifndef NSENTRY_RUNC_SEALED
#define NSENTRY_RUNC_SEALED (-1)  // by protocol
#endif

static_assert(NSENTRY_RUNC_PROTOCOL == 11 || NSENTRY_RUNC_PROTOCOL == 12,
              "NSENTRY_RUNC_PROTOCOL must be 11 (runc 1.1) or 12 (runc >= 1.2)");

namespace nsentry::inline v0::runc::detail {

inline bool constructor_ran = false;  // one definition program-wide (inline variable)

// glibc passes (argc, argv, envp) to ELF constructors.
[[gnu::constructor]] static void run_init_constructor(int, char** argv, char** envp) {
  if (constructor_ran) return;
  constructor_ran = true;
  init_options o;
  o.protocol = NSENTRY_RUNC_PROTOCOL == 11 ? runc_protocol::v1_1 : runc_protocol::v1_2;
  if constexpr (NSENTRY_RUNC_SEALED == -1) {
    // An invalid _NSENTRY_RUNC_PROTOCOL is init()'s to report; the env is only read here.
    auto p = protocol_from_env(envp, o.protocol);
    o.sealed = p && *p == runc_protocol::v1_1;
    o.clone = clone_via::readonly_bind_then_memfd;  // runc 1.1's order: no copy when root
  } else {
    o.sealed = NSENTRY_RUNC_SEALED != 0;
  }
  o.argv = argv;
  o.envp = envp;
  init(o);  // returns only when this is not an init, or in stage-2
}

}  // namespace nsentry::inline v0::runc::detail
