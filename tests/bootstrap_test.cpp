// The bootstrap codec against runc's real messages, the spec's worked example, every class of
// malformed input (with its exact error text), and the stream reader over a real socketpair.
#include "nsentry/bootstrap.hpp"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "tests/alloc_counter.hpp"
#include "tests/captures.hpp"
#include "tests/testing.hpp"

using namespace nsentry;
using bytes = std::vector<std::byte>;

namespace {

bytes from_hex(std::string_view hex) {
  bytes out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(std::byte(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  return out;
}

// Builds messages by hand, including ones no encoder would write.
struct builder {
  bytes body;
  std::uint16_t type = bootstrap::init_msg;

  builder& raw_attr(std::uint16_t nla_len, std::uint16_t attr_type, std::string_view payload,
                    bool pad = true) {
    auto put = [&](const void* p, std::size_t n) {
      auto b = static_cast<const std::byte*>(p);
      body.insert(body.end(), b, b + n);
    };
    put(&nla_len, 2);
    put(&attr_type, 2);
    put(payload.data(), payload.size());
    if (pad) body.resize((body.size() + 3) & ~std::size_t{3}, std::byte{0});
    return *this;
  }
  builder& u32(std::uint16_t t, std::uint32_t v) {
    return raw_attr(8, t, std::string_view(reinterpret_cast<const char*>(&v), 4));
  }
  builder& str(std::uint16_t t, std::string_view s) {
    std::string with_nul(s);
    with_nul += '\0';
    return raw_attr(static_cast<std::uint16_t>(4 + with_nul.size()), t, with_nul);
  }
  bytes build(std::optional<std::uint32_t> len = {}) const {
    // Sized once and filled by index: inserting into a 16-byte vector trips GCC 12's
    // -Warray-bounds false positive at -O2 (bazel build -c opt).
    bytes out(16 + body.size());
    std::uint32_t l = len.value_or(static_cast<std::uint32_t>(16 + body.size()));
    std::uint16_t flags = 1;
    std::uint32_t seq = 1, pid = 0;
    std::memcpy(out.data(), &l, 4);
    std::memcpy(out.data() + 4, &type, 2);
    std::memcpy(out.data() + 6, &flags, 2);
    std::memcpy(out.data() + 8, &seq, 4);
    std::memcpy(out.data() + 12, &pid, 4);
    std::copy(body.begin(), body.end(), out.begin() + 16);
    return out;
  }
};

constexpr std::uint16_t CLONE = 27281, PATHS = 27282, UIDMAP = 27283, GIDMAP = 27284,
                        SETGROUP = 27285, OOM = 27286, ROOTLESS = 27287, UIDMAPPATH = 27288,
                        A27290 = 27290;

// The detail text of a malformed-message error, or a failure if the message parsed.
std::string parse_error(const bytes& msg, runc_protocol proto = runc_protocol::v1_2,
                        std::size_t limit = bootstrap::default_max_size) {
  auto r = bootstrap::parse(msg, proto, limit);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == errc::malformed_message);
  CHECK(r.error().step == step::bootstrap);
  return r.error().detail;
}

// The spec's §4 worked example (runc >= 1.2 ids), byte for byte.
const bytes spec_example = from_hex(
    "7000000030f20100010000000000000008"
    "00916a8000027e"
    "1400936a30203130303030302036353533360a00"
    "1400946a30203130303030302036353533360a00"
    "0800956a01000000"
    "0800966a31303000"
    "0800976a00000000"
    "1800"
    "9a6a"
    "6d6f6e6f746f6e6963203137323830302030"
    "0a00");

}  // namespace

TEST_CASE("every runc 1.1.5 capture decodes to what its .json says, and re-encodes byte for byte") {
  for (const auto& c : captures::all()) {
    CAPTURE(c.name);
    auto expected = captures::expected_plan(c);
    for (auto proto : {runc_protocol::v1_1, runc_protocol::v1_2}) {
      auto p = bootstrap::parse(c.bytes, proto);
      REQUIRE_MESSAGE(p.has_value(), p.error().message());
      CHECK(p.value() == expected);
      CHECK_FALSE(p.value().mount_sources.has_value());
      auto e = bootstrap::encode(p.value(), proto);
      REQUIRE_OK(e);
      CHECK(e.value() == c.bytes);
    }
  }
}

// Heap allocations made by one parse of `msg`, the result's destruction included.
static long allocations_of_parse(std::span<const std::byte> msg, runc_protocol proto) {
  bool ok = false;
  const long before = allocations.load();
  {
    auto p = bootstrap::parse(msg, proto);
    ok = p.has_value();
  }
  const long n = allocations.load() - before;
  REQUIRE(ok);
  return n;
}

TEST_CASE("parse allocates nothing for any capture, paths and maps included") {
  std::size_t paths = 0, longest = 0;
  for (const auto& c : captures::all()) {
    CAPTURE(c.name);
    CHECK(allocations_of_parse(c.bytes, runc_protocol::v1_1) == 0);
    CHECK(allocations_of_parse(c.bytes, runc_protocol::v1_2) == 0);
    const plan p = bootstrap::parse(c.bytes, runc_protocol::v1_1).value();
    for (const auto& j : p.join) {
      ++paths;
      longest = std::max(longest, j.path.size());
    }
    for (const auto* t : {&p.uidmap_tool, &p.gidmap_tool})
      if (*t) longest = std::max(longest, (*t)->size());
  }
  // Not vacuous: the captures join by path and name tools, with paths longer than std::string
  // keeps in place (each of those cost an allocation when plans held std::strings).
  CHECK(paths >= 10);
  CHECK(longest > std::string().capacity());
  CHECK(allocations_of_parse(spec_example, runc_protocol::v1_2) == 0);  // time offsets too
}

TEST_CASE("what parse allocates for: a path over the inline capacity, a map over 4 ranges") {
  const std::string long_path = "/" + std::string(path_string::inline_capacity, 'n');
  const std::string fits = long_path.substr(1);
  CHECK(allocations_of_parse(builder{}.str(PATHS, "net:" + fits).build(), runc_protocol::v1_2) ==
        0);
  CHECK(allocations_of_parse(builder{}.str(PATHS, "net:" + long_path).build(),
                             runc_protocol::v1_2) == 1);
  CHECK(allocations_of_parse(
            builder{}.str(PATHS, "net:/a," + ("ipc:" + long_path) + ",uts:" + fits).build(),
            runc_protocol::v1_2) == 1);
  auto with_map = [](std::size_t lines) {
    std::string m;
    for (std::size_t i = 0; i < lines; ++i)
      m += std::to_string(i) + " " + std::to_string(1000 + i) + " 1\n";
    return builder{}.u32(CLONE, CLONE_NEWUSER).str(UIDMAP, m).build();
  };
  CHECK(allocations_of_parse(with_map(4), runc_protocol::v1_2) == 0);
  CHECK(allocations_of_parse(with_map(5), runc_protocol::v1_2) == 1);
  CHECK(allocations_of_parse(with_map(16), runc_protocol::v1_2) == 1);
}

TEST_CASE("captures decode to the values their configs name (spot checks against the bytes)") {
  auto all = captures::all();
  auto find = [&](std::string_view n) -> const captures::capture& {
    for (const auto& c : all)
      if (c.name == n) return c;
    FAIL("no capture " << n);
    return all.front();
  };
  auto p = bootstrap::parse(find("e3_rootless_oom").bytes).value();
  CHECK(p.create == ns_set{ns_kind::user, ns_kind::ipc, ns_kind::uts, ns_kind::pid, ns_kind::mnt});
  CHECK(p.uid_map.format() == "0 1001 1\n");
  CHECK(p.uidmap_tool == std::optional<std::string>("/usr/bin/newuidmap"));
  CHECK(p.gidmap_tool == std::optional<std::string>("/usr/bin/newgidmap"));
  CHECK(p.oom_score_adj == 100);
  CHECK(p.rootless_euid);
  CHECK(p.deny_setgroups());

  auto h = bootstrap::parse(find("h3_exec_rootless").bytes).value();
  CHECK(h.create.empty());
  REQUIRE(h.join.size() == 5);
  CHECK(h.join[0] == ns_join{ns_kind::user, "/proc/9106/ns/user"});
  CHECK(h.join[4] == ns_join{ns_kind::mnt, "/proc/9106/ns/mnt"});

  CHECK(bootstrap::parse(find("f2_oom_neg").bytes).value().oom_score_adj == -1000);
  CHECK(bootstrap::parse(find("f3_oom_zero").bytes).value().oom_score_adj == 0);
  auto m = bootstrap::parse(find("c_multimap").bytes).value();
  CHECK(m.uid_map.size() == 3);
  CHECK(m.drop_groups());
}

TEST_CASE("the spec's 1.2 worked example decodes and round-trips") {
  REQUIRE(spec_example.size() == 112);
  auto p = bootstrap::parse(spec_example);
  REQUIRE_MESSAGE(p.has_value(), p.error().message());
  CHECK(p.value().create.clone_flags() == 0x7e020080u);
  CHECK(p.value().uid_map.format() == "0 100000 65536\n");
  CHECK(p.value().gid_map.format() == "0 100000 65536\n");
  CHECK(p.value().setgroups);
  CHECK(p.value().oom_score_adj == 100);
  CHECK_FALSE(p.value().rootless_euid);
  REQUIRE(p.value().time_offsets.size() == 1);
  CHECK(p.value().time_offsets[0] == time_offset{time_clock::monotonic, 172800, 0});
  CHECK_FALSE(p.value().mount_sources.has_value());
  CHECK(bootstrap::encode(p.value()).value() == spec_example);

  // Read as runc 1.1, attribute 27290 is MOUNT_SOURCES, and this text is not a valid list.
  CHECK(parse_error(spec_example, runc_protocol::v1_1) ==
        "attribute 27290 at offset 88: MOUNT_SOURCES does not end in an empty entry");
  // ... and a 1.1 message cannot carry the offsets.
  auto e = bootstrap::encode(p.value(), runc_protocol::v1_1);
  REQUIRE_FALSE(e.has_value());
  CHECK(e.error().message() ==
        "time_offsets: runc 1.1 messages cannot carry time offsets: invalid plan");
}

TEST_CASE("runc 1.1 MOUNT_SOURCES: each source NUL-terminated, then one more NUL") {
  plan p;
  p.create = ns_set{ns_kind::user, ns_kind::mnt};
  p.uid_map = id_map::parse("0 1000 1\n").value();
  p.gid_map = p.uid_map;
  p.mount_sources = std::vector<std::string>{"/src/a", "", "/b"};
  auto e = bootstrap::encode(p, runc_protocol::v1_1);
  REQUIRE_OK(e);
  const std::string payload("/src/a\0\0/b\0\0", 12);
  auto want = builder{}
                  .u32(CLONE, CLONE_NEWUSER | CLONE_NEWNS)
                  .str(UIDMAP, "0 1000 1\n")
                  .str(GIDMAP, "0 1000 1\n")
                  .u32(ROOTLESS, 0)
                  .raw_attr(4 + 12, A27290, payload)
                  .build();
  CHECK(e.value() == want);
  CHECK(bootstrap::parse(want, runc_protocol::v1_1).value() == p);
  // An empty list is still a list (a final NUL alone), distinct from "not sent".
  p.mount_sources = std::vector<std::string>{};
  auto empty = bootstrap::encode(p, runc_protocol::v1_1).value();
  CHECK(bootstrap::parse(empty, runc_protocol::v1_1).value() == p);
  // Under 1.2 the same id is TIMENSOFFSET: a plan with mount sources cannot be written.
  auto refused = bootstrap::encode(p, runc_protocol::v1_2);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error() == errc::invalid_plan);
}

