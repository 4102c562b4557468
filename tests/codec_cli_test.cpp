// `nsentry decode` / `nsentry encode` as a user runs them: the bazel-built tools/nsentry in a
// child process, its exit status, stdout and stderr checked exactly.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "nsentry/bootstrap.hpp"
#include "nsentry/version.hpp"
#include "tests/captures.hpp"
#include "tests/testing.hpp"
#include "tools/plan_json.hpp"

namespace json = boost::json;
using bytes = std::vector<std::byte>;

namespace {

using captures::as_string;
using testing::run_result;
using testing::slurp;

std::string tmp_path(const std::string& name) {
  const char* d = std::getenv("TEST_TMPDIR");
  return std::string(d ? d : "/tmp") + "/" + name;
}

void spit(const std::string& path, std::string_view data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

// Runs tools/nsentry with `args`, stdin from `input`; stdout and stderr through files so
// neither can fill a pipe.
run_result run_cli(std::vector<std::string> args, std::string_view input = {}) {
  const std::string in = tmp_path("stdin"), out = tmp_path("stdout"), err = tmp_path("stderr");
  spit(in, input);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int i = ::open(in.c_str(), O_RDONLY),
        o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600),
        e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (i < 0 || o < 0 || e < 0) ::_exit(99);
    ::dup2(i, 0);
    ::dup2(o, 1);
    ::dup2(e, 2);
    std::vector<char*> argv{const_cast<char*>("tools/nsentry")};
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv("tools/nsentry", argv.data());
    ::_exit(98);
  }
  int st = 0;
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  REQUIRE(WIFEXITED(st));
  return {WEXITSTATUS(st), slurp(out), slurp(err)};
}

// A refusal: exit 2, nothing on stdout, exactly one line on stderr.
void check_refused(const run_result& r, const std::string& line) {
  CHECK(r.status == 2);
  CHECK(r.out.empty());
  CHECK(r.err == "nsentry: " + line + "\n");
}

std::string_view flag_kind(std::string_view f) {
  return nsentry::name_of(captures::kind_of_flag_name(f));
}

// What `nsentry decode` must print for a capture, from its .json's decoded attributes alone.
json::object expected_json(const captures::capture& c) {
  json::object o{
      {"create", json::array{}},       {"join", json::array{}},   {"uid_map", json::array{}},
      {"gid_map", json::array{}},      {"setgroups", false},      {"rootless_euid", false},
      {"oom_score_adj", nullptr},      {"uidmap_tool", nullptr},  {"gidmap_tool", nullptr},
      {"time_offsets", json::array{}}, {"mount_sources", nullptr}};
  auto maps = [](const json::value& d) {
    json::array a;
    for (const auto& m : d.at("mappings").as_array())
      a.push_back(json::object{
          {"inside", m.at("containerID")}, {"outside", m.at("hostID")}, {"count", m.at("size")}});
    return a;
  };
  for (const auto& a : captures::attributes(c)) {
    std::string name(a.at("name").as_string());
    const auto& d = a.at("decoded");
    if (name == "CLONE_FLAGS_ATTR") {
      json::array kinds;
      for (const auto& f : d.at("flags").as_array())
        kinds.push_back(json::string(flag_kind(f.as_string())));
      o["create"] = kinds;
    } else if (name == "NS_PATHS_ATTR") {
      o["join"] = d.at("entries");
    } else if (name == "UIDMAP_ATTR") {
      o["uid_map"] = maps(d);
    } else if (name == "GIDMAP_ATTR") {
      o["gid_map"] = maps(d);
    } else if (name == "SETGROUP_ATTR") {
      o["setgroups"] = d.at("value");
    } else if (name == "ROOTLESS_EUID_ATTR") {
      o["rootless_euid"] = d.at("value");
    } else if (name == "OOM_SCORE_ADJ_ATTR") {
      o["oom_score_adj"] = d.at("int");
    } else if (name == "UIDMAPPATH_ATTR") {
      o["uidmap_tool"] = d.at("value");
    } else if (name == "GIDMAPPATH_ATTR") {
      o["gidmap_tool"] = d.at("value");
    } else {
      FAIL("unknown attribute " << name);
    }
  }
  return o;
}

// `create` is a set: compare it sorted, everything else as printed.
json::object normalised(json::object o) {
  auto& c = o["create"].as_array();
  std::vector<std::string> names;
  for (auto& v : c) names.emplace_back(v.as_string());
  std::sort(names.begin(), names.end());
  c.clear();
  for (auto& n : names) c.push_back(json::string(n));
  return o;
}

}  // namespace

