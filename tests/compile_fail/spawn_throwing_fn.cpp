// spawn() takes only child functions that cannot throw: `failure() noexcept`.
#include "nsentry/exec_spec.hpp"
#include "nsentry/spawn.hpp"

nsentry::result<nsentry::child> start(const nsentry::exec_spec& cmd) {
#ifdef NSENTRY_MISUSE
  return nsentry::spawn({}, [&cmd]() { return cmd.exec(); });  // may throw: refused
#else
  return nsentry::spawn({}, [&cmd]() noexcept { return cmd.exec(); });
#endif
}
// expect: child_function
// expect: constraints not satisfied
