// nsentry/create.hpp — creating new namespaces for the calling thread (parent side), with the
// child-side steps of child_side/create.hpp: the user namespace first and alone, then the rest.
//
// Contracts: changes the calling thread; user and time need a single-threaded caller (refused
// up front with errc::multi_threaded otherwise); pid and time affect only later children. A
// new user namespace maps nobody until someone outside writes its maps: use run_plan for maps.
#pragma once

#include "nsentry/channel.hpp"
#include "nsentry/child_side/create.hpp"
#include "nsentry/error.hpp"
#include "nsentry/join.hpp"
#include "nsentry/ns.hpp"

namespace nsentry::inline v0 {

inline result<void> create_namespaces(ns_set kinds) {
  NSENTRY_TRY(check_thread_rules(kinds, step::create));
  auto f = child_side::unshare_user(kinds);
  if (!f.failed()) f = child_side::unshare_rest(kinds);
  if (!f.failed()) return success();
  error e = error_from(f);
  e.context = "create";
  if (!e.kind) e.detail = (kinds - ns_set{ns_kind::user}).names();
  return e;
}

}  // namespace nsentry::inline v0
