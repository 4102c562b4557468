// Mount sources through the executor, against the real kernel: the command finds each source on
// its number as an O_PATH descriptor of the same inode (the kernel's fdinfo and stat say so),
// the sources are opened inside the child's mount namespace (created or joined; a path that
// exists only there works), a multi-threaded caller works and keeps its namespace and working
// directory, and failures name the source with no fd or child left behind.
#include "nsentry/mount_sources.hpp"

#include <doctest/doctest.h>
#include <sys/mount.h>

#include <map>
#include <sstream>
#include <thread>

#include "nsentry/executor.hpp"
#include "tests/exec_test_util.hpp"
#include "tests/testing.hpp"

using namespace nsentry;
using namespace testutil;

namespace {

// For each fd number: "N DEV:INO FLAGS" (stat through the descriptor, fdinfo's octal flags) or
// "N closed".
std::string describe_fds(std::initializer_list<int> fds) {
  std::string s = "for n in";
  for (int f : fds) s += " " + std::to_string(f);
  return s +
         "; do if [ -e /proc/self/fd/$n ]; then echo \"$n $(stat -L -c %d:%i /proc/self/fd/$n) "
         "$(sed -n 's/^flags:[[:space:]]*//p' /proc/self/fdinfo/$n)\"; else echo \"$n closed\"; "
         "fi; done";
}

struct seen_fd {
  std::string dev_ino;  // "" when closed
  unsigned long flags = 0;
};

std::map<int, seen_fd> parse_fds(const std::string& out) {
  std::map<int, seen_fd> m;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    std::istringstream l(line);
    int n;
    std::string a, b;
    if (!(l >> n >> a)) continue;  // not an fd line
    l >> b;
    if (a == "closed")
      m[n] = {};
    else
      m[n] = {a, std::stoul(b, nullptr, 8)};
  }
  return m;
}

std::string dev_ino(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

// The command holds the source: O_PATH (010000000), not close-on-exec, the same inode.
void check_source(const std::map<int, seen_fd>& seen, int fd, const std::string& path) {
  CAPTURE(fd);
  CAPTURE(path);
  REQUIRE(seen.count(fd) == 1);
  CHECK(seen.at(fd).dev_ino == dev_ino(path));
  CHECK((seen.at(fd).flags & O_PATH) == static_cast<unsigned long>(O_PATH));
  CHECK((seen.at(fd).flags & O_CLOEXEC) == 0);
}

plan userns_plan() {
  plan p;
  p.create = ns_set{ns_kind::user, ns_kind::mnt};
  p.uid_map = three_ranges(0);
  p.gid_map = three_ranges(0);
  return p;
}

}  // namespace

TEST_CASE("run_plan: mount sources reach the command on their numbers, as O_PATH fds") {
  temp_dir d;  // 0700, root's: the command (host uid 100000) could not reach it by path
  const std::string dir = d.path + "/dir", file = d.path + "/file";
  REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
  REQUIRE(::close(::open(file.c_str(), O_CREAT | O_WRONLY, 0600)) == 0);
  plan p = userns_plan();
  p.mount_sources = std::vector<std::string>{dir, "", file};

  SUBCASE("default numbers 3, 4; the \"\" slot takes none; a multi-threaded caller") {
    // A second thread: the sources are opened from a thread of their own, which alone may
    // setns(CLONE_NEWNS) in a multi-threaded process.
    struct second_thread {
      int hold[2];
      std::thread t;
      second_thread() {
        REQUIRE(::pipe2(hold, O_CLOEXEC) == 0);
        t = std::thread([fd = hold[0]] {
          char c;
          (void)!::read(fd, &c, 1);
        });
      }
      ~second_thread() {
        ::close(hold[1]);
        t.join();
        ::close(hold[0]);
      }
    } other;
    const ino_t own_mnt = self_ns_ino("mnt");
    char cwd[4096];
    REQUIRE(::getcwd(cwd, sizeof cwd) != nullptr);
    int fds = count_fds(), kids = count_children();

    auto r = run_plan_script(p, describe_fds({3, 4, 5}) + "; echo uid $(id -u)");
    CAPTURE(r.out);
    CHECK(r.status == 0);
    auto seen = parse_fds(r.out);
    check_source(seen, 3, dir);
    check_source(seen, 4, file);
    CHECK(seen[5].dev_ino.empty());
    CHECK(r.out.find("uid 0\n") != std::string::npos);

    CHECK(self_ns_ino("mnt") == own_mnt);
    char cwd_after[4096];
    REQUIRE(::getcwd(cwd_after, sizeof cwd_after) != nullptr);
    CHECK(std::string(cwd_after) == cwd);
    CHECK(count_fds() == fds);
    CHECK(count_children() == kids);
  }
  SUBCASE("numbers chosen by the caller (run_options::mount_fds)") {
    run_options opt;
    opt.mount_fds = {9, -1, 7};
    auto r = run_plan_script(p, describe_fds({3, 4, 7, 9}), opt);
    CAPTURE(r.out);
    CHECK(r.status == 0);
    auto seen = parse_fds(r.out);
    check_source(seen, 9, dir);
    check_source(seen, 7, file);
    CHECK(seen[3].dev_ino.empty());
    CHECK(seen[4].dev_ino.empty());
  }
}