TEST_CASE("decode: every capture prints the plan its .json describes, one JSON line, exit 0") {
  for (const auto& c : captures::all()) {
    CAPTURE(c.name);
    for (const char* runc : {"1.1", "1.2"}) {
      auto r = run_cli({"decode", "--runc", runc, c.bin.string()});
      REQUIRE(r.status == 0);
      CHECK(r.err.empty());
      REQUIRE(!r.out.empty());
      CHECK(r.out.back() == '\n');
      CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
      auto printed = json::parse(r.out).as_object();
      CHECK(printed.size() == 11);
      CHECK(json::value(normalised(printed)) == json::value(normalised(expected_json(c))));
    }
  }
}

TEST_CASE("encode(decode(capture)) reproduces the capture byte for byte, through files and pipes") {
  for (const auto& c : captures::all()) {
    CAPTURE(c.name);
    auto d = run_cli({"decode", "--runc", "1.1", "-"}, as_string(c.bytes));
    REQUIRE(d.status == 0);
    auto e = run_cli({"encode", "--runc", "1.1", "-"}, d.out);
    CHECK(e.status == 0);
    CHECK(e.err.empty());
    CHECK(e.out == as_string(c.bytes));
    spit(tmp_path("plan.json"), d.out);
    auto f = run_cli({"encode", "--runc", "1.2", tmp_path("plan.json")});
    CHECK(f.out == as_string(c.bytes));  // no attribute 27290: both protocols agree
  }
}

TEST_CASE("encode: the spec's 1.2 worked example from JSON") {
  const std::string plan_json = R"({"create":["user","mnt","uts","ipc","pid","net","cgroup","time"],
    "uid_map":[{"inside":0,"outside":100000,"count":65536}],
    "gid_map":[{"inside":0,"outside":100000,"count":65536}],
    "setgroups":true,"oom_score_adj":100,
    "time_offsets":[{"clock":"monotonic","secs":172800,"nanosecs":0}]})";
  auto r = run_cli({"encode", "-"}, plan_json);
  REQUIRE(r.status == 0);
  const unsigned char want[] = {
      0x70, 0,   0,    0,    0x30, 0xf2, 1,    0,    1,   0,   0,    0,    0,   0,   0,   0,  //
      8,    0,   0x91, 0x6a, 0x80, 0,    2,    0x7e,                                          //
      0x14, 0,   0x93, 0x6a, '0',  ' ',  '1',  '0',  '0', '0', '0',  '0',  ' ', '6', '5', '5',
      '3',  '6', '\n', 0,    0x14, 0,    0x94, 0x6a, '0', ' ', '1',  '0',  '0', '0', '0', '0',
      ' ',  '6', '5',  '5',  '3',  '6',  '\n', 0,    8,   0,   0x95, 0x6a, 1,   0,   0,   0,  //
      8,    0,   0x96, 0x6a, '1',  '0',  '0',  0,                                             //
      8,    0,   0x97, 0x6a, 0,    0,    0,    0,                                             //
      0x18, 0,   0x9a, 0x6a, 'm',  'o',  'n',  'o',  't', 'o', 'n',  'i',  'c', ' ', '1', '7',
      '2',  '8', '0',  '0',  ' ',  '0',  '\n', 0};
  CHECK(r.out == std::string(reinterpret_cast<const char*>(want), sizeof want));
  // And back: the offsets survive under 1.2, and 1.1 reads 27290 as mount sources and refuses.
  auto d = run_cli({"decode", "-"}, r.out);
  REQUIRE(d.status == 0);
  CHECK(json::parse(d.out).at("time_offsets") ==
        json::parse(R"([{"clock":"monotonic","secs":172800,"nanosecs":0}])"));
  check_refused(run_cli({"decode", "--runc", "1.1", "-"}, r.out),
                "bootstrap: attribute 27290 at offset 88: MOUNT_SOURCES does not end in an empty "
                "entry: malformed bootstrap message");
  check_refused(run_cli({"encode", "--runc", "1.1", "-"}, plan_json),
                "time_offsets: runc 1.1 messages cannot carry time offsets: invalid plan");
}

