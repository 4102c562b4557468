// The CLI's `nsentry run`: --plan and --bootstrap carried out through the binary, exit statuses,
// the error lines, --trace, and the rootless path (an unprivileged user through newuidmap).
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <string>

#include "nsentry/executor.hpp"
#include "nsentry/fd.hpp"
#include "tests/exec_test_util.hpp"

using namespace nsentry;
using namespace testutil;

// --- the CLI and the rootless path -------------------------------------------------------------

namespace {

std::string write_plan(const std::string& name, const std::string& json) {
  std::string path = "/tmp/nsentry-" + name + "-" + std::to_string(::getpid()) + ".json";
  FILE* f = std::fopen(path.c_str(), "w");
  REQUIRE(f != nullptr);
  std::fputs(json.c_str(), f);
  std::fclose(f);
  ::chmod(path.c_str(), 0644);
  return path;
}

}  // namespace

TEST_CASE("nsentry run --plan: maps, exit statuses, and errors") {
  std::string bin = nsentry_bin();
  auto plan_path = write_plan("run", R"({"create":["user","mnt","uts"],"join":[],
    "uid_map":[{"inside":0,"outside":100000,"count":1000},{"inside":1000,"outside":0,"count":1},
               {"inside":2000,"outside":300000,"count":10}],
    "gid_map":[{"inside":0,"outside":100000,"count":1000},{"inside":1000,"outside":0,"count":1},
               {"inside":2000,"outside":300000,"count":10}],
    "setgroups":false,"rootless_euid":false,"oom_score_adj":null,"uidmap_tool":null,
    "gidmap_tool":null,"time_offsets":[],"mount_sources":null})");
  auto r = sh(bin + " run --plan " + plan_path + " -- cat /proc/self/uid_map");
  CHECK(r.status == 0);
  CHECK(normalize_map(r.out) == three_ranges(0).format());
  CHECK(sh(bin + " run --plan " + plan_path + " sh -c 'exit 4'").status == 4);
  CHECK(sh(bin + " run --plan " + plan_path + " /nonexistent 2>/dev/null").status == 127);
  CHECK(sh(bin + " run --plan " + plan_path + " /etc/passwd 2>/dev/null").status == 126);
  auto bad = write_plan("bad", R"({"create":["user"],"uid_map":[{"inside":0,"outside":0}]})");
  auto e = sh(bin + " run --plan " + bad + " true 2>&1");
  CHECK(e.status == 125);
  CHECK(e.out ==
        "nsentry: json on " + bad + ": $.uid_map[0]: missing key \"count\": invalid plan\n");
  auto missing = sh(bin + " run --plan /nonexistent.json true 2>&1");
  CHECK(missing.status == 125);
  CHECK(missing.out == "nsentry: open on /nonexistent.json: No such file or directory\n");
  // --trace: a table on stderr; --trace=FILE: JSON lines, the exec among them.
  auto table = sh(bin + " run --trace --plan " + plan_path + " -- true 2>&1");
  CHECK(table.status == 0);
  CHECK(table.out.find("unshare(user)") != std::string::npos);
  CHECK(table.out.find("id_map") != std::string::npos);
  std::string trace_file = "/tmp/nsentry-trace-" + std::to_string(::getpid()) + ".json";
  CHECK(sh(bin + " run --trace=" + trace_file + " --plan " + plan_path + " -- true").status == 0);
  CHECK(slurp(trace_file).find("{\"step\":\"exec\",") != std::string::npos);
  ::unlink(trace_file.c_str());
  ::unlink(plan_path.c_str());
  ::unlink(bad.c_str());
}

