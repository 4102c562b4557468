// The sealed self re-exec: the copy, its seals, its fallbacks, and a real re-exec.
#include <dirent.h>
#include <doctest/doctest.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <sys/wait.h>

#include <map>
#include <string>

#include "nsentry/runc/sealed_exe.hpp"
#include "tests/testing.hpp"

using namespace nsentry;
using namespace nsentry::runc;

namespace {

using testing::count_fds;

std::string contents(int fd) {
  std::string out;
  char buf[65536];
  off_t off = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, off);
    REQUIRE(n >= 0);
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    off += n;
  }
  return out;
}

std::string self_bytes() {
  auto fd = open_file("/proc/self/exe", O_RDONLY);
  REQUIRE(fd.has_value());
  return contents(fd.value().get());
}

// Runs the helper, returns its key=value lines and exit status.
std::map<std::string, std::string> run_helper(int& status) {
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(p[1], 1);
    ::unsetenv("SEALED_HELPER_EXECS");
    char path[] = "tests/runc_sealed_helper";
    char* argv[] = {path, nullptr};
    ::execve(path, argv, environ);
    ::_exit(127);
  }
  ::close(p[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<std::size_t>(n));
  ::close(p[0]);
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  std::map<std::string, std::string> kv;
  std::size_t at = 0;
  while (at < out.size()) {
    auto nl = out.find('\n', at);
    std::string line = out.substr(at, nl - at);
    auto eq = line.find('=');
    if (eq != std::string::npos) kv[line.substr(0, eq)] = line.substr(eq + 1);
    at = nl == std::string::npos ? out.size() : nl + 1;
  }
  return kv;
}

int memfd_calls = 0;
unsigned last_memfd_flags = 0;

}  // namespace

TEST_CASE("the sealed copy holds our exact bytes and refuses every change") {
  int fds_before = count_fds();
  {
    auto mem = sealed_copy_of_self();
    REQUIRE_MESSAGE(mem.has_value(), mem.error().message());
    int fd = mem.value().get();
    CHECK(::fcntl(fd, F_GET_SEALS) == exe_seals);
    CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    CHECK(contents(fd) == self_bytes());

    errno = 0;
    CHECK(::pwrite(fd, "x", 1, 0) == -1);
    CHECK(errno == EPERM);
    CHECK(::ftruncate(fd, 1) == -1);
    CHECK(errno == EPERM);
    struct stat st {};
    REQUIRE(::fstat(fd, &st) == 0);
    CHECK(::ftruncate(fd, st.st_size + 4096) == -1);
    CHECK(errno == EPERM);
    CHECK(::fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) == -1);  // F_SEAL_SEAL
    CHECK(errno == EPERM);
    CHECK(::mmap(nullptr, 4096, PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED);
    CHECK(errno == EPERM);
    auto sealed = has_exe_seals(fd);
    REQUIRE(sealed.has_value());
    CHECK(sealed.value());
  }
  CHECK(count_fds() == fds_before);
}

TEST_CASE("this test binary is not running sealed; a plain file has no seals") {
  auto r = running_sealed();
  REQUIRE(r.has_value());
  CHECK_FALSE(r.value());
  auto fd = open_file("/proc/self/exe", O_RDONLY);
  REQUIRE(fd.has_value());
  auto s = has_exe_seals(fd.value().get());
  REQUIRE(s.has_value());
  CHECK_FALSE(s.value());
  auto bad = has_exe_seals(-1);
  REQUIRE(bad.has_error());
  CHECK(bad.error() == std::errc::bad_file_descriptor);
}

TEST_CASE("MFD_EXEC refused with EINVAL (kernel < 6.3): retried without it") {
  memfd_calls = 0;
  sys::scoped_override o{&sys::table::memfd_create, [](const char* n, unsigned f) {
                           ++memfd_calls;
                           last_memfd_flags = f;
                           if (f & MFD_EXEC) {
                             errno = EINVAL;
                             return -1;
                           }
                           return sys::real_calls.memfd_create(n, f);
                         }};
  auto mem = sealed_copy_of_self();
  REQUIRE_MESSAGE(mem.has_value(), mem.error().message());
  CHECK(memfd_calls == 2);
  CHECK(last_memfd_flags == (MFD_CLOEXEC | MFD_ALLOW_SEALING));
  CHECK(::fcntl(mem.value().get(), F_GET_SEALS) == exe_seals);
}

