// nsentry/child_side/create.hpp — creating namespaces with unshare(2), in runc's order.
//
// A new user namespace is created first and alone, so that the others are owned by it (and
// creatable without privilege outside); its id maps go in between (written from the parent
// side over the channel); then one unshare() of everything else.
//
// Contracts: noexcept, allocation-free, async-signal-safe. The calling thread changes; user
// and time need a single-threaded caller (EINVAL otherwise); pid and time affect only later
// children. Privilege: CAP_SYS_ADMIN in the owning user namespace, or a new user namespace.
#pragma once

#include <cerrno>

#include "nsentry/channel.hpp"
#include "nsentry/ns.hpp"
#include "nsentry/sys.hpp"

namespace nsentry::inline v0::child_side {

// Step 1 of creation: the user namespace, if `kinds` has one.
inline failure unshare_user(ns_set kinds) noexcept {
  if (!kinds.contains(ns_kind::user)) return {};
  if (sys::calls.unshare(CLONE_NEWUSER) == -1)
    return failure::at(step::unshare, errno, ns_kind::user);
  return {};
}

// Step 2 (after the maps): every other kind in one unshare(). The kernel's error does not say
// which kind it refused; the failure names the kind only when the set has one.
inline failure unshare_rest(ns_set kinds) noexcept {
  kinds.erase(ns_kind::user);
  if (kinds.empty()) return {};
  if (sys::calls.unshare(static_cast<int>(kinds.clone_flags())) == -1) {
    int err = errno;
    if (kinds.size() == 1) return failure::at(step::unshare, err, *kinds.begin());
    return failure::at(step::unshare, err);
  }
  return {};
}

}  // namespace nsentry::inline v0::child_side
