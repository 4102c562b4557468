// tools/exec_commands.hpp — `nsentry enter` and `nsentry run`.
//
//   nsentry enter -t PID [--all | --user --mnt ...] [--ns KIND=PATH ...] [--wd DIR] [--] CMD...
//   nsentry run --plan FILE.json [--] CMD...
//
// Exit status: CMD's own (128+signal if it was killed); 125 when nsentry fails (one line on
// stderr naming the step, namespace, path and errno); 126 when CMD cannot be executed; 127
// when it is not found.
#pragma once

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nsentry/child.hpp"
#include "nsentry/executor.hpp"
#include "nsentry/join.hpp"
#include "nsentry/plan.hpp"
#include "tools/common.hpp"

namespace nsentry::cli {

// --- plan files ------------------------------------------------------------------------------
// PLACEHOLDER for the codec's plan_from_json (tools/plan_json.hpp): reads the schema that
// `nsentry decode` prints. Swap the body of load_plan_file for a call to it when merging.

namespace detail {

inline result<plan> plan_from_json_value(const boost::json::value& v) {
  namespace json = boost::json;
  auto bad = [](std::string what) { return nsentry_error(errc::invalid_plan, "plan", what); };
  if (!v.is_object()) return bad("top level is not an object");
  const auto& o = v.as_object();
  plan p;
  auto kind_of = [&](const json::value& k) -> result<ns_kind> {
    if (!k.is_string()) return bad("namespace kind is not a string");
    auto kind = ns_kind_from_name(std::string_view(k.as_string()));
    if (!kind) return bad("unknown namespace kind \"" + std::string(k.as_string()) + "\"");
    return *kind;
  };
  auto u32 = [&](const json::object& r, const char* key) -> result<std::uint32_t> {
    auto* f = r.if_contains(key);
    if (!f || !f->is_number()) return bad(std::string("missing number \"") + key + "\"");
    std::error_code ec;
    auto n = f->to_number<std::uint32_t>(ec);
    if (ec) return bad(std::string("\"") + key + "\" is not a 32-bit unsigned integer");
    return n;
  };
  auto map_of = [&](const char* key) -> result<id_map> {
    auto* a = o.if_contains(key);
    if (!a || a->is_null()) return id_map{};
    if (!a->is_array()) return bad(std::string(key) + " is not an array");
    std::vector<id_range> ranges;
    for (const auto& e : a->as_array()) {
      if (!e.is_object()) return bad(std::string(key) + " entry is not an object");
      id_range r;
      NSENTRY_TRY(r.inside, u32(e.as_object(), "inside"));
      NSENTRY_TRY(r.outside, u32(e.as_object(), "outside"));
      NSENTRY_TRY(r.count, u32(e.as_object(), "count"));
      ranges.push_back(r);
    }
    return id_map::from_ranges(std::move(ranges), key);
  };
  auto opt_string = [&](const char* key) -> result<std::optional<std::string>> {
    auto* s = o.if_contains(key);
    if (!s || s->is_null()) return std::optional<std::string>{};
    if (!s->is_string()) return bad(std::string(key) + " is not a string");
    return std::optional<std::string>{std::string(s->as_string())};
  };
  auto flag = [&](const char* key) -> result<bool> {
    auto* b = o.if_contains(key);
    if (!b || b->is_null()) return false;
    if (!b->is_bool()) return bad(std::string(key) + " is not a boolean");
    return b->as_bool();
  };

  if (auto* c = o.if_contains("create"); c && !c->is_null()) {
    if (!c->is_array()) return bad("create is not an array");
    for (const auto& k : c->as_array()) {
      NSENTRY_TRY(auto kind, kind_of(k));
      p.create.insert(kind);
    }
  }
  if (auto* j = o.if_contains("join"); j && !j->is_null()) {
    if (!j->is_array()) return bad("join is not an array");
    for (const auto& e : j->as_array()) {
      if (!e.is_object() || !e.as_object().contains("ns") || !e.as_object().contains("path") ||
          !e.as_object().at("path").is_string())
        return bad("join entry needs \"ns\" and a string \"path\"");
      NSENTRY_TRY(auto kind, kind_of(e.as_object().at("ns")));
      p.join.push_back({kind, std::string(e.as_object().at("path").as_string())});
    }
  }
  NSENTRY_TRY(p.uid_map, map_of("uid_map"));
  NSENTRY_TRY(p.gid_map, map_of("gid_map"));
  NSENTRY_TRY(p.setgroups, flag("setgroups"));
  NSENTRY_TRY(p.rootless_euid, flag("rootless_euid"));
  if (auto* a = o.if_contains("oom_score_adj"); a && !a->is_null()) {
    std::error_code ec;
    auto n = a->is_number() ? a->to_number<int>(ec) : 0;
    if (!a->is_number() || ec) return bad("oom_score_adj is not an integer");
    p.oom_score_adj = n;
  }
  NSENTRY_TRY(p.uidmap_tool, opt_string("uidmap_tool"));
  NSENTRY_TRY(p.gidmap_tool, opt_string("gidmap_tool"));
  if (auto* t = o.if_contains("time_offsets"); t && !t->is_null()) {
    if (!t->is_array()) return bad("time_offsets is not an array");
    for (const auto& e : t->as_array()) {
      if (!e.is_object()) return bad("time_offsets entry is not an object");
      const auto& r = e.as_object();
      auto* clock = r.if_contains("clock");
      auto c = clock && clock->is_string() ? time_clock_from_name(std::string_view(clock->as_string()))
                                           : std::nullopt;
      if (!c) return bad("time_offsets clock must be \"monotonic\" or \"boottime\"");
      std::error_code ec1, ec2;
      auto* s = r.if_contains("secs");
      auto* n = r.if_contains("nanosecs");
      if (!s || !n || !s->is_number() || !n->is_number())
        return bad("time_offsets entry needs numbers \"secs\" and \"nanosecs\"");
      time_offset off{*c, s->to_number<std::int64_t>(ec1), n->to_number<std::int64_t>(ec2)};
      if (ec1 || ec2) return bad("time_offsets secs/nanosecs are not 64-bit integers");
      p.time_offsets.push_back(off);
    }
  }
  if (auto* m = o.if_contains("mount_sources"); m && !m->is_null()) {
    if (!m->is_array()) return bad("mount_sources is not an array");
    std::vector<std::string> srcs;
    for (const auto& e : m->as_array()) {
      if (!e.is_string()) return bad("mount_sources entry is not a string");
      srcs.emplace_back(e.as_string());
    }
    p.mount_sources = std::move(srcs);
  }
  NSENTRY_TRY(p.validate());
  return p;
}

}  // namespace detail

inline result<plan> load_plan_file(const std::string& path) {
  auto text = read_file(path);
  if (!text) return with_step(std::move(text).error(), "plan");
  boost::json::error_code ec;
  auto v = boost::json::parse(text.value(), ec);
  if (ec) return error{make_error_code(errc::invalid_plan), "plan", {}, path, 0, ec.message()};
  auto p = detail::plan_from_json_value(v);
  if (!p) return with_path(std::move(p).error(), path);
  return p;
}

// --- shared ------------------------------------------------------------------------------------

// The exit status for a failure: 126/127 for the command's exec, else 125.
inline int fail(const error& e) {
  report(e);
  if (e.step == "exec" && e.code.category() == std::generic_category())
    return e.code.value() == ENOENT || e.code.value() == ENOTDIR ? not_found : cannot_execute;
  return nsentry_failed;
}

inline int wait_status(child& c) {
  auto st = c.wait();
  if (!st) return fail(st.error());
  return st.value().shell_status();
}

// --- enter ---------------------------------------------------------------------------------

struct enter_args {
  pid_t target = 0;
  bool all = false;
  std::array<bool, ns_kind_count> kinds{};
  std::vector<std::string> paths;  // KIND=PATH
  std::string wd;
  std::vector<std::string> cmd;
};

// --all: every namespace of the target that differs from ours (as util-linux nsenter -a).
inline result<ns_set> differing_namespaces(pid_t pid) {
  ns_set out;
  for (ns_kind k : all_ns_kinds) {
    if (k == ns_kind::time && !kernel_has(feature::time_namespace)) continue;
    struct stat theirs {}, ours {};
    auto path = proc_ns_path(pid, k);
    if (sys::calls.fstatat(AT_FDCWD, path.c_str(), &theirs, 0) == -1)
      return with_kind(with_pid(posix_error("stat", path), pid), k);
    auto self = "/proc/self/ns/" + std::string(name_of(k));
    if (sys::calls.fstatat(AT_FDCWD, self.c_str(), &ours, 0) == -1)
      return with_kind(posix_error("stat", self), k);
    if (theirs.st_ino != ours.st_ino || theirs.st_dev != ours.st_dev) out.insert(k);
  }
  return out;
}

inline int run_enter(const enter_args& a) {
  ns_set by_pid;
  for (ns_kind k : all_ns_kinds)
    if (a.kinds[static_cast<std::size_t>(k)]) by_pid.insert(k);
  if (a.all) {
    if (a.target == 0) return fail(nsentry_error(errc::usage, "enter", "--all needs -t PID"));
    auto d = differing_namespaces(a.target);
    if (!d) return fail(d.error());
    by_pid |= d.value();
  }
  std::vector<ns_join> joins;
  for (const auto& kp : a.paths) {
    auto eq = kp.find('=');
    auto kind = ns_kind_from_name(std::string_view(kp).substr(0, eq));
    if (eq == std::string::npos || !kind || eq + 1 == kp.size())
      return fail(nsentry_error(errc::usage, "--ns", "expected KIND=PATH, got \"" + kp + "\""));
    joins.push_back({*kind, kp.substr(eq + 1)});
    by_pid.erase(*kind);  // an explicit path wins over -t for its kind
  }
  if (!by_pid.empty() && a.target == 0)
    return fail(nsentry_error(errc::usage, "enter", "namespace flags need -t PID"));
  if (by_pid.empty() && joins.empty())
    return fail(nsentry_error(errc::usage, "enter", "no namespace to enter"));

  auto cmd = exec_spec::make(a.cmd, std::nullopt,
                             a.wd.empty() ? std::nullopt : std::optional<std::string>(a.wd));
  if (!cmd) return fail(cmd.error());
  // Open the paths (and our own ns directory) before joining anything: a joined mount
  // namespace must not change what they name.
  auto opened = opened_namespaces::open(joins);
  if (!opened) return fail(opened.error());
  unique_fd self(open_self_ns_dir());
  if (!self) return fail(posix_error("open", "/proc/thread-self/ns"));
  if (auto r = join_pid(a.target, by_pid); !r) return fail(r.error());
  if (auto r = opened.value().join(self.get()); !r) return fail(r.error());

  ns_set entered = by_pid | opened.value().kinds();
  if (children_only_kinds(entered).empty()) {
    auto f = cmd.value().exec();  // returns only on failure
    return fail(with_path(error_from(f), a.cmd.front()));
  }
  spawn_options so;
  so.share_memory = !entered.contains(ns_kind::time);  // see spawn_options::share_memory
  auto c = spawn_exec(cmd.value(), so);
  if (!c) return fail(c.error());
  return wait_status(c.value());
}

// --- run ---------------------------------------------------------------------------------------

inline int run_run(const std::string& plan_path, const std::vector<std::string>& argv) {
  auto p = load_plan_file(plan_path);
  if (!p) return fail(p.error());
  auto cmd = exec_spec::make(argv);
  if (!cmd) return fail(cmd.error());
  auto c = run_plan(p.value(), cmd.value());
  if (!c) return fail(c.error());
  return wait_status(c.value());
}

inline void add_exec_commands(CLI::App& app, int& status) {
  auto enter = std::make_shared<enter_args>();
  auto* e = app.add_subcommand("enter", "enter a process's namespaces and run a command");
  e->add_option("-t,--target", enter->target, "the target process")->check(CLI::PositiveNumber);
  e->add_flag("-a,--all", enter->all, "every namespace of the target that differs from ours");
  for (ns_kind k : all_ns_kinds) {
    auto name = "--" + std::string(name_of(k));
    e->add_flag(name, enter->kinds[static_cast<std::size_t>(k)],
                "the target's " + std::string(name_of(k)) + " namespace");
  }
  e->add_option("--ns", enter->paths, "KIND=PATH: a namespace file to join (repeatable)")
      ->allow_extra_args(false);
  e->add_option("--wd", enter->wd, "working directory for the command");
  e->add_option("cmd", enter->cmd, "CMD [ARGS...] (after an optional --)")->required();
  e->positionals_at_end();  // everything from CMD on is CMD's, options included
  e->callback([enter, &status] { status = run_enter(*enter); });

  auto plan_path = std::make_shared<std::string>();
  auto* r = app.add_subcommand("run", "carry out a plan (JSON, as `nsentry decode` prints) and run a command");
  r->add_option("--plan", *plan_path, "the plan file")->required();
  auto cmd = std::make_shared<std::vector<std::string>>();
  r->add_option("cmd", *cmd, "CMD [ARGS...] (after an optional --)")->required();
  r->positionals_at_end();
  r->callback([plan_path, cmd, &status] { status = run_run(*plan_path, *cmd); });
}

}  // namespace nsentry::cli
