// custom_sequence: an entry sequence composed by hand from the pieces run_plan uses — an
// entry_program (what to join and create), spawn_entry (the child, and the channel it asks
// questions on), a handler (the parent's answer to "write my id maps") and a final step that
// is a function instead of an exec.
//
//   custom_sequence NETNS_FILE       e.g. /run/netns/blue or /proc/<pid>/ns/net
//
// The child joins NETNS_FILE, creates a user namespace (asking us for its maps: our handler
// writes "0 100000 65536"), becomes root there, creates a uts namespace, and then runs final():
// it sets the hostname and sends back the inodes of the namespaces it ended up in. Child-side
// code must be noexcept and allocation-free (spawn_entry refuses anything else at compile
// time), so final() uses only system calls.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

#include "nsentry/nsentry.hpp"

using namespace nsentry;

namespace {

struct report {
  std::uint64_t net = 0, uts = 0, user = 0;
  char hostname[65] = {};
};

std::uint64_t inode_of(const char* path) noexcept {
  struct stat st {};
  return ::stat(path, &st) == 0 ? st.st_ino : 0;
}

result<report> run(const char* netns) {
  const ns_join paths[] = {{ns_kind::net, netns}};
  NSENTRY_TRY(auto files, opened_namespaces::open(paths));  // opened here, joined in the child
  NSENTRY_TRY(auto out, pipe_pair::make());
  NSENTRY_TRY(auto uid_map, id_map::parse("0 100000 65536\n", step::uid_map));
  NSENTRY_TRY(auto gid_map, id_map::parse("0 100000 65536\n", step::gid_map));

  child_side::entry_program prog;
  prog.join_files = files.fds();
  prog.create = ns_set::of<user_ns, uts_ns>();
  prog.become_root_uid = prog.become_root_gid = true;  // both maps map 0
  prog.final_step = step::none;                        // no exec to trace

  // The parent's side of the conversation: the child asks once, after unshare(CLONE_NEWUSER).
  const handler handlers[] = {
      {record_type::id_maps, [&](const record&, pid_t pid) -> result<reply> {
         std::printf("handler: writing id maps of pid %d\n", static_cast<int>(pid));
         NSENTRY_TRY(write_id_maps(pid, id_map_request{uid_map, gid_map, false, {}, {}}));
         return reply::ack;
       }}};

  const int wfd = out.write_end.get();
  auto final = [wfd]() noexcept -> failure {
    if (::sethostname("custom", 6) == -1) return failure::at(step::write, errno);
    report r;
    r.net = inode_of("/proc/self/ns/net");
    r.uts = inode_of("/proc/self/ns/uts");
    r.user = inode_of("/proc/self/ns/user");
    ::gethostname(r.hostname, sizeof r.hostname - 1);
    if (::write(wfd, &r, sizeof r) != static_cast<ssize_t>(sizeof r))
      return failure::at(step::write, errno);
    return {};  // the child exits 0
  };
  NSENTRY_TRY(auto c, spawn_entry(prog, final, handlers));
  out.write_end.reset();

  NSENTRY_TRY(auto bytes, read_all(out.read_end.get(), sizeof(report) + 1, "report pipe"));
  NSENTRY_TRY(auto status, c.wait());
  if (!status.success() || bytes.size() != sizeof(report))
    return nsentry_error(errc::child_failed, step::spawn, "final step reported nothing");
  report r;
  std::memcpy(&r, bytes.data(), sizeof r);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s NETNS_FILE\n", argv[0]);
    return 2;
  }
  auto r = run(argv[1]);
  if (!r) {
    std::fprintf(stderr, "custom_sequence: %s\n", r.error().message().c_str());
    return 1;
  }
  std::printf("net=%llu uts=%llu user=%llu hostname=%s\n",
              static_cast<unsigned long long>(r.value().net),
              static_cast<unsigned long long>(r.value().uts),
              static_cast<unsigned long long>(r.value().user), r.value().hostname);
  std::printf("host: net=%llu uts=%llu user=%llu\n",
              static_cast<unsigned long long>(inode_of("/proc/self/ns/net")),
              static_cast<unsigned long long>(inode_of("/proc/self/ns/uts")),
              static_cast<unsigned long long>(inode_of("/proc/self/ns/user")));
  return 0;
}