TEST_CASE("decode refuses malformed messages: exit 2, empty stdout, one exact line") {
  auto all = captures::all();
  auto multimap =
      std::find_if(all.begin(), all.end(), [](auto& c) { return c.name == "c_multimap"; });
  REQUIRE(multimap != all.end());
  bytes b = multimap->bytes;
  REQUIRE(b.size() == 128);
  const std::uint16_t len300 = 300;
  std::memcpy(b.data() + 24, &len300, 2);
  check_refused(run_cli({"decode", "-"}, as_string(b)),
                "bootstrap: attribute 27283 at offset 24: length 300 runs past the end of the "
                "message (128 bytes): malformed bootstrap message");

  b = multimap->bytes;
  b[4] = std::byte{2};
  b[5] = std::byte{0};
  check_refused(run_cli({"decode", "-"}, as_string(b)),
                "bootstrap: header at offset 4: message type 2 (NLMSG_ERROR) is not INIT_MSG "
                "(62000): malformed bootstrap message");
  check_refused(run_cli({"decode", "-"}, as_string(multimap->bytes).substr(0, 40)),
                "bootstrap: header at offset 0: length 128 runs past the end of the message (40 "
                "bytes): malformed bootstrap message");
  check_refused(run_cli({"decode", "-"}, ""),
                "bootstrap: header at offset 0: message is 0 bytes, shorter than the 16-byte "
                "header: malformed bootstrap message");
  b = multimap->bytes;
  b[26] = std::byte{0x99};  // UIDMAP's type byte -> 27289 (GIDMAPPATH): a plain string, fine;
  b[27] = std::byte{0x6b};  // 0x6b99 = 27545: unknown
  check_refused(run_cli({"decode", "-"}, as_string(b)),
                "bootstrap: attribute 27545 at offset 24: unknown attribute type: malformed "
                "bootstrap message");
  check_refused(run_cli({"decode", tmp_path("no-such-file")}),
                "open on " + tmp_path("no-such-file") + ": No such file or directory");
}

TEST_CASE("encode is strict about its JSON") {
  auto refused = [](std::string_view in, const std::string& line) {
    CAPTURE(in);
    check_refused(run_cli({"encode", "-"}, in), line);
  };
  refused(R"({"create":["net"],"colour":1})", "json: $: unknown key \"colour\": invalid plan");
  refused(R"({"create":"net"})", "json: $.create: expected an array: invalid plan");
  refused(R"({"create":["network"]})",
          "json: $.create[0]: unknown namespace kind \"network\": invalid plan");
  refused(R"({"create":["net","net"]})", "json: $.create[1]: net listed twice: invalid plan");
  refused(R"({"join":[{"ns":"net"}]})", "json: $.join[0]: missing key \"path\": invalid plan");
  refused(R"({"join":[{"ns":"net","path":"/x","extra":1}]})",
          "json: $.join[0]: unknown key \"extra\": invalid plan");
  refused(R"({"create":["user"],"uid_map":[{"inside":0,"outside":-1,"count":1}]})",
          "json: $.uid_map[0].outside: expected an integer in 0..4294967295: invalid plan");
  refused(R"({"create":["user"],"uid_map":[{"inside":0,"outside":1.5,"count":1}]})",
          "json: $.uid_map[0].outside: expected an integer in 0..4294967295: invalid plan");
  refused(R"({"create":["user"],"uid_map":[{"inside":0,"outside":0,"count":0}]})",
          "uid_map: line 1: count is 0: invalid id map");
  refused(R"({"oom_score_adj":"5"})",
          "json: $.oom_score_adj: expected an integer in -1000..1000: invalid plan");
  refused(R"({"oom_score_adj":1001})",
          "json: $.oom_score_adj: expected an integer in -1000..1000: invalid plan");
  refused(R"({"setgroups":1})", "json: $.setgroups: expected true or false: invalid plan");
  refused(R"({"uidmap_tool":7})",
          "json: $.uidmap_tool: expected a string or {\"base64\": string}: invalid plan");
  refused(R"({"create":["time"],"time_offsets":[{"clock":"realtime","secs":1,"nanosecs":0}]})",
          "json: $.time_offsets[0].clock: unknown clock \"realtime\": invalid plan");
  refused(R"({"mount_sources":["/a"]})",
          "mount_sources: runc >= 1.2 messages cannot carry mount sources: invalid plan");
  refused(R"({"create":["net"],"join":[{"ns":"net","path":"/x"}]})",
          "create: net both created and joined: invalid plan");
  // Defect 13: a repeated key is refused, naming it (last-one-wins ran with no new namespaces).
  refused(R"({"create":["net"],"create":[]})", "json: $: duplicate key \"create\": invalid plan");
  refused(R"({"join":[{"ns":"net","path":"/x"},{"ns":"uts","path":"/a","path":"/b"}]})",
          "json: $.join[1]: duplicate key \"path\": invalid plan");
  refused(R"([1,2])", "json: $: expected an object: invalid plan");
  refused(R"({"create":)", "json: byte 10: incomplete JSON: invalid plan");
  refused(R"({"create":["net"] "x":1})", "json: byte 18: syntax error: invalid plan");
  refused(R"({"create":["net"]} junk)", "json: byte 19: extra data: invalid plan");
}

