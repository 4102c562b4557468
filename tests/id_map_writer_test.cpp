// write_id_maps to real children in new user namespaces: the maps and setgroups read back from
// /proc/<pid>; a refused direct write falls back to the tool, whose failure names it.
#include "nsentry/id_map_writer.hpp"

#include <doctest/doctest.h>
#include <sched.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "tests/exec_test_util.hpp"

using namespace nsentry;
using namespace testutil;

namespace {

id_map map_of(std::vector<id_range> ranges) {
  auto m = id_map::from_ranges(std::move(ranges));
  REQUIRE_OK(m);
  return m.value();
}

// The ranges of a /proc map file, however the kernel pads them.
std::vector<id_range> ranges_in(const std::string& text) {
  std::istringstream in(text);
  std::vector<id_range> out;
  for (std::uint32_t a, b, c; in >> a >> b >> c;) out.push_back({a, b, c});
  return out;
}

std::vector<id_range> ranges_in(const id_map& m) { return {m.ranges().begin(), m.ranges().end()}; }

}  // namespace

TEST_CASE("uid_map and gid_map read back exactly") {
  user_ns_child c;
  id_map_request req;
  req.uid_map = map_of({{0, 100000, 1000}, {1000, 0, 1}, {2000, 300000, 10}});
  req.gid_map = map_of({{0, 200000, 500}, {500, 0, 1}});
  auto r = write_id_maps(c.pid(), req);
  REQUIRE_OK(r);
  CHECK(ranges_in(c.file("uid_map")) == ranges_in(req.uid_map));
  CHECK(ranges_in(c.file("gid_map")) == ranges_in(req.gid_map));
  CHECK(c.file("setgroups") == "allow\n");
  // Host uid 0 is 1000 inside, not 0: the child reports "not root".
  CHECK(c.finish() == 1);
}

TEST_CASE("root mapped to root: the child sees uid 0 and gid 0") {
  user_ns_child c;
  id_map_request req;
  req.uid_map = map_of({{0, 0, 1}});
  req.gid_map = map_of({{0, 0, 1}});
  REQUIRE_OK(write_id_maps(c.pid(), req));
  CHECK(ranges_in(c.file("uid_map")) == ranges_in(req.uid_map));
  CHECK(c.finish() == 0);
}

TEST_CASE("setgroups \"deny\" is written first when asked") {
  user_ns_child c;
  REQUIRE(c.file("setgroups") == "allow\n");
  id_map_request req;
  req.deny_setgroups = true;
  req.uid_map = map_of({{0, 100000, 65536}});
  req.gid_map = map_of({{0, 100000, 65536}});
  REQUIRE_OK(write_id_maps(c.pid(), req));
  CHECK(c.file("setgroups") == "deny\n");
  CHECK(ranges_in(c.file("uid_map")) == ranges_in(req.uid_map));
  CHECK(ranges_in(c.file("gid_map")) == ranges_in(req.gid_map));
}

TEST_CASE("only the maps given are written") {
  user_ns_child c;
  id_map_request req;
  req.uid_map = map_of({{0, 100000, 10}});
  REQUIRE_OK(write_id_maps(c.pid(), req));
  CHECK(ranges_in(c.file("uid_map")) == ranges_in(req.uid_map));
  CHECK(c.file("gid_map").empty());
}

TEST_CASE("a map can be written once: the second write is the kernel's EPERM -> tool") {
  user_ns_child c;
  id_map_request req;
  req.uid_map = map_of({{0, 100000, 10}});
  REQUIRE_OK(write_id_maps(c.pid(), req));
  // Writing again is refused with EPERM, so the fallback tool runs; /bin/false fails.
  req.uidmap_tool = "/bin/false";
  auto r = write_id_maps(c.pid(), req);
  CHECK_ERROR(r, errc::child_failed, step::uid_map);
  REQUIRE(!r);
  CHECK(r.error().path == "/bin/false");
  CHECK(r.error().pid == c.pid());
  CHECK(ranges_in(c.file("uid_map")) == ranges_in(req.uid_map));
}

