// plan::validate()'s rules (each error is errc::invalid_plan naming the field), the setgroups
// truth table and the timens_offsets text.
#include "nsentry/plan.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <new>
#include <span>
#include <string>

#include "tests/testing.hpp"

using namespace nsentry;

namespace {

id_map one_range() {
  auto m = id_map::from_ranges({{0, 1000, 1}});
  REQUIRE_OK(m);
  return m.value();
}

std::string proc_path_for_test(ns_kind k) { return "/proc/1/ns/" + std::string(name_of(k)); }

bool detail_has(const result<void>& r, std::string_view words) {
  return !r && r.error().detail.find(words) != std::string::npos;
}

}  // namespace

TEST_CASE("an empty plan is valid") {
  plan p;
  CHECK_OK(p.validate());
}

TEST_CASE("a full, consistent plan is valid") {
  plan p;
  p.create = {ns_kind::user, ns_kind::time, ns_kind::uts};
  p.join = {{ns_kind::net, "/proc/1/ns/net"}, {ns_kind::ipc, "/proc/1/ns/ipc"}};
  p.uid_map = one_range();
  p.gid_map = one_range();
  p.oom_score_adj = 1000;
  p.time_offsets = {{time_clock::monotonic, 5, 0}, {time_clock::boottime, -3, 999'999'999}};
  CHECK_OK(p.validate());
  p.oom_score_adj = -1000;
  CHECK_OK(p.validate());
}

TEST_CASE("a kind joined twice") {
  plan p;
  p.join = {{ns_kind::net, "/a"}, {ns_kind::net, "/b"}};
  auto r = p.validate();
  CHECK_ERROR(r, errc::invalid_plan, step::join);
  CHECK(detail_has(r, "net is joined twice"));
}

TEST_CASE("an empty join path") {
  plan p;
  p.join = {{ns_kind::uts, ""}};
  auto r = p.validate();
  CHECK_ERROR(r, errc::invalid_plan, step::join);
  CHECK(detail_has(r, "empty path for uts"));
}

TEST_CASE("a kind both created and joined") {
  plan p;
  p.create = {ns_kind::ipc};
  p.join = {{ns_kind::ipc, "/proc/1/ns/ipc"}};
  auto r = p.validate();
  CHECK_ERROR(r, errc::invalid_plan, step::create);
  CHECK(detail_has(r, "both created and joined"));
}

TEST_CASE("oom_score_adj outside -1000..1000") {
  plan p;
  for (int v : {-1001, 1001, -100000, 100000}) {
    CAPTURE(v);
    p.oom_score_adj = v;
    auto r = p.validate();
    CHECK_ERROR(r, errc::invalid_plan, step::oom_score_adj);
    CHECK(detail_has(r, std::to_string(v)));
  }
  for (int v : {-1000, 0, 1000}) {
    p.oom_score_adj = v;
    CHECK_OK(p.validate());
  }
}

TEST_CASE("id maps without a new user namespace") {
  plan p;
  p.create = {ns_kind::uts};
  p.uid_map = one_range();
  auto r = p.validate();
  CHECK_ERROR(r, errc::invalid_plan, step::uid_map);
  CHECK(detail_has(r, "without a new user namespace"));
  p.uid_map = {};
  p.gid_map = one_range();
  CHECK_ERROR(p.validate(), errc::invalid_plan, step::uid_map);
  p.create.insert(ns_kind::user);
  CHECK_OK(p.validate());
}

TEST_CASE("time offsets without a new time namespace") {
  plan p;
  p.time_offsets = {{time_clock::monotonic, 1, 0}};
  auto r = p.validate();
  CHECK_ERROR(r, errc::invalid_plan, step::time_offsets);
  CHECK(detail_has(r, "without a new time namespace"));
  p.create = {ns_kind::time};
  CHECK_OK(p.validate());
}

TEST_CASE("a clock given twice") {
  plan p;
  p.create = {ns_kind::time};
  p.time_offsets = {{time_clock::boottime, 1, 0}, {time_clock::boottime, 2, 0}};
  auto r = p.validate();
  CHECK_ERROR(r, errc::invalid_plan, step::time_offsets);
  CHECK(detail_has(r, "boottime given twice"));
}