TEST_CASE("nsentry run --plan: mount sources on 3, 4, ..., named in NSENTRY_MOUNT_FDS") {
  std::string bin = nsentry_bin();
  temp_dir d;  // 0700, root's: not reachable by path from inside
  const std::string file = d.path + "/f";
  REQUIRE(::close(::open(file.c_str(), O_CREAT | O_WRONLY, 0600)) == 0);
  auto dev_ino = [](const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  };
  const std::string maps = R"("uid_map":[{"inside":0,"outside":100000,"count":65536}],
    "gid_map":[{"inside":0,"outside":100000,"count":65536}])";
  auto plan_path =
      write_plan("mounts", R"({"create":["user","mnt"],)" + maps + R"(,"mount_sources":[")" +
                               d.path + R"(","",")" + file + R"("]})");
  // An inherited NSENTRY_MOUNT_FDS is replaced.
  auto r = sh("NSENTRY_MOUNT_FDS=stale " + bin + " run --plan " + plan_path +
              " -- sh -c 'echo $NSENTRY_MOUNT_FDS; stat -L -c %d:%i /proc/self/fd/3 "
              "/proc/self/fd/4; [ -e /proc/self/fd/5 ] || echo 5 closed'");
  CHECK(r.status == 0);
  CHECK(r.out == "[3,-1,4]\n" + dev_ino(d.path) + "\n" + dev_ino(file) + "\n5 closed\n");
  // Without mount sources the variable is not nsentry's: left as it was.
  auto none = write_plan("no-mounts", R"({"create":["user","mnt"],)" + maps + "}");
  auto n = sh("NSENTRY_MOUNT_FDS=theirs " + bin + " run --plan " + none +
              " -- sh -c 'echo $NSENTRY_MOUNT_FDS'");
  CHECK(n.status == 0);
  CHECK(n.out == "theirs\n");
  auto missing = write_plan(
      "mounts-missing", R"({"create":["user","mnt"],)" + maps + R"(,"mount_sources":["/nope"]})");
  auto e = sh(bin + " run --plan " + missing + " -- true 2>&1");
  CHECK(e.status == 125);
  CHECK(e.out == "nsentry: mount_sources: open on /nope: No such file or directory\n");
  for (const auto& f : {plan_path, none, missing}) ::unlink(f.c_str());
}

TEST_CASE("nsentry run --bootstrap: a runc capture carried out, a malformed one refused") {
  std::string bin = nsentry_bin();
  const std::string captures = "external/shared/testdata/runc-1.1.5/";
  // b_userns: new user, mnt, uts, ipc, pid, net; maps 0 100000 65536; SETGROUP.
  auto r =
      sh(bin + " run --runc 1.1 --bootstrap " + captures +
         "b_userns.bin -- sh -c 'cat /proc/self/uid_map; echo $$; readlink /proc/self/ns/net'");
  CHECK(r.status == 0);
  auto lines = r.out;
  CHECK(normalize_map(lines.substr(0, lines.find('\n') + 1)) == "0 100000 65536\n");
  CHECK(lines.find("\n1\n") != std::string::npos);  // pid 1 of the new pid namespace
  auto own_net = sh("readlink /proc/self/ns/net").out;
  CHECK(lines.substr(lines.rfind("net:")) != own_net);

  // The same message cut short: refused before anything runs, the offset named.
  auto whole = read_file(captures + "b_userns.bin");
  REQUIRE_OK(whole);
  std::string cut = "/tmp/nsentry-cut-" + std::to_string(::getpid()) + ".bin";
  REQUIRE(::close(::open(cut.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600)) == 0);
  REQUIRE(write_file(cut, std::string_view(whole.value()).substr(0, 30)).has_value());
  auto e = sh(bin + " run --runc 1.1 --bootstrap " + cut + " -- true 2>&1");
  CHECK(e.status == 125);
  CHECK(e.out == "nsentry: bootstrap on " + cut +
                     ": header at offset 0: length 80 runs past the end of the message (30 bytes): "
                     "malformed bootstrap message\n");
  ::unlink(cut.c_str());
}