TEST_CASE("a header-only message is valid and means nothing to do") {
  auto p = bootstrap::parse(builder{}.build());
  REQUIRE_OK(p);
  CHECK(p.value() == plan{});
}

TEST_CASE("malformed framing: every class named with its offset") {
  auto good = builder{}.u32(CLONE, CLONE_NEWNET).u32(ROOTLESS, 0).build();

  CHECK(parse_error(bytes(good.begin(), good.begin() + 10)) ==
        "header at offset 0: message is 10 bytes, shorter than the 16-byte header");
  CHECK(parse_error(builder{}.build(12)) ==
        "header at offset 0: length 12 is below the 16-byte header");
  CHECK(parse_error(builder{}.build(0)) ==
        "header at offset 0: length 0 is below the 16-byte header");
  CHECK(parse_error(builder{}.u32(CLONE, 0).build(300)) ==
        "header at offset 0: length 300 runs past the end of the message (24 bytes)");
  CHECK(parse_error(good, runc_protocol::v1_2, 24) ==
        "header at offset 0: length 32 is over the limit of 24 bytes");
  CHECK(parse_error(builder{}.u32(CLONE, 0).build(20)) ==
        "header at offset 0: length 20 but 24 bytes given");

  builder err;
  err.type = 2;
  CHECK(parse_error(err.build()) ==
        "header at offset 4: message type 2 (NLMSG_ERROR) is not INIT_MSG (62000)");
  builder other;
  other.type = 16;
  CHECK(parse_error(other.build()) ==
        "header at offset 4: message type 16 is not INIT_MSG (62000)");

  // nla_len below its own header: runc loops forever on this.
  CHECK(parse_error(builder{}.raw_attr(0, UIDMAP, "").build()) ==
        "attribute 27283 at offset 16: length 0 is below the 4-byte attribute header");
  CHECK(parse_error(builder{}.u32(CLONE, 0).raw_attr(3, UIDMAP, "").build()) ==
        "attribute 27283 at offset 24: length 3 is below the 4-byte attribute header");
  // nla_len past the end: runc reads past its buffer.
  CHECK(parse_error(builder{}.u32(CLONE, 0).raw_attr(300, UIDMAP, "0 0 1\n").build()) ==
        "attribute 27283 at offset 24: length 300 runs past the end of the message (36 bytes)");
  // Padding missing after the last attribute.
  CHECK(parse_error(builder{}.raw_attr(6, OOM, std::string_view("1\0", 2), false).build()) ==
        "attribute 27286 at offset 16: padding runs past the end of the message (22 bytes)");
  // Fewer than 4 bytes left for an attribute header.
  auto stub = builder{}.u32(CLONE, 0).build();
  stub.push_back(std::byte{0});
  stub.push_back(std::byte{0});
  std::uint32_t l = static_cast<std::uint32_t>(stub.size());
  std::memcpy(stub.data(), &l, 4);
  CHECK(parse_error(stub) ==
        "attribute at offset 24: 2 bytes left, too few for an attribute header");
}