TEST_CASE("run_plan: mount sources are opened inside the mount namespace the child joined") {
  // A holder in its own mount namespace, where a tmpfs on /mnt holds a directory the host lacks.
  int ready[2], go[2];
  REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(go, O_CLOEXEC) == 0);
  std::fflush(nullptr);
  pid_t holder = ::fork();
  REQUIRE(holder >= 0);
  if (holder == 0) {
    ::close(go[1]);
    bool ok = ::unshare(CLONE_NEWNS) == 0 &&
              ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
              ::mount("tmpfs", "/mnt", "tmpfs", 0, "mode=0755") == 0 &&
              ::mkdir("/mnt/only-inside", 0700) == 0;
    char c = ok ? 'y' : 'n';
    if (::write(ready[1], &c, 1) != 1) ::_exit(2);
    (void)!::read(go[0], &c, 1);
    ::_exit(0);
  }
  ::close(ready[1]);
  ::close(go[0]);
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  REQUIRE(c == 'y');
  CHECK(::access("/mnt/only-inside", F_OK) == -1);  // not in ours

  plan p;
  p.join = {{ns_kind::mnt, "/proc/" + std::to_string(holder) + "/ns/mnt"}};
  p.mount_sources = std::vector<std::string>{"/mnt/only-inside"};
  auto r = run_plan_script(p, describe_fds({3}));
  CAPTURE(r.out);
  CHECK(r.status == 0);
  check_source(parse_fds(r.out), 3, "/proc/" + std::to_string(holder) + "/root/mnt/only-inside");

  ::close(go[1]);
  ::close(ready[0]);
  int st = 0;
  REQUIRE(::waitpid(holder, &st, 0) == holder);
}