TEST_CASE("nanoseconds outside 0..999999999") {
  plan p;
  p.create = {ns_kind::time};
  for (std::int64_t ns : {std::int64_t{-1}, std::int64_t{1'000'000'000}}) {
    CAPTURE(ns);
    p.time_offsets = {{time_clock::monotonic, 0, ns}};
    auto r = p.validate();
    CHECK_ERROR(r, errc::invalid_plan, step::time_offsets);
    CHECK(detail_has(r, "monotonic nanoseconds " + std::to_string(ns)));
  }
}

TEST_CASE("deny_setgroups and drop_groups: runc's truth table") {
  struct row {
    bool rootless, setgroups, deny, drop;
  };
  for (row r : {row{false, false, false, false}, row{false, true, false, true},
                row{true, false, true, false}, row{true, true, false, false}}) {
    CAPTURE(r.rootless);
    CAPTURE(r.setgroups);
    plan p;
    p.rootless_euid = r.rootless;
    p.setgroups = r.setgroups;
    CHECK(p.deny_setgroups() == r.deny);
    CHECK(p.drop_groups() == r.drop);
  }
}

TEST_CASE("format_time_offsets") {
  CHECK(format_time_offsets({}) == "");
  std::vector<time_offset> o{{time_clock::monotonic, 86400, 5},
                             {time_clock::boottime, -7, 999'999'999}};
  CHECK(format_time_offsets(o) == "monotonic 86400 5\nboottime -7 999999999\n");
  CHECK(time_clock_from_name("boottime") == time_clock::boottime);
  CHECK(time_clock_from_name("realtime") == std::nullopt);
}

TEST_CASE("path_string: in place up to inline_capacity bytes, on the heap beyond, NUL-terminated") {
  const std::string fits(path_string::inline_capacity, 'a');
  const std::string over = fits + "b";
  for (const std::string& s : {std::string(), std::string("/proc/1/ns/net"), fits, over}) {
    CAPTURE(s.size());
    path_string p = s;
    CHECK(p == s);
    CHECK(p.size() == s.size());
    CHECK(p.empty() == s.empty());
    CHECK(std::strlen(p.c_str()) == s.size());
    path_string copy = p;
    CHECK(copy == p);
    CHECK(copy.data() != p.data());
    path_string moved = std::move(copy);
    CHECK(moved == s);
    CHECK(copy.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
    CHECK(*copy.c_str() == '\0');
    for (const std::string& t : {std::string("/x"), over}) {
      path_string a = s;
      a = path_string(t);
      CHECK(a == t);
      const path_string& same = a;
      a = same;  // self-assignment keeps the bytes
      CHECK(a == t);
      a.assign(a.view().substr(1));  // a part of its own bytes
      CHECK(a == t.substr(1));
    }
  }
  CHECK(sizeof(path_string) == 128);
  CHECK(ns_join{ns_kind::net, "/a"} == ns_join{ns_kind::net, std::string("/a")});
  CHECK_FALSE(ns_join{ns_kind::net, "/a"} == ns_join{ns_kind::ipc, "/a"});
  const path_string net("/run/netns/x");
  std::string_view v = net;
  CHECK(v == "/run/netns/x");
}

TEST_CASE("inplace_vector: elements in place, full at capacity, moves leave it empty") {
  inplace_vector<ns_join, 2> v;
  CHECK(v.empty());
  CHECK(decltype(v)::capacity() == 2);
  v.push_back({ns_kind::net, "/a"});
  CHECK(v.try_push_back({ns_kind::ipc, std::string(200, 'x')}) != nullptr);
  CHECK(v.try_push_back({ns_kind::uts, "/c"}) == nullptr);
  CHECK_THROWS_AS(v.push_back({ns_kind::uts, "/c"}), std::bad_alloc);
  REQUIRE(v.size() == 2);
  CHECK(v[1].path.size() == 200);
  inplace_vector<ns_join, 2> copy = v;
  CHECK(copy == v);
  inplace_vector<ns_join, 2> moved = std::move(copy);
  CHECK(moved == v);
  CHECK(copy.empty());  // NOLINT(bugprone-use-after-move)
  std::span<const ns_join> s = moved;
  CHECK(s.size() == 2);
  CHECK(s.front().kind == ns_kind::net);
  moved.pop_back();
  CHECK(moved.size() == 1);
  CHECK_FALSE(moved == v);
  moved = v;
  CHECK(moved == v);
  moved.clear();
  CHECK(moved.empty());
}

TEST_CASE("a plan holds one join per kind and one offset per clock in place") {
  plan p;
  for (ns_kind k : all_ns_kinds) p.join.push_back({k, proc_path_for_test(k)});
  CHECK(p.join.size() == ns_kind_count);
  CHECK(p.join.try_push_back({ns_kind::net, "/x"}) == nullptr);
  CHECK(p.time_offsets.capacity() == time_clock_count);
  plan q = p;
  CHECK(q == p);
  CHECK_OK(p.validate());
}
