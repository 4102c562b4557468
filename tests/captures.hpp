// The shared runc 1.1.5 captures (external/shared/testdata/runc-1.1.5/), and what each one's
// .json says it contains, rebuilt from the capture's `decoded.attributes` without nsentry's
// parser: the expectation the codec is checked against.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "nsentry/plan.hpp"
#include "tests/testing.hpp"

namespace captures {

inline const std::filesystem::path dir = "external/shared/testdata/runc-1.1.5";

struct capture {
  std::string name;
  std::filesystem::path bin;
  std::vector<std::byte> bytes;
  boost::json::value json;
};

inline std::vector<std::byte> read_bytes(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  REQUIRE_OK(f);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(s.size());
  std::transform(s.begin(), s.end(), out.begin(), [](char c) { return std::byte(c); });
  return out;
}

inline std::string as_string(const std::vector<std::byte>& b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// One capture's message, as a runc-style parent writes it ("a_default.bin").
inline std::string message(const std::string& bin_name) {
  return as_string(read_bytes(dir / bin_name));
}

// Every capture that has a message (g_timens.json records that runc 1.1.5 wrote none).
inline std::vector<capture> all() {
  std::vector<capture> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".json") continue;
    auto text = read_bytes(e.path());
    auto json = boost::json::parse(
        std::string_view(reinterpret_cast<const char*>(text.data()), text.size()));
    if (json.at("bin_file").is_null()) continue;
    auto bin = dir / std::string(json.at("bin_file").as_string());
    out.push_back({e.path().stem().string(), bin, read_bytes(bin), std::move(json)});
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.name < b.name; });
  REQUIRE(out.size() >= 16);
  return out;
}

inline const boost::json::array& attributes(const capture& c) {
  return c.json.at("decoded").at("attributes").as_array();
}

inline nsentry::ns_kind kind_of_flag_name(std::string_view f) {
  static constexpr std::pair<std::string_view, nsentry::ns_kind> table[] = {
      {"CLONE_NEWUSER", nsentry::ns_kind::user},     {"CLONE_NEWIPC", nsentry::ns_kind::ipc},
      {"CLONE_NEWUTS", nsentry::ns_kind::uts},       {"CLONE_NEWNET", nsentry::ns_kind::net},
      {"CLONE_NEWPID", nsentry::ns_kind::pid},       {"CLONE_NEWNS", nsentry::ns_kind::mnt},
      {"CLONE_NEWCGROUP", nsentry::ns_kind::cgroup}, {"CLONE_NEWTIME", nsentry::ns_kind::time}};
  for (auto [name, k] : table)
    if (name == f) return k;
  FAIL("unknown flag name " << f);
  return {};
}

inline nsentry::id_map map_of(const boost::json::value& decoded) {
  std::vector<nsentry::id_range> ranges;
  for (const auto& m : decoded.at("mappings").as_array())
    ranges.push_back({static_cast<std::uint32_t>(m.at("containerID").to_number<std::int64_t>()),
                      static_cast<std::uint32_t>(m.at("hostID").to_number<std::int64_t>()),
                      static_cast<std::uint32_t>(m.at("size").to_number<std::int64_t>())});
  auto m = nsentry::id_map::from_ranges(std::move(ranges));
  REQUIRE_OK(m);
  return m.value();
}

// The plan the capture's decoded attributes describe.
inline nsentry::plan expected_plan(const capture& c) {
  nsentry::plan p;
  for (const auto& a : attributes(c)) {
    std::string name(a.at("name").as_string());
    const auto& d = a.at("decoded");
    if (name == "CLONE_FLAGS_ATTR") {
      for (const auto& f : d.at("flags").as_array())
        p.create.insert(kind_of_flag_name(f.as_string()));
      CHECK(p.create.clone_flags() == d.at("value").to_number<std::uint32_t>());
    } else if (name == "NS_PATHS_ATTR") {
      for (const auto& e : d.at("entries").as_array()) {
        auto k = nsentry::ns_kind_from_name(std::string(e.at("ns").as_string()));
        REQUIRE_OK(k);
        p.join.push_back({*k, std::string(e.at("path").as_string())});
      }
    } else if (name == "UIDMAP_ATTR") {
      p.uid_map = map_of(d);
    } else if (name == "GIDMAP_ATTR") {
      p.gid_map = map_of(d);
    } else if (name == "SETGROUP_ATTR") {
      p.setgroups = d.at("value").as_bool();
    } else if (name == "ROOTLESS_EUID_ATTR") {
      p.rootless_euid = d.at("value").as_bool();
    } else if (name == "OOM_SCORE_ADJ_ATTR") {
      p.oom_score_adj = d.at("int").to_number<int>();
    } else if (name == "UIDMAPPATH_ATTR") {
      p.uidmap_tool = std::string(d.at("value").as_string());
    } else if (name == "GIDMAPPATH_ATTR") {
      p.gidmap_tool = std::string(d.at("value").as_string());
    } else {
      FAIL("capture " << c.name << " has an attribute this test does not know: " << name);
    }
  }
  return p;
}

}  // namespace captures
