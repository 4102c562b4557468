// Replays the fuzz seed corpus and systematic mutations of it through the codec property
// (fuzz/bootstrap_check.hpp), on every Bazel test run: every truncation, every truncation with
// the header's length patched to match, every single-bit flip and every byte forced to 0x00 and
// 0xFF, of each runc capture and of hand-built messages covering what the captures lack.
#include <doctest/doctest.h>

#include <cstring>

#include "fuzz/bootstrap_check.hpp"
#include "tests/captures.hpp"

using namespace nsentry;
using bytes = std::vector<std::byte>;

namespace {

std::size_t parsed = 0, refused = 0;

void check(const bytes& b) {
  auto broken = fuzz::check_bootstrap_input(b);
  if (!broken.empty()) {
    std::string hex;
    for (auto x : b) {
      char h[3];
      std::snprintf(h, sizeof h, "%02x", static_cast<unsigned>(x));
      hex += h;
    }
    FAIL(broken << " on input " << hex);
  }
  (bootstrap::parse(b) ? parsed : refused)++;
}

void set_len(bytes& b) {
  if (b.size() < 4) return;
  auto l = static_cast<std::uint32_t>(b.size());
  std::memcpy(b.data(), &l, 4);
}

// Seeds beyond the captures: 1.2 time offsets, 1.1 mount sources, every attribute at once.
std::vector<bytes> extra_seeds() {
  std::vector<bytes> out;
  plan p;
  p.create = ns_set{ns_kind::user, ns_kind::mnt, ns_kind::time, ns_kind::pid};
  p.join = {{ns_kind::net, "/run/netns/x"}, {ns_kind::ipc, "/proc/1/ns/ipc"}};
  p.uid_map = id_map::parse("0 100000 1000\n1000 1000 1\n").value();
  p.gid_map = id_map::parse("0 100000 65536\n").value();
  p.uidmap_tool = "/usr/bin/newuidmap";
  p.gidmap_tool = "/usr/bin/newgidmap";
  p.setgroups = true;
  p.oom_score_adj = -999;
  p.rootless_euid = true;
  p.time_offsets = {{time_clock::monotonic, -5, 7}, {time_clock::boottime, 172800, 0}};
  out.push_back(bootstrap::encode(p).value());
  p.time_offsets.clear();
  p.create.erase(ns_kind::time);
  p.mount_sources = std::vector<std::string>{"/a", "", "/var/lib/x"};
  out.push_back(bootstrap::encode(p, runc_protocol::v1_1).value());
  return out;
}

}  // namespace

TEST_CASE("seed corpus and its mutations keep the codec property") {
  std::vector<bytes> seeds;
  for (auto& c : captures::all()) seeds.push_back(c.bytes);
  for (auto& s : extra_seeds()) seeds.push_back(s);
  for (const auto& seed : seeds) {
    check(seed);
    for (std::size_t n = 0; n < seed.size(); ++n) {
      bytes t(seed.begin(), seed.begin() + static_cast<std::ptrdiff_t>(n));
      check(t);
      set_len(t);
      check(t);
    }
    for (std::size_t i = 0; i < seed.size(); ++i) {
      bytes m = seed;
      for (int bit = 0; bit < 8; ++bit) {
        m[i] = seed[i] ^ std::byte(1u << bit);
        check(m);
      }
      m[i] = std::byte{0};
      check(m);
      m[i] = std::byte{0xff};
      check(m);
    }
  }
  MESSAGE("inputs parsed: " << parsed << ", refused: " << refused);
  // Mutations must exercise both sides of the parser, not just the header check.
  CHECK(parsed > 1000);
  CHECK(refused > 1000);
}