TEST_CASE("argument errors exit 2 with one line") {
  auto r = run_cli({"decode", "--runc", "1.3", "x"});
  CHECK(r.status == 2);
  CHECK(r.out.empty());
  CHECK(r.err == "nsentry: --runc: 1.3 not in {1.1,1.2}\n");
  r = run_cli({"decode"});
  CHECK(r.status == 2);
  CHECK(r.out.empty());
  CHECK(r.err == "nsentry: FILE is required\n");
}

TEST_CASE("--version and -V print nsentry/version.hpp's version on stdout, exit 0") {
  const std::string line = "nsentry " + std::string(nsentry::version_string) + "\n";
  CHECK(line == "nsentry 0.2.0\n");  // the string the macros build
  for (const char* flag : {"--version", "-V"}) {
    CAPTURE(flag);
    auto r = run_cli({flag});
    CHECK(r.status == 0);
    CHECK(r.out == line);
    CHECK(r.err.empty());
  }
}

TEST_CASE("plan_from_json_bytes refuses duplicate keys, naming the key and its object") {
  auto parse = [](std::string_view text) {
    return nsentry::cli::plan_from_json_bytes(
        std::span(reinterpret_cast<const std::byte*>(text.data()), text.size()));
  };
  auto r = parse(R"({"create":["net"],"create":[]})");
  REQUIRE_FALSE(r);
  CHECK(r.error().detail == "$: duplicate key \"create\"");
  auto nested =
      parse(R"({"uid_map":[{"inside":0,"outside":0,"count":1,"count":2}],"create":["user"]})");
  REQUIRE_FALSE(nested);
  CHECK(nested.error().detail == "$.uid_map[0]: duplicate key \"count\"");
  // The same key in different objects is fine.
  CHECK(parse(R"({"join":[{"ns":"net","path":"/x"},{"ns":"uts","path":"/y"}]})"));
}

TEST_CASE("plan_from_json inverts plan_to_json, missing keys mean empty values") {
  nsentry::plan p;
  p.create = nsentry::ns_set{nsentry::ns_kind::user, nsentry::ns_kind::mnt};
  p.join = {{nsentry::ns_kind::net, "/run/netns/a"}};
  p.uid_map = nsentry::id_map::parse("0 1000 1\n1 100000 65536\n").value();
  p.gid_map = p.uid_map;
  p.rootless_euid = true;
  p.oom_score_adj = -17;
  p.uidmap_tool = "/usr/bin/newuidmap";
  p.mount_sources = std::vector<std::string>{"", "/src"};
  auto back = nsentry::cli::plan_from_json(nsentry::cli::plan_to_json(p));
  REQUIRE_OK(back);
  CHECK(back.value() == p);
  auto empty = nsentry::cli::plan_from_json(json::object{});
  REQUIRE_OK(empty);
  CHECK(empty.value() == nsentry::plan{});
}

// --- paths that are not UTF-8 (byte strings in the schema) ---------------------------------------