TEST_CASE("malformed attributes: sizes, strings, types, duplicates") {
  CHECK(parse_error(builder{}.raw_attr(9, CLONE, std::string_view("\0\0\0\0\0", 5)).build()) ==
        "attribute 27281 at offset 16: payload is 5 bytes, expected a 4-byte integer");
  CHECK(parse_error(builder{}.raw_attr(6, ROOTLESS, std::string_view("\1\0", 2)).build()) ==
        "attribute 27287 at offset 16: payload is 2 bytes, expected a 4-byte integer");
  CHECK(parse_error(builder{}.raw_attr(4, SETGROUP, "").build()) ==
        "attribute 27285 at offset 16: payload is 0 bytes, expected a 4-byte integer");
  CHECK(parse_error(builder{}.raw_attr(7, OOM, "100").build()) ==
        "attribute 27286 at offset 16: string payload lacks its terminating NUL");
  CHECK(parse_error(builder{}.raw_attr(4, PATHS, "").build()) ==
        "attribute 27282 at offset 16: string payload lacks its terminating NUL");
  CHECK(parse_error(builder{}.str(PATHS, std::string_view("net:/a\0b", 8)).build()) ==
        "attribute 27282 at offset 16: string has a NUL inside, at offset 26");
  CHECK(parse_error(builder{}.u32(27280, 0).build()) ==
        "attribute 27280 at offset 16: unknown attribute type");
  CHECK(parse_error(builder{}.u32(27291, 0).build()) ==
        "attribute 27291 at offset 16: unknown attribute type");
  // Masking with NLA_TYPE_MASK (0x3FFF) would turn 27281 | 0x8000 into a known type.
  CHECK(parse_error(builder{}.u32(CLONE | 0x8000, 0).build()) ==
        "attribute 60049 at offset 16: unknown attribute type");
  CHECK(parse_error(builder{}.u32(CLONE, 0).u32(ROOTLESS, 0).u32(CLONE, 0).build()) ==
        "attribute 27281 at offset 32: duplicate attribute (first at offset 16)");
  CHECK(parse_error(builder{}.u32(CLONE, 0).str(OOM, "1").str(OOM, "2").build()) ==
        "attribute 27286 at offset 32: duplicate attribute (first at offset 24)");
}