TEST_CASE("spawn_entry: sources are opened inside the mount namespace the child created") {
  // The caller mounts a tmpfs in a private mount namespace of its own; the child's new mount
  // namespace copies it; the caller unmounts its own before the child's request is answered.
  // The source then exists only in the child's namespace, and arrives.
  int rc = in_child([] {
    EXPECT_C(::unshare(CLONE_NEWNS) == 0);
    EXPECT_C(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
    EXPECT_C(::mount("tmpfs", "/mnt", "tmpfs", 0, "mode=0755") == 0);
    EXPECT_C(::mkdir("/mnt/only-copy", 0700) == 0);
    struct stat want {};
    EXPECT_C(::stat("/mnt/only-copy", &want) == 0);

    plan p = userns_plan();
    const std::vector<std::string> sources{"/mnt/only-copy"};
    auto m = pair_mount_sources(sources, {3}, step::mount_sources);
    EXPECT_C(m.has_value());
    child_side::entry_program prog;
    prog.create = p.create;
    prog.become_root_uid = prog.become_root_gid = true;
    prog.mount_fd_targets = m.value().targets;
    auto ch = socket_pair::make();
    EXPECT_C(ch.has_value());
    auto handlers = plan_handlers(p);
    bool unmounted = false;
    handlers.emplace_back(record_type::mount_sources,
                          [&, lib = mount_sources_handler(m.value(), ch.value().parent_end.get())](
                              const record& r, pid_t pid) -> result<reply> {
                            if (::umount2("/mnt", MNT_DETACH) == -1)
                              return posix_error(step::umount, "/mnt");
                            unmounted = ::access("/mnt/only-copy", F_OK) == -1;
                            return lib.fn(r, pid);
                          });
    // The child's final step checks its fd 3: O_PATH, the copy's inode.
    auto check_fd3 = [&want]() noexcept -> failure {
      struct stat got {};
      if (::fstat(3, &got) == -1) return failure::at(step::fstat, errno);
      if (got.st_dev != want.st_dev || got.st_ino != want.st_ino)
        return failure::at(step::verify, ESTALE);
      int fl = ::fcntl(3, F_GETFL);
      if (fl == -1 || !(fl & O_PATH)) return failure::at(step::verify, EBADF);
      return {};
    };
    auto c = spawn_entry(std::move(ch).value(), prog, check_fd3, handlers);
    if (!c) std::fprintf(stderr, "%s\n", c.error().message().c_str());
    EXPECT_C(c.has_value());
    auto st = c.value().wait();
    EXPECT_C(st.has_value() && st.value().shell_status() == 0);
    EXPECT_C(unmounted);
    return 0;
  });
  CHECK(rc == 0);
}

TEST_CASE("run_plan: failures name the source or the number; nothing is left behind") {
  auto truth = exec_spec::make({"/bin/true"});
  REQUIRE_OK(truth);
  int fds = count_fds(), kids = count_children();
  plan p = userns_plan();

  p.mount_sources = std::vector<std::string>{"", "/nope"};
  auto missing = run_plan(p, truth.value());
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message() == "mount_sources: open on /nope: No such file or directory");
  CHECK(count_fds() == fds);
  CHECK(count_children() == kids);

  p.mount_sources = std::vector<std::string>{"/tmp", "", "/etc"};
  auto wrong = [&](std::vector<int> numbers) {
    run_options opt;
    opt.mount_fds = std::move(numbers);
    auto r = run_plan(p, truth.value(), opt);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::invalid_plan);
    CHECK(r.error().step == step::mount_sources);
    return r.error().message();
  };
  CHECK(wrong({3}) == "mount_sources: 1 fds for 3 mounts: invalid plan");
  CHECK(wrong({2, -1, 4}) ==
        "mount_sources: fd 2 for mount source /tmp is a standard stream: invalid plan");
  CHECK(wrong({5, -1, 5}) ==
        "mount_sources: fd 5 for mount source /etc is used twice: invalid plan");
  CHECK(wrong({3, 4, 5}) == "mount_sources: fd 4 for mount 1, which has no source: invalid plan");
  CHECK(wrong({3, -1, -1}) == "mount_sources: no fd for mount source /etc: invalid plan");
  p.mount_sources.reset();
  CHECK(wrong({3}) == "mount_sources: 1 fds for 0 mounts: invalid plan");
  CHECK(count_fds() == fds);
  CHECK(count_children() == kids);
}

TEST_CASE("mount_fd_list and format_mount_fds: runc's list, consecutive from a base") {
  const std::vector<std::string> sources{"/a", "", "/b", ""};
  CHECK(mount_fd_list(sources) == std::vector<int>{3, -1, 4, -1});
  CHECK(mount_fd_list(sources, 10) == std::vector<int>{10, -1, 11, -1});
  CHECK(format_mount_fds(mount_fd_list(sources)) == "[3,-1,4,-1]");
  CHECK(format_mount_fds({}) == "[]");
}