namespace {

// Paths as Linux allows them: bytes 0xff and 0x80, and sequences that are not UTF-8 (a lone
// continuation byte, a truncated sequence, an overlong '/', an encoded surrogate).
nsentry::plan non_utf8_plan(nsentry::runc_protocol proto) {
  nsentry::plan p;
  p.create = nsentry::ns_set{nsentry::ns_kind::user};
  p.uid_map = nsentry::id_map::parse("0 100000 1\n").value();
  p.gid_map = p.uid_map;
  p.join = {{nsentry::ns_kind::net, "/run/netns/\xff\x80"},
            {nsentry::ns_kind::uts, "/tmp/caf\xc3\xa9"},  // valid UTF-8: stays a string
            {nsentry::ns_kind::ipc, "/tmp/\xe2\x82"},
            {nsentry::ns_kind::mnt, "/tmp/\xc0\xaf\xed\xa0\x80"}};
  p.uidmap_tool = "/usr/bin/newuidmap\xfe";
  p.gidmap_tool = "/usr/bin/newgidmap";
  if (proto == nsentry::runc_protocol::v1_1)
    p.mount_sources = std::vector<std::string>{"", "/src/\x80", "/src/ok"};
  return p;
}

std::string encode_plan(const nsentry::plan& p, nsentry::runc_protocol proto) {
  auto m = nsentry::bootstrap::encode(p, proto);
  REQUIRE_OK(m);
  return as_string(m.value());
}

nsentry::result<nsentry::plan> parse_plan(std::string_view text) {
  return nsentry::cli::plan_from_json_bytes(
      std::span(reinterpret_cast<const std::byte*>(text.data()), text.size()));
}

}  // namespace

