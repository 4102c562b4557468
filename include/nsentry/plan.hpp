// nsentry/plan.hpp — what an entry sequence must do, as typed data.
//
// A plan is what runc's bootstrap message says (nsentry/bootstrap.hpp reads and writes it) and
// what the executor carries out; a C++ runtime may also build one by hand. It knows nothing of
// the wire format and makes no syscalls.
//
// A plan holds its join list, join and tool paths and time offsets in place (inplace_vector,
// path_string), so that reading one from runc's message allocates nothing; only id maps over
// four ranges, paths over path_string::inline_capacity bytes and runc 1.1's mount sources use
// the heap.
// Contract: plain data; validate() allocates only for its error text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "nsentry/error.hpp"
#include "nsentry/id_map.hpp"
#include "nsentry/ns.hpp"

namespace nsentry::inline v0 {

// A vector of at most N elements, kept in place: the subset of C++26's std::inplace_vector that
// plans need. As there, push_back/emplace_back on a full vector throw std::bad_alloc and
// try_push_back returns nullptr. A moved-from vector is empty.
template <class T, std::size_t N>
class inplace_vector {
 public:
  using value_type = T;
  using size_type = std::size_t;
  using iterator = T*;
  using const_iterator = const T*;

  inplace_vector() noexcept {}
  inplace_vector(std::initializer_list<T> init) {
    for (const T& v : init) push_back(v);
  }
  inplace_vector(const inplace_vector& o) {
    for (const T& v : o) unchecked_emplace_back(v);
  }
  inplace_vector(inplace_vector&& o) noexcept(std::is_nothrow_move_constructible_v<T>) {
    for (T& v : o) unchecked_emplace_back(std::move(v));
    o.clear();
  }
  inplace_vector& operator=(const inplace_vector& o) {
    if (this != &o) {
      clear();
      for (const T& v : o) unchecked_emplace_back(v);
    }
    return *this;
  }
  inplace_vector& operator=(inplace_vector&& o) noexcept(std::is_nothrow_move_constructible_v<T>) {
    if (this != &o) {
      clear();
      for (T& v : o) unchecked_emplace_back(std::move(v));
      o.clear();
    }
    return *this;
  }
  ~inplace_vector() { clear(); }

  static constexpr size_type capacity() noexcept { return N; }
  size_type size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  T* data() noexcept { return items_; }
  const T* data() const noexcept { return items_; }
  T* begin() noexcept { return items_; }
  T* end() noexcept { return items_ + size_; }
  const T* begin() const noexcept { return items_; }
  const T* end() const noexcept { return items_ + size_; }
  T& operator[](size_type i) noexcept { return items_[i]; }
  const T& operator[](size_type i) const noexcept { return items_[i]; }
  T& front() noexcept { return items_[0]; }
  const T& front() const noexcept { return items_[0]; }
  T& back() noexcept { return items_[size_ - 1]; }
  const T& back() const noexcept { return items_[size_ - 1]; }

  template <class... Args>
  T* try_emplace_back(Args&&... args) {
    if (size_ == N) return nullptr;
    return &unchecked_emplace_back(std::forward<Args>(args)...);
  }
  T* try_push_back(const T& v) { return try_emplace_back(v); }
  T* try_push_back(T&& v) { return try_emplace_back(std::move(v)); }
  template <class... Args>
  T& emplace_back(Args&&... args) {
    if (size_ == N) throw std::bad_alloc();
    return unchecked_emplace_back(std::forward<Args>(args)...);
  }
  void push_back(const T& v) { emplace_back(v); }
  void push_back(T&& v) { emplace_back(std::move(v)); }
  void pop_back() noexcept { items_[--size_].~T(); }
  void clear() noexcept {
    if constexpr (!std::is_trivially_destructible_v<T>)
      for (T& v : *this) v.~T();
    size_ = 0;
  }

  bool operator==(const inplace_vector& o) const {
    if (size_ != o.size_) return false;
    for (size_type i = 0; i < size_; ++i)
      if (!(items_[i] == o.items_[i])) return false;
    return true;
  }

 private:
  template <class... Args>
  T& unchecked_emplace_back(Args&&... args) {
    T* p;
    if constexpr (std::is_aggregate_v<T>)
      p = ::new (static_cast<void*>(items_ + size_)) T{std::forward<Args>(args)...};
    else
      p = ::new (static_cast<void*>(items_ + size_)) T(std::forward<Args>(args)...);
    ++size_;
    return *p;
  }