TEST_CASE("rootless: an unprivileged user maps 3 ranges through newuidmap/newgidmap") {
  test_user u = ensure_user();
  auto str = [](std::uint32_t v) { return std::to_string(v); };
  auto plan_path = write_plan("rootless", R"({"create":["user","mnt","uts","net"],
    "uid_map":[{"inside":0,"outside":)" + str(u.uid) +
                                              R"(,"count":1},
               {"inside":1,"outside":)" + str(u.subuid) +
                                              R"(,"count":1000},
               {"inside":5000,"outside":)" + str(u.subuid + 1000) +
                                              R"(,"count":100}],
    "gid_map":[{"inside":0,"outside":)" + str(u.gid) +
                                              R"(,"count":1},
               {"inside":1,"outside":)" + str(u.subgid) +
                                              R"(,"count":1000},
               {"inside":5000,"outside":)" + str(u.subgid + 1000) +
                                              R"(,"count":100}],
    "setgroups":false,"rootless_euid":true,"uidmap_tool":"/usr/bin/newuidmap",
    "gidmap_tool":"/usr/bin/newgidmap"})");
  std::string out_path = "/tmp/nsentry-rootless-out-" + std::to_string(::getpid());
  ::unlink(out_path.c_str());
  // The runfiles tree may sit under a directory the test user cannot enter: use a copy.
  std::string bin = "/tmp/nsentry-rootless-bin-" + std::to_string(::getpid());
  REQUIRE(sh("cp " + nsentry_bin() + " " + bin + " && chmod 755 " + bin).status == 0);
  int rc = in_child([&] {
    EXPECT_C(::setgroups(0, nullptr) == 0);
    EXPECT_C(::setgid(u.gid) == 0);
    EXPECT_C(::setuid(u.uid) == 0);
    EXPECT_C(::geteuid() == u.uid);
    EXPECT_C(::chdir("/tmp") == 0);
    auto r = sh(bin + " run --plan " + plan_path +
                " -- sh -c 'cat /proc/self/uid_map; echo ---; cat /proc/self/gid_map; echo ---; "
                "cat /proc/self/setgroups; id -u' 2>&1");
    std::fprintf(stderr, "%s", r.out.c_str());
    FILE* f = std::fopen(out_path.c_str(), "w");
    EXPECT_C(f != nullptr);
    std::fputs(r.out.c_str(), f);
    std::fclose(f);
    return r.status;
  });
  CHECK(rc == 0);
  std::string out = slurp(out_path);
  auto a = out.find("---\n"), b = out.find("---\n", a + 4);
  REQUIRE(b != std::string::npos);
  auto expect_u =
      id_map::from_ranges({{0, u.uid, 1}, {1, u.subuid, 1000}, {5000, u.subuid + 1000, 100}});
  auto expect_g =
      id_map::from_ranges({{0, u.gid, 1}, {1, u.subgid, 1000}, {5000, u.subgid + 1000, 100}});
  CHECK(normalize_map(out.substr(0, a)) == expect_u.value().format());
  CHECK(normalize_map(out.substr(a + 4, b - a - 4)) == expect_g.value().format());
  CHECK(out.substr(b + 4) == "deny\n0\n");
  // The direct write was refused and the helper ran; a helper that fails is named.
  int rc2 = in_child([&] {
    EXPECT_C(::setgroups(0, nullptr) == 0);
    EXPECT_C(::setgid(u.gid) == 0);
    EXPECT_C(::setuid(u.uid) == 0);
    EXPECT_C(::chdir("/tmp") == 0);
    auto bad = write_plan("rootless-bad", R"({"create":["user"],
      "uid_map":[{"inside":0,"outside":1,"count":1}],"rootless_euid":true})");
    auto r = sh(bin + " run --plan " + bad + " true 2>&1");
    ::unlink(bad.c_str());
    EXPECT_C(r.status == 125);
    std::fprintf(stderr, "%s", r.out.c_str());
    // newuidmap's own complaint, then nsentry's one line naming the tool and its status.
    EXPECT_C(r.out.find("newuidmap: ") == 0);
    EXPECT_C(r.out.find("\nnsentry: uid_map on newuidmap: exited with status 1: child process "
                        "failed\n") != std::string::npos);
    return 0;
  });
  CHECK(rc2 == 0);
  ::unlink(plan_path.c_str());
  ::unlink(out_path.c_str());
  ::unlink(bin.c_str());
}