TEST_CASE("decode | encode reproduces a message whose paths are not UTF-8, byte for byte") {
  for (auto [proto, flag] : {std::pair{nsentry::runc_protocol::v1_1, "1.1"},
                             std::pair{nsentry::runc_protocol::v1_2, "1.2"}}) {
    CAPTURE(flag);
    const nsentry::plan p = non_utf8_plan(proto);
    const std::string msg = encode_plan(p, proto);
    REQUIRE(msg.find("/run/netns/\xff\x80") != std::string::npos);

    auto d = run_cli({"decode", "--runc", flag, "-"}, msg);
    REQUIRE(d.status == 0);
    CHECK(d.err.empty());
    auto printed = json::parse(d.out).as_object();  // valid JSON, hence valid UTF-8
    const auto& join = printed.at("join").as_array();
    CHECK(join[0].at("path") == json::parse(R"({"base64":"L3J1bi9uZXRucy//gA=="})"));
    CHECK(join[1].at("path") == json::value("/tmp/caf\xc3\xa9"));
    CHECK(join[2].at("path") == json::parse(R"({"base64":"L3RtcC/igg=="})"));
    CHECK(join[3].at("path") == json::parse(R"({"base64":"L3RtcC/Ar+2ggA=="})"));
    CHECK(printed.at("uidmap_tool") == json::parse(R"({"base64":"L3Vzci9iaW4vbmV3dWlkbWFw/g=="})"));
    CHECK(printed.at("gidmap_tool") == json::value("/usr/bin/newgidmap"));
    if (proto == nsentry::runc_protocol::v1_1)
      CHECK(printed.at("mount_sources") == json::parse(R"(["",{"base64":"L3NyYy+A"},"/src/ok"])"));

    auto e = run_cli({"encode", "--runc", flag, "-"}, d.out);
    CHECK(e.status == 0);
    CHECK(e.err.empty());
    CHECK(e.out == msg);  // the bytes, compared as bytes

    auto back = parse_plan(d.out);
    REQUIRE_OK(back);
    CHECK(back.value() == p);
  }
}

TEST_CASE("byte strings: both forms are read, a valid UTF-8 path may also be given as base64") {
  auto r = parse_plan(
      R"({"join":[{"ns":"net","path":{"base64":"L3J1bi9uZXRucy9h"}},{"ns":"uts","path":"/b"}],
          "uidmap_tool":{"base64":"/w=="},"gidmap_tool":{"base64":""}})");
  REQUIRE_OK(r);
  CHECK(r.value().join[0].path == "/run/netns/a");
  CHECK(r.value().join[1].path == "/b");
  CHECK(r.value().uidmap_tool == std::string("\xff"));
  CHECK(r.value().gidmap_tool == std::string());
  // Written back, each in its one form.
  auto o = nsentry::cli::plan_to_json(r.value());
  CHECK(o.at("join").as_array()[0].at("path") == json::value("/run/netns/a"));
  CHECK(o.at("uidmap_tool") == json::parse(R"({"base64":"/w=="})"));
  CHECK(o.at("gidmap_tool") == json::value(""));
}

TEST_CASE("byte strings: every byte value and every length round-trips through base64") {
  std::string all;
  for (int b = 1; b < 256; ++b) all += static_cast<char>(b);
  for (std::size_t len = 0; len <= all.size(); ++len) {
    const std::string s = all.substr(all.size() - len);
    const std::string b64 = nsentry::cli::detail::base64_encode(s);
    CHECK(b64.size() % 4 == 0);
    auto back = nsentry::cli::detail::base64_decode(b64, "$");
    REQUIRE_OK(back);
    CHECK(back.value() == s);
  }
}

TEST_CASE("byte strings: is_utf8 accepts exactly what Boost.JSON's parser accepts") {
  auto agree = [](const std::string& s) {
    boost::system::error_code ec;
    json::parse("\"" + s + "\"", ec);
    const bool boost_ok = !ec;
    if (nsentry::cli::detail::is_utf8(s) != boost_ok) {
      std::string hex;
      for (unsigned char c : s) hex += std::to_string(c) + " ";
      FAIL_CHECK("disagree on bytes " << hex << " (boost: " << boost_ok << ")");
      return false;
    }
    return true;
  };
  std::size_t n = 0;
  auto usable = [](unsigned c) { return c >= 0x20 && c != '"' && c != '\\'; };
  for (unsigned a = 0; a < 256; ++a) {
    if (!usable(a)) continue;
    agree(std::string(1, static_cast<char>(a)));
    for (unsigned b = 0; b < 256; ++b) {
      if (!usable(b)) continue;
      std::string two{static_cast<char>(a), static_cast<char>(b)};
      if (!agree(two)) return;
      ++n;
      if (a < 0xE0) continue;
      for (unsigned c : {0x41u, 0x7Fu, 0x80u, 0x9Fu, 0xA0u, 0xBFu, 0xC0u, 0xFFu})
        for (unsigned d : {0x41u, 0x80u, 0xBFu, 0xC0u}) {
          if (!agree(two + static_cast<char>(c))) return;
          if (!agree(two + static_cast<char>(c) + static_cast<char>(d))) return;
          n += 2;
        }
    }
  }
  CHECK(n > 60000);
}

TEST_CASE("byte strings: bad base64, other keys and NUL bytes are refused, naming the path") {
  auto refused = [](std::string_view in, const std::string& line) {
    CAPTURE(in);
    check_refused(run_cli({"encode", "-"}, in), line);
  };
  refused(R"({"join":[{"ns":"net","path":{"base64":"L3Rt!A=="}}]})",
          "json: $.join[0].path.base64: not base64: character 4 is not in the alphabet: invalid "
          "plan");
  refused(R"({"join":[{"ns":"net","path":{"base64":"L3Rtc"}}]})",
          "json: $.join[0].path.base64: base64 length 5 is not a multiple of 4: invalid plan");
  refused(R"({"join":[{"ns":"net","path":{"base64":"L3=tcA=="}}]})",
          "json: $.join[0].path.base64: not base64: character 2 is not in the alphabet: invalid "
          "plan");
  refused(R"({"join":[{"ns":"net","path":{"base64":"/x=="}}]})",
          "json: $.join[0].path.base64: not canonical base64: character 1 has unused bits set: "
          "invalid plan");
  refused(R"({"join":[{"ns":"net","path":{"base64":"L3J1bg==","hex":"2f72756e"}}]})",
          "json: $.join[0].path: unknown key \"hex\": invalid plan");
  refused(R"({"join":[{"ns":"net","path":{}}]})",
          "json: $.join[0].path: missing key \"base64\": invalid plan");
  refused(R"({"join":[{"ns":"net","path":{"base64":7}}]})",
          "json: $.join[0].path.base64: expected a string: invalid plan");
  refused(R"({"join":[{"ns":"net","path":"/x"},{"ns":"uts","path":{"base64":"L3gAeQ=="}}]})",
          "json: $.join[1].path: NUL byte at offset 2: invalid plan");
  refused(R"({"join":[{"ns":"net","path":"/x\u0000y"}]})",
          "json: $.join[0].path: NUL byte at offset 2: invalid plan");
  refused(R"({"uidmap_tool":{"base64":"AA=="}})",
          "json: $.uidmap_tool: NUL byte at offset 0: invalid plan");
  refused(R"({"gidmap_tool":["/x"]})",
          "json: $.gidmap_tool: expected a string or {\"base64\": string}: invalid plan");
  refused(R"({"mount_sources":["",{"base64":"L3gA"}]})",
          "json: $.mount_sources[1]: NUL byte at offset 2: invalid plan");
  // Raw bytes that are not UTF-8 are not JSON: refused by the parser, at their offset.
  refused("{\"join\":[{\"ns\":\"net\",\"path\":\"/\xff\"}]}",
          "json: byte 30: syntax error: invalid plan");
}