TEST_CASE("malformed contents: NS_PATHS, clone flags, maps, oom, time offsets") {
  auto paths = [](std::string_view s) { return parse_error(builder{}.str(PATHS, s).build()); };
  CHECK(paths("net/run/netns/x") ==
        "attribute 27282 at offset 16: NS_PATHS element \"net/run/netns/x\" has no ':'");
  CHECK(paths("net:/a,") == "attribute 27282 at offset 16: NS_PATHS element \"\" has no ':'");
  CHECK(paths("network:/a") ==
        "attribute 27282 at offset 16: NS_PATHS element \"network:/a\" names unknown namespace "
        "kind \"network\"");
  CHECK(paths("net:") ==
        "attribute 27282 at offset 16: NS_PATHS element \"net:\" has an empty path");
  CHECK(paths("net:/a,net:/b") == "attribute 27282 at offset 16: NS_PATHS names net twice");
  CHECK(paths("") == "attribute 27282 at offset 16: NS_PATHS element \"\" has no ':'");

  // Elements long and short (a kind and its ':' are read 8 bytes at a time when 8 are there).
  CHECK(paths("net:/x,ipc:") ==
        "attribute 27282 at offset 16: NS_PATHS element \"ipc:\" has an empty path");
  CHECK(paths("cgroup:/proc/1/ns/cgroup,cgroupx:/a") ==
        "attribute 27282 at offset 16: NS_PATHS element \"cgroupx:/a\" names unknown namespace "
        "kind \"cgroupx\"");
  CHECK(paths("ne:/proc/1/ns/net") ==
        "attribute 27282 at offset 16: NS_PATHS element \"ne:/proc/1/ns/net\" names unknown "
        "namespace kind \"ne\"");
  CHECK(paths(":/proc/1/ns/net") ==
        "attribute 27282 at offset 16: NS_PATHS element \":/proc/1/ns/net\" names unknown "
        "namespace kind \"\"");
  CHECK(paths("uts:/a,mnt:/proc/1/ns/mnt,uts:/b") ==
        "attribute 27282 at offset 16: NS_PATHS names uts twice");
  CHECK(paths(std::string_view("net:/a\0b", 8)) ==
        "attribute 27282 at offset 16: string has a NUL inside, at offset 26");
  // A NUL in a map or an OOM_SCORE_ADJ is named as such, before what the field's parser says.
  CHECK(parse_error(builder{}
                        .u32(CLONE, CLONE_NEWUSER)
                        .str(UIDMAP, std::string_view("0 1000\0 1\n", 10))
                        .build()) ==
        "attribute 27283 at offset 24: string has a NUL inside, at offset 34");
  CHECK(parse_error(builder{}.str(OOM, std::string_view("5\0", 2)).build()) ==
        "attribute 27286 at offset 16: string has a NUL inside, at offset 21");
  {
    std::string all;
    std::vector<ns_join> expected;
    for (ns_kind k : all_ns_kinds) {
      const std::string path = k == ns_kind::net ? "/x" : "/proc/1/ns/" + std::string(name_of(k));
      all += (all.empty() ? "" : ",") + std::string(name_of(k)) + ":" + path;
      expected.push_back({k, path});
    }
    auto p = bootstrap::parse(builder{}.str(PATHS, all).build());
    REQUIRE_OK(p);
    CHECK(
        std::equal(p.value().join.begin(), p.value().join.end(), expected.begin(), expected.end()));
  }

  CHECK(parse_error(builder{}.u32(CLONE, CLONE_NEWNET | CLONE_VM).build()) ==
        "attribute 27281 at offset 16: non-namespace bits 0x100");
  CHECK(parse_error(builder{}.u32(CLONE, 0xffffffff).build()) ==
        "attribute 27281 at offset 16: non-namespace bits 0x81fdff7f");

  auto user = [] { return builder{}.u32(CLONE, CLONE_NEWUSER); };
  CHECK(parse_error(user().str(UIDMAP, "0 1000 0\n").build()) ==
        "attribute 27283 at offset 24: uid_map line 1: count is 0");
  CHECK(parse_error(user().str(GIDMAP, "0 1000 10\n5 2000 10\n").build()) ==
        "attribute 27284 at offset 24: gid_map line 2: inside range 5+10 overlaps line 1 (0+10)");
  CHECK(parse_error(user().str(UIDMAP, "0 1000\n").build()) ==
        "attribute 27283 at offset 24: uid_map line 1: expected 3 decimal fields \"inside outside "
        "count\", got \"0 1000\"");
  CHECK(parse_error(user().str(UIDMAP, "").build()) ==
        "attribute 27283 at offset 24: empty uid_map");
  CHECK(parse_error(user().str(UIDMAP, "0 4294967295 2\n").build()) ==
        "attribute 27283 at offset 24: uid_map line 1: outside range 4294967295+2 runs past "
        "4294967294");

  auto oom = [](std::string_view s) { return parse_error(builder{}.str(OOM, s).build()); };
  CHECK(oom("1001") ==
        "attribute 27286 at offset 16: oom_score_adj \"1001\" is outside -1000..1000");
  CHECK(oom("-1001") ==
        "attribute 27286 at offset 16: oom_score_adj \"-1001\" is outside -1000..1000");
  CHECK(oom("99999999999999999999999") ==
        "attribute 27286 at offset 16: oom_score_adj \"99999999999999999999999\" is not a decimal "
        "integer");
  CHECK(oom("abc") ==
        "attribute 27286 at offset 16: oom_score_adj \"abc\" is not a decimal integer");
  CHECK(oom("") == "attribute 27286 at offset 16: oom_score_adj \"\" is not a decimal integer");
  CHECK(oom("+5") == "attribute 27286 at offset 16: oom_score_adj \"+5\" is not a decimal integer");
  CHECK(oom(" 5") == "attribute 27286 at offset 16: oom_score_adj \" 5\" is not a decimal integer");
  CHECK(oom("5\n") ==
        "attribute 27286 at offset 16: oom_score_adj \"5\n\" is not a decimal integer");

  CHECK(parse_error(builder{}.str(UIDMAPPATH, "").build()) ==
        "attribute 27288 at offset 16: empty tool path");

  auto timens = [](std::string_view s) {
    return parse_error(builder{}.u32(CLONE, CLONE_NEWTIME).str(A27290, s).build());
  };
  CHECK(timens("monotonic 1 0") ==
        "attribute 27290 at offset 24: TIMENSOFFSET line 1 \"monotonic 1 0\": does not end in a "
        "newline");
  CHECK(timens("realtime 1 0\n") ==
        "attribute 27290 at offset 24: TIMENSOFFSET line 1 \"realtime 1 0\": unknown clock "
        "(monotonic or boottime)");
  CHECK(timens("boottime 1 1000000000\n") ==
        "attribute 27290 at offset 24: TIMENSOFFSET line 1 \"boottime 1 1000000000\": nanoseconds "
        "are not a decimal in 0..999999999");
  CHECK(timens("boottime x 0\n") ==
        "attribute 27290 at offset 24: TIMENSOFFSET line 1 \"boottime x 0\": seconds are not a "
        "64-bit decimal integer");
  CHECK(timens("boottime 1 0\nboottime 2 0\n") ==
        "attribute 27290 at offset 24: TIMENSOFFSET line 2 \"boottime 2 0\": clock given twice");
  CHECK(timens("boottime 1\n") ==
        "attribute 27290 at offset 24: TIMENSOFFSET line 1 \"boottime 1\": expected \"<clock> "
        "<secs> <nanosecs>\"");
}