namespace {
ssize_t refuse_write(int, const void*, size_t) {
  errno = EPERM;
  return -1;
}

// A stand-in for newuidmap/newgidmap that writes the map `file` (/tmp/<name>, made once).
std::string map_tool(const std::string& name, const std::string& file) {
  std::string path = "/tmp/nsentry-test-" + name;
  {
    std::ofstream out(path);
    out << "#!/bin/sh\npid=$1; shift\nprintf '%s %s %s\\n' \"$@\" > /proc/$pid/" << file << "\n";
  }
  REQUIRE(::chmod(path.c_str(), 0755) == 0);
  return path;
}
}  // namespace

TEST_CASE("a refused direct write falls back to the tool; a failing tool is child_failed") {
  user_ns_child c;
  id_map_request req;
  req.uid_map = map_of({{0, 100000, 10}});
  req.gid_map = map_of({{0, 100000, 10}});
  sys::scoped_override o{&sys::table::write, &refuse_write};
  SUBCASE("the uid tool exits 1") {
    req.uidmap_tool = "/bin/false";
    auto r = write_id_maps(c.pid(), req);
    CHECK_ERROR(r, errc::child_failed, step::uid_map);
    REQUIRE(!r);
    CHECK(r.error().path == "/bin/false");
    CHECK(r.error().pid == c.pid());
    CHECK(r.error().detail == "exited with status 1");
    CHECK(r.error().message().find("/bin/false") != std::string::npos);
  }
  SUBCASE("the uid tool succeeds, the gid tool fails: uid_map first, then gid_map") {
    req.uidmap_tool = map_tool("uidtool", "uid_map");
    req.gidmap_tool = "/bin/false";
    auto r = write_id_maps(c.pid(), req);
    CHECK_ERROR(r, errc::child_failed, step::gid_map);
    REQUIRE(!r);
    CHECK(r.error().path == "/bin/false");
  }
  SUBCASE("both tools succeed: success (the tools did the writing, read back)") {
    req.uidmap_tool = map_tool("uidtool", "uid_map");
    req.gidmap_tool = map_tool("gidtool", "gid_map");
    CHECK_OK(write_id_maps(c.pid(), req));
    CHECK(std::ranges::equal(ranges_in(c.file("uid_map")), req.uid_map.ranges()));
  }
  SUBCASE("a tool that exits 0 without writing: child_failed naming it") {
    req.uidmap_tool = "/bin/true";
    auto r = write_id_maps(c.pid(), req);
    CHECK_ERROR(r, errc::child_failed, step::uid_map);
    REQUIRE(!r);
    CHECK(r.error().path == "/bin/true");
  }
  SUBCASE("setgroups refused: step::setgroups, the kernel's errno, no tool") {
    req.deny_setgroups = true;
    req.uidmap_tool = "/bin/true";
    auto r = write_id_maps(c.pid(), req);
    CHECK_ERROR(r, std::errc::operation_not_permitted, step::setgroups);
  }
  CHECK(c.file("setgroups") == "allow\n");
}

TEST_CASE("a map write failing otherwise than EPERM is returned, no tool") {
  pid_t gone;
  {
    user_ns_child c;
    gone = c.pid();
  }
  id_map_request req;
  req.uid_map = map_of({{0, 100000, 10}});
  req.uidmap_tool = "/bin/true";
  auto r = write_id_maps(gone, req);
  CHECK_ERROR(r, std::errc::no_such_file_or_directory, step::uid_map);
}

TEST_CASE("a util-linux unshare --user target made by another user: root writes its maps") {
  auto u = ensure_user();
  target t({"--user"}, {"setpriv", "--reuid=" + std::to_string(u.uid),
                        "--regid=" + std::to_string(u.gid), "--clear-groups"});
  // Root writes directly: the maps read back, whatever user made the namespace.
  id_map_request req;
  req.deny_setgroups = true;
  req.uid_map = map_of({{0, u.uid, 1}, {1, u.subuid, 1000}});
  req.gid_map = map_of({{0, u.gid, 1}, {1, u.subgid, 1000}});
  REQUIRE_OK(write_id_maps(t.pid(), req));
  auto proc = "/proc/" + std::to_string(t.pid()) + "/";
  CHECK(ranges_in(slurp(proc + "uid_map")) == ranges_in(req.uid_map));
  CHECK(ranges_in(slurp(proc + "gid_map")) == ranges_in(req.gid_map));
  CHECK(slurp(proc + "setgroups") == "deny\n");
}
