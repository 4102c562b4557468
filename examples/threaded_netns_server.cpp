// threaded_netns_server: worker threads open listening sockets inside a container's network
// namespace while the rest of the process stays in the host's.
//
//   threaded_netns_server NETNS_FILE [THREADS] [FIRST_PORT]
//   e.g. threaded_netns_server /run/netns/blue 3 7000     (or /proc/<pid>/ns/net)
//
// A socket belongs to the network namespace it was created in, for life: each worker visits
// the container's namespace only for socket()+bind()+listen() (a scoped entry), comes home,
// and then serves one connection on 127.0.0.1:<port> — of the container — replying
// "hello from worker N". Each worker keeps an ns_home (its own net namespace, opened once), so
// a visit costs exactly one setns in and one out on fds held open; the target's file is opened
// once by main and shared (the fds are only read).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "nsentry/nsentry.hpp"

using namespace nsentry;

namespace {

// socket()+bind()+listen() on 127.0.0.1:port in whatever network namespace the thread is in.
result<unique_fd> listen_on(int port) {
  unique_fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return posix_error(step::open, "socket");
  int one = 1;
  ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == -1 ||
      ::listen(s.get(), 8) == -1)
    return posix_error(step::open, "127.0.0.1:" + std::to_string(port));
  return s;
}

result<void> worker(int id, int port, const opened_namespaces& container) {
  // Once per thread: this thread's own namespaces, the way home.
  NSENTRY_TRY(auto home, ns_home::open(ns_set::of<net_ns>()));
  unique_fd sock;
  {
    NSENTRY_TRY(auto visit, home.enter(container));  // this thread only: in the container
    NSENTRY_TRY(sock, listen_on(port));
  }  // back home here (or abort: a thread left in a foreign namespace is worse than a crash)
  std::printf("worker %d: listening on 127.0.0.1:%d in the container's netns\n", id, port);
  std::fflush(stdout);

  unique_fd conn(::accept4(sock.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn) return posix_error(step::read, "accept");
  std::string reply = "hello from worker " + std::to_string(id) + "\n";
  if (::write(conn.get(), reply.data(), reply.size()) < 0) return posix_error(step::write, "reply");
  return success();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s NETNS_FILE [THREADS] [FIRST_PORT]\n", argv[0]);
    return 2;
  }
  const int threads = argc > 2 ? std::atoi(argv[2]) : 3;
  const int first_port = argc > 3 ? std::atoi(argv[3]) : 7000;

  const ns_join target[] = {{ns_kind::net, argv[1]}};
  auto container = opened_namespaces::open(target);  // opened once, before any thread starts
  if (!container) {
    std::fprintf(stderr, "threaded_netns_server: %s\n", container.error().message().c_str());
    return 1;
  }

  std::vector<std::thread> pool;
  std::vector<int> failed(static_cast<std::size_t>(threads), 0);
  for (int i = 0; i < threads; ++i)
    pool.emplace_back([&, i] {
      if (auto r = worker(i, first_port + i, container.value()); !r) {
        std::fprintf(stderr, "worker %d: %s\n", i, r.error().message().c_str());
        failed[static_cast<std::size_t>(i)] = 1;
      }
    });
  for (auto& t : pool) t.join();
  for (int f : failed)
    if (f) return 1;
  std::printf("all %d workers served one connection\n", threads);
  return 0;
}