TEST_CASE("sendfile refused: the read/write fallback makes the same copy") {
  sys::scoped_override o{&sys::table::sendfile, [](int, int, off_t*, size_t) -> ssize_t {
                           errno = EINVAL;
                           return -1;
                         }};
  auto mem = sealed_copy_of_self();
  REQUIRE_MESSAGE(mem.has_value(), mem.error().message());
  CHECK(contents(mem.value().get()) == self_bytes());
  CHECK(::fcntl(mem.value().get(), F_GET_SEALS) == exe_seals);
}

TEST_CASE("failures are named and leak no descriptor") {
  int fds_before = count_fds();
  SUBCASE("memfd_create") {
    sys::scoped_override o{&sys::table::memfd_create, [](const char*, unsigned) {
                             errno = EACCES;  // vm.memfd_noexec=2
                             return -1;
                           }};
    auto r = sealed_copy_of_self();
    REQUIRE(r.has_error());
    CHECK(r.error().message() == "memfd_create: Permission denied");
  }
  SUBCASE("open /proc/self/exe") {
    sys::scoped_override o{&sys::table::openat, [](int, const char*, int, mode_t) {
                             errno = ENOENT;
                             return -1;
                           }};
    auto r = reexec_sealed(nullptr, nullptr);
    REQUIRE(r.has_error());
    CHECK(r.error().message() == "open on /proc/self/exe: No such file or directory");
  }
  SUBCASE("sendfile midway") {
    sys::scoped_override o{&sys::table::sendfile,
                           [](int out, int in, off_t* off, size_t n) -> ssize_t {
                             static bool first = true;
                             if (std::exchange(first, false))
                               return sys::real_calls.sendfile(out, in, off, n < 4096 ? n : 4096);
                             errno = EIO;
                             return -1;
                           }};
    auto r = sealed_copy_of_self();
    REQUIRE(r.has_error());
    CHECK(r.error().message() == "sendfile on /proc/self/exe: Input/output error");
  }
  SUBCASE("short copy") {
    sys::scoped_override o{&sys::table::sendfile,
                           [](int, int, off_t*, size_t) -> ssize_t { return 0; }};
    auto r = sealed_copy_of_self();
    REQUIRE(r.has_error());
    CHECK(r.error().message().find("copied 0 of ") != std::string::npos);
  }
  SUBCASE("sealing") {
    sys::scoped_override o{&sys::table::add_seals, [](int, int) {
                             errno = EPERM;
                             return -1;
                           }};
    auto r = sealed_copy_of_self();
    REQUIRE(r.has_error());
    CHECK(r.error().message() == "fcntl(F_ADD_SEALS): Operation not permitted");
  }
  SUBCASE("execveat") {
    sys::scoped_override o{&sys::table::execveat,
                           [](int, const char*, char* const*, char* const*, int) {
                             errno = ENOEXEC;
                             return -1;
                           }};
    auto r = reexec_sealed(nullptr, nullptr);
    REQUIRE(r.has_error());
    CHECK(r.error() == std::errc::executable_format_error);
    CHECK(r.error().step == step::execveat);
  }
  CHECK(count_fds() == fds_before);
}

TEST_CASE("a real re-exec: once, sealed, not writable, no descriptor left behind") {
  int status = 0;
  auto kv = run_helper(status);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CAPTURE(kv["error"]);
  CAPTURE(kv["exe"]);
  CHECK(kv["execs"] == "1");
  CHECK(kv.count("loop") == 0);
  CHECK(std::stoi(kv["seals"]) == exe_seals);
  CHECK(kv["exe"].rfind("/memfd:nsentry-runc-init", 0) == 0);
  CHECK(kv["memfd_fds"] == "0");
  // The executable cannot be changed through /proc/self/exe: opening it for writing is refused
  // (ETXTBSY: it is being executed) and, were it ever allowed, writing is (EPERM: sealed).
  int wr = std::stoi(kv["open_wronly"]);
  int rw = std::stoi(kv["open_rdwr"]);
  CAPTURE(wr);
  CAPTURE(rw);
  CHECK((wr == ETXTBSY || wr == EPERM));
  CHECK((rw == ETXTBSY || rw == EPERM));
  CHECK(kv["write"] == "none");
}