TEST_CASE("wire-valid but self-contradictory plans are refused by plan::validate") {
  auto r =
      bootstrap::parse(builder{}.u32(CLONE, CLONE_NEWNET).str(PATHS, "net:/run/netns/x").build());
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == errc::invalid_plan);
  CHECK(r.error().message() == "create: net both created and joined: invalid plan");

  auto maps = bootstrap::parse(builder{}.u32(CLONE, CLONE_NEWNET).str(UIDMAP, "0 0 1\n").build());
  REQUIRE_FALSE(maps.has_value());
  CHECK(maps.error().message() ==
        "uid_map: id maps given without a new user namespace: invalid plan");
}

TEST_CASE("bools: any nonzero 4-byte value is true (runc reads only the first byte)") {
  auto p = bootstrap::parse(builder{}.u32(ROOTLESS, 0x100).u32(SETGROUP, 0).build());
  REQUIRE_OK(p);
  CHECK(p.value().rootless_euid);
  CHECK_FALSE(p.value().setgroups);
}

TEST_CASE("encode refuses what the wire cannot carry") {
  plan p;
  p.join.push_back({ns_kind::net, "/run/netns/a,b"});
  auto r = bootstrap::encode(p);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message() ==
        "join: path /run/netns/a,b contains ',', which NS_PATHS cannot carry: invalid plan");

  plan big;
  for (ns_kind k : {ns_kind::net, ns_kind::ipc, ns_kind::uts})
    big.join.push_back({k, "/" + std::string(30000, 'x')});
  auto b = bootstrap::encode(big);
  REQUIRE_FALSE(b.has_value());
  CHECK(b.error().detail ==
        "attribute 27282 needs 90018 payload bytes, over the 65531 that nla_len can describe");

  plan nul;
  nul.uidmap_tool = std::string("/usr/bin/new\0uidmap", 19);
  CHECK(bootstrap::encode(nul).error().message() ==
        "uidmap_tool: contains a NUL byte: invalid plan");

  // One clock twice: plan::validate refuses it, for the encoder and the executor alike.
  plan twice;
  twice.create = ns_set::of<time_ns>();
  twice.time_offsets = {{time_clock::monotonic, 1, 0}, {time_clock::monotonic, 2, 0}};
  CHECK(bootstrap::encode(twice).error().message() ==
        "time_offsets: monotonic given twice: invalid plan");
  CHECK(twice.validate().error().message() == "time_offsets: monotonic given twice: invalid plan");
}