  size_type size_ = 0;
  union {
    T items_[N];  // the first size_ are alive
  };
};

// A path's bytes, NUL-terminated: up to `inline_capacity` bytes in place (every
// /proc/<pid>/ns/<kind>, bind mounts such as /run/netns/cni-<uuid>, newuidmap's path), longer
// ones (the kernel takes up to PATH_MAX) on the heap. Reads as a std::string_view.
class path_string {
 public:
  static constexpr std::size_t inline_capacity = 111;  // sizeof(path_string) == 128

  path_string() noexcept { inline_[0] = '\0'; }
  template <class S>
  requires(std::is_convertible_v<const S&, std::string_view> && !std::is_same_v<S, path_string>)
      path_string(const S& s) {
    init(std::string_view(s));
  }
  path_string(const path_string& o) { init(o.view()); }
  path_string(path_string&& o) noexcept : size_(o.size_), heap_(o.heap_) {
    if (!heap_) std::memcpy(inline_, o.inline_, size_ + 1);
    o.size_ = 0;
    o.heap_ = nullptr;
    o.inline_[0] = '\0';
  }
  path_string& operator=(const path_string& o) {
    if (this != &o) assign(o.view());
    return *this;
  }
  path_string& operator=(path_string&& o) noexcept {
    if (this != &o) {
      delete[] heap_;
      size_ = o.size_;
      heap_ = o.heap_;
      if (!heap_) std::memcpy(inline_, o.inline_, size_ + 1);
      o.size_ = 0;
      o.heap_ = nullptr;
      o.inline_[0] = '\0';
    }
    return *this;
  }
  ~path_string() { delete[] heap_; }

  // Replaces the bytes (which may be a part of this string's own).
  void assign(std::string_view s) {
    if (s.size() <= inline_capacity) {
      std::memmove(inline_, s.data(), s.size());
      inline_[s.size()] = '\0';
      delete[] heap_;
      heap_ = nullptr;
      size_ = s.size();
    } else {
      path_string copy(s);
      *this = std::move(copy);
    }
  }

  const char* data() const noexcept { return heap_ ? heap_ : inline_; }
  const char* c_str() const noexcept { return data(); }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  const char* begin() const noexcept { return data(); }
  const char* end() const noexcept { return data() + size_; }
  std::string_view view() const noexcept { return {data(), size_}; }
  operator std::string_view() const noexcept { return view(); }

  // Byte-wise, with another path_string or any string (std::string, a literal, a view).
  friend bool operator==(const path_string& a, const path_string& b) noexcept {
    return a.view() == b.view();
  }
  template <class S>
  requires(std::is_convertible_v<const S&, std::string_view> &&
           !std::is_same_v<S, path_string>) friend bool
  operator==(const path_string& a, const S& b) noexcept {
    return a.view() == std::string_view(b);
  }

 private:
  void init(std::string_view s) {
    char* to = inline_;
    if (s.size() > inline_capacity) to = heap_ = new char[s.size() + 1];
    std::memcpy(to, s.data(), s.size());
    to[s.size()] = '\0';
    size_ = s.size();
  }

  std::size_t size_ = 0;
  char* heap_ = nullptr;              // owned; set exactly when size_ > inline_capacity
  char inline_[inline_capacity + 1];  // NUL-terminated when heap_ is null
};

// Join an existing namespace through a file (a /proc/<pid>/ns/<kind> entry or a bind mount).
struct ns_join {
  ns_kind kind{};
  path_string path;
  bool operator==(const ns_join&) const = default;
};

// The clocks a time namespace can offset (Linux >= 5.6, /proc/<pid>/timens_offsets).
enum class time_clock : std::uint8_t { monotonic, boottime };
inline constexpr std::size_t time_clock_count = 2;

constexpr std::string_view name_of(time_clock c) noexcept {
  return c == time_clock::monotonic ? "monotonic" : "boottime";
}

constexpr std::optional<time_clock> time_clock_from_name(std::string_view n) noexcept {
  if (n == "monotonic") return time_clock::monotonic;
  if (n == "boottime") return time_clock::boottime;
  return std::nullopt;
}

struct time_offset {
  time_clock clock{};
  std::int64_t secs = 0;
  std::int64_t nanosecs = 0;  // 0 .. 999'999'999, as the kernel requires
  bool operator==(const time_offset&) const = default;
};

// "monotonic <secs> <nanosecs>\n" per clock, the text of /proc/<pid>/timens_offsets and of runc's
// TIMENSOFFSET attribute.
inline std::string format_time_offsets(std::span<const time_offset> offsets) {
  std::string text;
  for (const auto& o : offsets) {
    text += name_of(o.clock);
    text += ' ';
    text += std::to_string(o.secs);
    text += ' ';
    text += std::to_string(o.nanosecs);
    text += '\n';
  }
  return text;
}

struct plan {
  // At most one join per kind (validate() refuses a kind twice), one offset per clock.
  using join_list = inplace_vector<ns_join, ns_kind_count>;
  using time_offset_list = inplace_vector<time_offset, time_clock_count>;