TEST_CASE("readonly_bind_of_self: a read-only view of our executable, no mount or file left") {
  std::string dir = "/tmp/nsentry-bind-test-XXXXXX";
  REQUIRE(::mkdtemp(dir.data()) != nullptr);
  std::string env_statedir = "_LIBCONTAINER_STATEDIR=" + dir;
  char* envp[] = {env_statedir.data(), nullptr};
  auto fd = readonly_bind_of_self(envp);
  if (!fd) {
    // Mounting needs CAP_SYS_ADMIN over our mount namespace: without it the caller uses the
    // memfd. Any other failure is a bug.
    CHECK(fd.error().message().find("mount(MS_BIND)") != std::string::npos);
    CHECK(fd.error().message().find("Operation not permitted") != std::string::npos);
  } else {
    struct statfs fs {};
    REQUIRE(::fstatfs(fd.value().get(), &fs) == 0);
    CHECK((fs.f_flags & ST_RDONLY) != 0);
    struct stat a {
    }, b{};
    REQUIRE(::fstat(fd.value().get(), &a) == 0);
    REQUIRE(::stat("/proc/self/exe", &b) == 0);
    CHECK(a.st_ino == b.st_ino);  // the same file, through a read-only mount
    std::string via = "/proc/self/fd/" + std::to_string(fd.value().get());
    CHECK(::open(via.c_str(), O_WRONLY | O_CLOEXEC) == -1);
    CHECK((errno == EROFS || errno == ETXTBSY));  // ETXTBSY: it is running (checked first)
    auto mi = read_file("/proc/self/mountinfo");
    REQUIRE(mi.has_value());
    CHECK(mi.value().find(dir) == std::string::npos);  // detached already
  }
  CHECK(::rmdir(dir.c_str()) == 0);  // empty: the file was unlinked
}

TEST_CASE("detached_readonly_clone_of_self: a read-only view of our executable, never mounted") {
  auto before = read_file("/proc/self/mountinfo");
  REQUIRE(before.has_value());
  auto fd = detached_readonly_clone_of_self();
  if (!fd) {
    // Cloning a mount needs CAP_SYS_ADMIN over our mount namespace: without it the caller uses
    // the memfd. Any other failure is a bug.
    CHECK(fd.error().message().find("open_tree(OPEN_TREE_CLONE)") != std::string::npos);
    CHECK(fd.error().message().find("Operation not permitted") != std::string::npos);
    return;
  }
  struct statfs fs {};
  REQUIRE(::fstatfs(fd.value().get(), &fs) == 0);
  CHECK((fs.f_flags & ST_RDONLY) != 0);
  struct stat a {
  }, b{};
  REQUIRE(::fstat(fd.value().get(), &a) == 0);
  REQUIRE(::stat("/proc/self/exe", &b) == 0);
  CHECK(a.st_ino == b.st_ino);  // the same file, through a read-only mount
  CHECK(a.st_dev == b.st_dev);
  std::string via = "/proc/self/fd/" + std::to_string(fd.value().get());
  CHECK(::open(via.c_str(), O_WRONLY | O_CLOEXEC) == -1);
  CHECK((errno == EROFS || errno == ETXTBSY));  // ETXTBSY: it is running (checked first)
  // Detached: our mount namespace shows no new mount, and none can be made rw through it.
  auto after = read_file("/proc/self/mountinfo");
  REQUIRE(after.has_value());
  CHECK(after.value() == before.value());
  CHECK(::mount("", via.c_str(), "", MS_REMOUNT | MS_BIND, nullptr) == -1);
}
