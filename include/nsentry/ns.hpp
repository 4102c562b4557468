// nsentry/ns.hpp — namespace kinds as types, their kernel rules as constexpr traits, and ns_set.
//
//   ns_set s = ns_set::of<net_ns, uts_ns>();     // typed
//   ns_set t{ns_kind::net, ns_kind::ipc};         // run-time kinds
//   constexpr ns_set u{CLONE_NEWNET | CLONE_NEWNS};  // integer: explicit, checked at compile time
//   auto v = ns_set::from_clone_flags(parsed);     // integer known only at run time: a result
//
// An ns_set holds namespace kinds only: `s | CLONE_VM` does not compile, and
// `ns_set{CLONE_NEWNET | CLONE_VM}` fails constant evaluation.
// Contract: constexpr data; no syscalls; async-signal-safe.
#pragma once

#include <charconv>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <string>

#include "nsentry/error.hpp"
#include "nsentry/ns_kind.hpp"

namespace nsentry::inline v0 {

// --- kernel rules per kind (from the table in ns_kind.hpp) -----------------------------------

constexpr bool thread_enterable(ns_kind k) noexcept { return row_of(k).thread_enterable; }
constexpr bool needs_unshared_fs(ns_kind k) noexcept { return row_of(k).needs_unshared_fs; }
constexpr bool children_only(ns_kind k) noexcept { return row_of(k).children_only; }

// --- kinds as types --------------------------------------------------------------------------

template <ns_kind K>
struct ns_tag {
  static constexpr ns_kind kind = K;
  static constexpr int clone_flag = clone_flag_of(K);
  static constexpr std::string_view name = name_of(K);
  static constexpr bool thread_enterable = nsentry::thread_enterable(K);
  static constexpr bool needs_unshared_fs = nsentry::needs_unshared_fs(K);
  static constexpr bool children_only = nsentry::children_only(K);
};

struct user_ns : ns_tag<ns_kind::user> {};
struct mnt_ns : ns_tag<ns_kind::mnt> {};
struct pid_ns : ns_tag<ns_kind::pid> {};
struct net_ns : ns_tag<ns_kind::net> {};
struct ipc_ns : ns_tag<ns_kind::ipc> {};
struct uts_ns : ns_tag<ns_kind::uts> {};
struct cgroup_ns : ns_tag<ns_kind::cgroup> {};
struct time_ns : ns_tag<ns_kind::time> {};

template <class T>
concept namespace_type = requires {
  { T::kind } -> std::convertible_to<ns_kind>;
}
&&std::derived_from<T, ns_tag<T::kind>>;

// A kind a thread may enter and leave while other threads run (not user, not time).
template <class T>
concept thread_enterable_namespace = namespace_type<T> && T::thread_enterable;

// --- sets ------------------------------------------------------------------------------------

class ns_set {
 public:
  static constexpr std::uint64_t all_flags = [] {
    std::uint64_t f = 0;
    for (const auto& r : ns_kinds) f |= static_cast<unsigned>(r.clone_flag);
    return f;
  }();

  constexpr ns_set() noexcept = default;
  constexpr ns_set(std::initializer_list<ns_kind> kinds) noexcept {
    for (ns_kind k : kinds) insert(k);
  }

  // From an integer constant: explicit, and a non-namespace bit fails constant evaluation.
  explicit consteval ns_set(std::uint64_t clone_flags) : bits_(checked(clone_flags)) {}

  // From an integer known only at run time (a parsed message): names the stray bits.
  static result<ns_set> from_clone_flags(std::uint64_t flags) {
    if (flags & ~all_flags) {
      char hex[16];
      auto end = std::to_chars(hex, hex + sizeof hex, flags & ~all_flags, 16).ptr;
      return nsentry_error(errc::invalid_plan, step::clone_flags,
                           "non-namespace bits 0x" + std::string(hex, end));
    }
    ns_set s;
    s.bits_ = static_cast<std::uint32_t>(flags);
    return s;
  }

  template <namespace_type... K>
  static constexpr ns_set of() noexcept {
    return ns_set{K::kind...};
  }

  constexpr bool contains(ns_kind k) const noexcept { return (bits_ & flag(k)) != 0; }
  constexpr bool empty() const noexcept { return bits_ == 0; }
  constexpr std::size_t size() const noexcept {
    std::size_t n = 0;
    for (ns_kind k : all_ns_kinds) n += contains(k);
    return n;
  }
  constexpr std::uint32_t clone_flags() const noexcept { return bits_; }
  constexpr void insert(ns_kind k) noexcept { bits_ |= flag(k); }
  constexpr void erase(ns_kind k) noexcept { bits_ &= ~flag(k); }

