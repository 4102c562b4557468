// Threads (issue 9, "Then prove it" 3): two threads of one process make many scoped entries at
// once, one into a net namespace, the other into a uts namespace, each checking after every
// entry that it is there and after every restore that it is home; run_plan called from four
// threads at once. NSENTRY_THREAD_ITERS sets the entries per thread (default 100000, the issue's
// figure: about 20 s under TSan here).
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "nsentry/executor.hpp"
#include "nsentry/scoped_entry.hpp"
#include "tests/exec_test_util.hpp"

using namespace nsentry;
using namespace testutil;

namespace {

int iterations() {
  const char* e = std::getenv("NSENTRY_THREAD_ITERS");
  int n = e ? std::atoi(e) : 0;
  return n > 0 ? n : 100000;
}

// One thread's loop: `n` entries into kind `k` of `t` (every 50th by pid through
// enter_scoped, the others through an ns_home on held fds). Returns the number of failures.
int visit(const target& t, ns_kind k, int n) {
  const std::string entry(name_of(k));
  const ino_t home_ino = thread_ns_ino(entry.c_str());
  const ino_t there = t.ino(k);
  if (home_ino == there) return 1;
  auto home = ns_home::open(ns_set{k});
  if (!home) return 1;
  std::vector<ns_join> paths{{k, proc_ns_path(t.pid(), k)}};
  auto target_fds = opened_namespaces::open(paths);
  if (!target_fds) return 1;
  int bad = 0;
  for (int i = 0; i < n && bad < 10; ++i) {
    {
      auto g =
          i % 50 == 0 ? enter_scoped(ns_set{k}, t.pid()) : home.value().enter(target_fds.value());
      if (!g) {
        std::fprintf(stderr, "%s entry %d: %s\n", entry.c_str(), i, g.error().message().c_str());
        ++bad;
        continue;
      }
      if (thread_ns_ino(entry.c_str()) != there) {
        std::fprintf(stderr, "%s entry %d: not there\n", entry.c_str(), i);
        ++bad;
      }
      auto r = g.value().restore();
      if (!r) {
        std::fprintf(stderr, "%s restore %d: %s\n", entry.c_str(), i, r.error().message().c_str());
        std::abort();
      }
    }
    if (thread_ns_ino(entry.c_str()) != home_ino) {
      std::fprintf(stderr, "%s entry %d: not home\n", entry.c_str(), i);
      ++bad;
    }
  }
  return bad;
}

}  // namespace

TEST_CASE(
    "2 threads x many scoped entries into different namespaces, each always where it should be") {
  target t({"--net", "--uts"});
  const int n = iterations();
  MESSAGE("scoped entries per thread: ", n);
  int rc = in_child([&] {
    const ino_t net = self_ns_ino("net"), uts = self_ns_ino("uts");
    int fds = count_fds();
    std::atomic<int> bad_net{0}, bad_uts{0};
    std::thread a([&] { bad_net = visit(t, ns_kind::net, n); });
    std::thread b([&] { bad_uts = visit(t, ns_kind::uts, n); });
    a.join();
    b.join();
    EXPECT_C(bad_net == 0);
    EXPECT_C(bad_uts == 0);
    EXPECT_C(self_ns_ino("net") == net);  // the main thread never moved
    EXPECT_C(self_ns_ino("uts") == uts);
    EXPECT_C(count_fds() == fds);
    return 0;
  });
  CHECK(rc == 0);
}

TEST_CASE("run_plan from 4 threads at once: every one succeeds with its command's status") {
  target t({"--net"});
  int kids = count_children();
  int fds = count_fds();
  constexpr int threads = 4, rounds = 5;
  std::atomic<int> wrong{0};
  std::vector<std::string> errors(threads);
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back([&, i] {
      for (int r = 0; r < rounds; ++r) {
        int code = 10 * i + r;
        plan p;
        switch (i) {
          case 0:
            p.create = ns_set::of<uts_ns>();
            break;
          case 1:
            p.create = ns_set::of<pid_ns, uts_ns>();
            break;  // a mirror
          case 2:
            p.join = {{ns_kind::net, proc_ns_path(t.pid(), ns_kind::net)}};
            break;
          default: {
            p.create = ns_set{ns_kind::user, ns_kind::uts};
            auto m = id_map::from_ranges({{0, 100000, 1000}, {1000, 0, 1}, {2000, 300000, 10}});
            if (!m) {
              ++wrong;
              return;
            }
            p.uid_map = m.value();
            p.gid_map = m.value();
          }
        }
        auto cmd = exec_spec::make({"/bin/sh", "-c", "exit " + std::to_string(code)});
        if (!cmd) {
          ++wrong;
          return;
        }
        auto c = run_plan(p, cmd.value());
        if (!c) {
          errors[i] = c.error().message();
          ++wrong;
          continue;
        }
        auto s = c.value().wait();
        if (!s) {
          errors[i] = s.error().message();
          ++wrong;
          continue;
        }
        if (s.value().shell_status() != code) {
          errors[i] =
              "status " + std::to_string(s.value().shell_status()) + " for " + std::to_string(code);
          ++wrong;
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  for (int i = 0; i < threads; ++i) CHECK_MESSAGE(errors[i].empty(), "thread ", i, ": ", errors[i]);
  CHECK(wrong == 0);
  CHECK(count_children() == kids);
  CHECK(count_fds() == fds);
}
