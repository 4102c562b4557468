// nsentry/create.hpp — creating new namespaces with unshare(2), in runc's order.
//
// A new user namespace is created first and alone, so that the others are owned by it (and
// creatable without privilege in the outer namespace); its id maps go in between (written from
// the parent side: see id_map_writer.hpp); then one unshare() of everything else.
//
// Contracts:
//  - unshare_user()/unshare_rest() are allocation-free and async-signal-safe (child side).
//  - The calling thread (CLONE_FS/CLONE_FILES aside) changes; user and time need a
//    single-threaded caller (EINVAL otherwise); pid and time affect only later children.
//  - Privilege: CAP_SYS_ADMIN in the owning user namespace, or a new user namespace first.
#pragma once

#include "nsentry/child.hpp"
#include "nsentry/error.hpp"
#include "nsentry/ns.hpp"
#include "nsentry/sys.hpp"

namespace nsentry {

// Step 1 of creation: the user namespace, if `kinds` has one.
inline child_failure unshare_user(ns_set kinds) noexcept {
  if (!kinds.contains(ns_kind::user)) return {};
  if (sys::calls.unshare(CLONE_NEWUSER) == -1)
    return child_failure::at(child_step::unshare, errno, static_cast<std::uint8_t>(ns_kind::user));
  return {};
}

// Step 2 (after the maps): every other kind in one unshare(). The kernel's error does not say
// which kind it refused; the failure names the set's first kind only when it has one.
inline child_failure unshare_rest(ns_set kinds) noexcept {
  kinds.erase(ns_kind::user);
  if (kinds.empty()) return {};
  if (sys::calls.unshare(static_cast<int>(kinds.clone_flags())) == -1) {
    int err = errno;
    std::uint8_t k = kinds.size() == 1 ? static_cast<std::uint8_t>(*kinds.begin()) : no_kind;
    return child_failure::at(child_step::unshare, err, k);
  }
  return {};
}

// Creates `kinds` for the calling thread, with no id maps (a new user namespace then maps
// nobody until someone outside writes them; use the executor for maps written by a parent).
inline result<void> create_namespaces(ns_set kinds) {
  auto f = unshare_user(kinds);
  if (!f.failed()) f = unshare_rest(kinds);
  if (!f.failed()) return success();
  error e = error_from(f);
  if (!e.kind) e.detail = "creating " + (kinds - ns_set{ns_kind::user}).names();
  return e;
}

}  // namespace nsentry