  constexpr ns_set operator|(ns_set o) const noexcept { return raw(bits_ | o.bits_); }
  constexpr ns_set operator&(ns_set o) const noexcept { return raw(bits_ & o.bits_); }
  constexpr ns_set operator-(ns_set o) const noexcept { return raw(bits_ & ~o.bits_); }
  constexpr ns_set& operator|=(ns_set o) noexcept { return *this = *this | o; }
  constexpr bool operator==(const ns_set&) const noexcept = default;

  // Iterates kinds in runc's join order (the order of ns_kind's enumerators).
  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = ns_kind;
    using difference_type = std::ptrdiff_t;
    using pointer = const ns_kind*;
    using reference = ns_kind;

    constexpr iterator() noexcept = default;
    constexpr ns_kind operator*() const noexcept { return all_ns_kinds[i_]; }
    constexpr iterator& operator++() noexcept {
      ++i_;
      skip();
      return *this;
    }
    constexpr iterator operator++(int) noexcept {
      iterator old = *this;
      ++*this;
      return old;
    }
    constexpr bool operator==(const iterator&) const noexcept = default;

   private:
    friend class ns_set;
    constexpr iterator(std::uint32_t bits, std::size_t i) noexcept : bits_(bits), i_(i) { skip(); }
    constexpr void skip() noexcept {
      while (i_ < ns_kind_count && !(bits_ & flag(all_ns_kinds[i_]))) ++i_;
    }
    std::uint32_t bits_ = 0;
    std::size_t i_ = ns_kind_count;
  };
  constexpr iterator begin() const noexcept { return {bits_, 0}; }
  constexpr iterator end() const noexcept { return {bits_, ns_kind_count}; }

  // "user,net,cgroup" — for messages and the CLI.
  std::string names() const {
    std::string out;
    for (ns_kind k : *this) {
      if (!out.empty()) out += ',';
      out += name_of(k);
    }
    return out;
  }

 private:
  static constexpr std::uint32_t flag(ns_kind k) noexcept {
    return static_cast<std::uint32_t>(clone_flag_of(k));
  }
  static constexpr ns_set raw(std::uint32_t b) noexcept {
    ns_set s;
    s.bits_ = b;
    return s;
  }
  static consteval std::uint32_t checked(std::uint64_t f) {
    if (f & ~all_flags) throw "ns_set: clone flags outside CLONE_NEW* are not namespaces";
    return static_cast<std::uint32_t>(f);
  }

  std::uint32_t bits_ = 0;
};

// Every kind of the table whose row satisfies `pred`.
template <class Pred>
constexpr ns_set kinds_where(Pred pred) noexcept {
  ns_set s;
  for (const auto& r : ns_kinds)
    if (pred(r)) s.insert(r.kind);
  return s;
}

inline constexpr ns_set all_kinds = kinds_where([](const ns_kind_row&) { return true; });

// The kinds in a set that a multi-threaded caller may not enter: empty means thread-safe.
constexpr ns_set not_thread_enterable(ns_set s) noexcept {
  return s & kinds_where([](const ns_kind_row& r) { return !r.thread_enterable; });
}

// The kinds in a set that take effect only for children (the sequence must fork).
constexpr ns_set children_only_kinds(ns_set s) noexcept {
  return s & kinds_where([](const ns_kind_row& r) { return r.children_only; });
}

// The kinds in a set whose setns needs unshare(CLONE_FS) first.
constexpr ns_set unshared_fs_kinds(ns_set s) noexcept {
  return s & kinds_where([](const ns_kind_row& r) { return r.needs_unshared_fs; });
}

static_assert(all_kinds.size() == ns_kind_count && all_kinds.clone_flags() == ns_set::all_flags);

// A compile-time set of kinds a thread may enter on its own (no user, no time): the type behind
// thread-scoped entry. `thread_ns_set<user_ns>` does not compile.
template <thread_enterable_namespace... K>
struct thread_ns_set {
  static constexpr ns_set value = ns_set::of<K...>();
  static constexpr bool needs_unshared_fs = (K::needs_unshared_fs || ...);
};

}  // namespace nsentry::inline v0