// --- the stream reader ---------------------------------------------------------------------

namespace {

struct socket_pair {
  unique_fd reader, writer;
  socket_pair() {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    reader = unique_fd(sv[0]);
    writer = unique_fd(sv[1]);
  }
};

const bytes& a2_capture() {
  static const bytes b = captures::read_bytes(captures::dir / "a2_all_ns.bin");
  return b;
}

}  // namespace

TEST_CASE("read: a message written in small pieces by another thread") {
  for (std::size_t piece : {1u, 3u, 7u, 16u, 17u}) {
    CAPTURE(piece);
    socket_pair sp;
    const bytes& msg = a2_capture();
    std::thread writer([&] {
      for (std::size_t off = 0; off < msg.size(); off += piece) {
        std::size_t n = std::min(piece, msg.size() - off);
        REQUIRE(::write(sp.writer.get(), msg.data() + off, n) == static_cast<ssize_t>(n));
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    });
    auto p = bootstrap::read(sp.reader.get(), runc_protocol::v1_1);
    writer.join();
    REQUIRE_MESSAGE(p.has_value(), p.error().message());
    CHECK(p.value() == bootstrap::parse(msg).value());
  }
}

TEST_CASE("read: EINTR and one-byte reads are retried; exactly one message is consumed") {
  socket_pair sp;
  const bytes& msg = a2_capture();
  auto second = builder{}.u32(CLONE, CLONE_NEWNET).u32(ROOTLESS, 1).build();
  REQUIRE(::write(sp.writer.get(), msg.data(), msg.size()) == static_cast<ssize_t>(msg.size()));
  REQUIRE(::write(sp.writer.get(), second.data(), second.size()) ==
          static_cast<ssize_t>(second.size()));

  static std::atomic<int> calls{0}, eintrs{0};
  calls = 0;
  eintrs = 0;
  {
    sys::scoped_override o{&sys::table::read, [](int fd, void* buf, size_t n) -> ssize_t {
                             if (calls++ % 2 == 0) {
                               ++eintrs;
                               errno = EINTR;
                               return -1;
                             }
                             return ::read(fd, buf, n < 1 ? n : 1);
                           }};
    auto p = bootstrap::read(sp.reader.get());
    REQUIRE_MESSAGE(p.has_value(), p.error().message());
    CHECK(p.value() == bootstrap::parse(msg).value());
    CHECK(eintrs.load() == static_cast<int>(msg.size()));  // one EINTR before every byte
  }
  // The second message is still intact in the socket.
  auto q = bootstrap::read(sp.reader.get());
  REQUIRE_OK(q);
  CHECK(q.value().create == ns_set{ns_kind::net});
  CHECK(q.value().rootless_euid);
}

TEST_CASE("read: end of stream, read errors, and the size limit") {
  {
    socket_pair sp;
    REQUIRE(::write(sp.writer.get(), a2_capture().data(), 20) == 20);
    sp.writer.reset();
    auto r = bootstrap::read(sp.reader.get());
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().detail == "header at offset 0: length 80 but the stream ended after 20 bytes");
  }
  {
    socket_pair sp;
    REQUIRE(::write(sp.writer.get(), a2_capture().data(), 5) == 5);
    sp.writer.reset();
    CHECK(bootstrap::read(sp.reader.get()).error().detail ==
          "header at offset 5: end of stream after 5 of 16 header bytes");
  }
  {
    socket_pair sp;
    sp.writer.reset();
    CHECK(bootstrap::read(sp.reader.get()).error().detail ==
          "header at offset 0: end of stream after 0 of 16 header bytes");
  }
  {
    // A hostile length is refused from the header alone: nothing more is read or allocated,
    // and the call does not wait for bytes that will never come.
    socket_pair sp;
    auto huge = builder{}.build(0x7fffffff);
    REQUIRE(::write(sp.writer.get(), huge.data(), huge.size()) == 16);
    auto r = bootstrap::read(sp.reader.get());
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().detail ==
          "header at offset 0: length 2147483647 is over the limit of 1048576 bytes");
    // A caller-chosen limit.
    socket_pair sp2;
    REQUIRE(::write(sp2.writer.get(), a2_capture().data(), 80) == 80);
    CHECK(bootstrap::read(sp2.reader.get(), runc_protocol::v1_2, 64).error().detail ==
          "header at offset 0: length 80 is over the limit of 64 bytes");
  }
  {
    socket_pair sp;
    sys::scoped_override o{&sys::table::read, [](int, void*, size_t) -> ssize_t {
                             errno = ECONNRESET;
                             return -1;
                           }};
    auto r = bootstrap::read(sp.reader.get());
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == std::errc::connection_reset);
    CHECK(r.error().step == step::read);
  }
}