  ns_set create;                           // new namespaces (CLONE_FLAGS)
  join_list join;                          // existing namespaces, in message order (NS_PATHS)
  id_map uid_map;                          // for a new user namespace (UIDMAP)
  id_map gid_map;                          // (GIDMAP)
  bool setgroups = false;                  // SETGROUP: call setgroups(0, NULL) in the new process
  bool rootless_euid = false;              // ROOTLESS_EUID: the runtime is not root
  std::optional<int> oom_score_adj;        // OOM_SCORE_ADJ, -1000 .. 1000
  std::optional<path_string> uidmap_tool;  // UIDMAPPATH: newuidmap for rootless maps
  std::optional<path_string> gidmap_tool;  // GIDMAPPATH
  time_offset_list time_offsets;           // TIMENSOFFSET (runc >= 1.2)
  std::optional<std::vector<std::string>> mount_sources;  // MOUNT_SOURCES (runc 1.1)

  // User-provided, so that value-initializing a plan (plan{}, result<plan>'s in-place
  // construction) does not first zero its in-place storage (about 1.6 KB).
  plan() noexcept {}

  bool operator==(const plan&) const = default;

  // Runc's setgroups rule: write "deny" to /proc/<child>/setgroups before the maps.
  bool deny_setgroups() const noexcept { return rootless_euid && !setgroups; }
  // ... and drop supplementary groups in the final process.
  bool drop_groups() const noexcept { return !rootless_euid && setgroups; }

  // Checks that no two fields contradict each other. Errors name the field.
  result<void> validate() const {
    ns_set joined;
    for (const auto& j : join) {
      if (j.path.empty())
        return invalid(step::join, "empty path for " + std::string(name_of(j.kind)));
      if (joined.contains(j.kind))
        return invalid(step::join, std::string(name_of(j.kind)) + " is joined twice");
      joined.insert(j.kind);
    }
    if (!(joined & create).empty())
      return invalid(step::create, (joined & create).names() + " both created and joined");
    if (oom_score_adj && (*oom_score_adj < -1000 || *oom_score_adj > 1000))
      return invalid(step::oom_score_adj,
                     std::to_string(*oom_score_adj) + " is outside -1000..1000");
    // No uid_map/gid_map.validate() here: an id_map holds only validated ranges (parse() and
    // from_ranges() are the only ways to fill one, and both validate).
    if ((!uid_map.empty() || !gid_map.empty()) && !create.contains(ns_kind::user))
      return invalid(step::uid_map, "id maps given without a new user namespace");
    for (const auto& t : time_offsets) {
      for (const auto& o : time_offsets)
        if (&o != &t && o.clock == t.clock)
          return invalid(step::time_offsets, std::string(name_of(t.clock)) + " given twice");
      if (t.nanosecs < 0 || t.nanosecs > 999'999'999)
        return invalid(step::time_offsets, std::string(name_of(t.clock)) + " nanoseconds " +
                                               std::to_string(t.nanosecs) +
                                               " outside 0..999999999");
    }
    if (!time_offsets.empty() && !create.contains(ns_kind::time))
      return invalid(step::time_offsets, "offsets given without a new time namespace");
    return success();
  }

 private:
  static error invalid(nsentry::step field, std::string detail) {
    return nsentry_error(errc::invalid_plan, field, std::move(detail));
  }
};

}  // namespace nsentry::inline v0
