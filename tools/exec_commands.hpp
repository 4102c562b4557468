// tools/exec_commands.hpp — `nsentry enter` and `nsentry run`.
//
//   nsentry enter -t PID [--all | --user --mnt ...] [--ns KIND=PATH ...] [--wd DIR] [--] CMD...
//   nsentry run (--plan FILE.json | --bootstrap FILE [--runc 1.1|1.2]) [--] CMD...
//
// Exit status: CMD's own (128+signal if it was killed); 125 when nsentry fails (one line on
// stderr naming the step, namespace, path and errno); 126 when CMD cannot be executed; 127
// when it is not found.
#pragma once

#include <CLI/CLI.hpp>

#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nsentry/bootstrap.hpp"
#include "nsentry/child.hpp"
#include "nsentry/exec_spec.hpp"
#include "nsentry/executor.hpp"
#include "nsentry/join.hpp"
#include "nsentry/plan.hpp"
#include "nsentry/trace.hpp"
#include "tools/common.hpp"
#include "tools/plan_json.hpp"

namespace nsentry::cli {

// --- plan input --------------------------------------------------------------------------------

// `run`'s plan: a JSON file (--plan, the schema `nsentry decode` prints) or a runc bootstrap
// message (--bootstrap). Errors name the file.
inline result<plan> load_plan(const std::string& json_file, const std::string& bootstrap_file,
                              runc_protocol protocol) {
  const std::string& file = json_file.empty() ? bootstrap_file : json_file;
  NSENTRY_TRY(auto text, read_input(file));
  auto p = json_file.empty() ? bootstrap::parse(bytes_of(text), protocol)
                             : plan_from_json_bytes(bytes_of(text));
  if (!p && p.error().path.empty()) return with_path(std::move(p).error(), file);
  return p;
}

// The exit status for a failure of enter/run: 126/127 for the command's exec, else 125.
inline int fail(const error& e) { return cli::fail(e, exit_status_for(e)); }

inline int wait_status(result<exit_status> st) {
  if (!st) return fail(st.error());
  return st.value().shell_status();
}

// --trace[=FILE]: a table on stderr, or JSON lines to FILE.
struct trace_request {
  std::string file;  // "": no trace; "-": table on stderr; else JSON lines to this file

  result<std::optional<step_trace>> make() const {
    if (file.empty()) return std::optional<step_trace>{};
    NSENTRY_TRY(auto t, step_trace::make());
    return std::optional<step_trace>{std::move(t)};
  }
  void report(const std::optional<step_trace>& t) const {
    if (!t) return;
    if (file == "-") {
      std::fputs(t->table().c_str(), stderr);
      return;
    }
    if (FILE* f = std::fopen(file.c_str(), "w")) {
      std::fputs(t->json_lines().c_str(), f);
      std::fclose(f);
    } else {
      cli::report(posix_error(step::open, file));
    }
  }
};

// A flag whose value comes only as --trace=FILE (a flag never takes the next argument, so
// `--trace CMD` leaves CMD alone); plain --trace is "-": the table on stderr.
inline void add_trace_option(CLI::App* sub, trace_request& t) {
  sub->add_flag("--trace{-}", t.file,
                "per-step latency: a table on stderr, or with =FILE JSON lines to FILE");
}

// --- enter ---------------------------------------------------------------------------------

struct enter_args {
  trace_request trace;
  pid_t target = 0;
  bool all = false;
  std::array<bool, ns_kind_count> kinds{};
  std::vector<std::string> paths;  // KIND=PATH
  std::string wd;
  std::vector<std::string> cmd;
};

// Like nsenter: SIGCHLD back to default, so that a disposition inherited from our parent
// (SIG_IGN) cannot make the kernel reap the command and lose its status.
inline void default_sigchld() { ::signal(SIGCHLD, SIG_DFL); }

inline int run_enter(const enter_args& a) {
  default_sigchld();
  enter_request req;
  req.target = a.target;
  req.all = a.all;
  for (const auto& r : ns_kinds)
    if (a.kinds[static_cast<std::size_t>(r.kind)]) req.kinds.insert(r.kind);
  for (const auto& kp : a.paths) {
    auto eq = kp.find('=');
    auto kind = ns_kind_from_name(std::string_view(kp).substr(0, eq));
    if (eq == std::string::npos || !kind || eq + 1 == kp.size())
      return fail(nsentry_error(errc::invalid_argument, step::argument,
                                "--ns: expected KIND=PATH, got \"" + kp + "\""));
    req.files.push_back({*kind, kp.substr(eq + 1)});
  }
  auto cmd = exec_spec::make(a.cmd, std::nullopt,
                             a.wd.empty() ? std::nullopt : std::optional<std::string>(a.wd));
  if (!cmd) return fail(cmd.error());
  auto tr = a.trace.make();
  if (!tr) return fail(tr.error());
  if (tr.value()) req.trace = &*tr.value();
  req.before_exec = [&] { a.trace.report(tr.value()); };
  auto st = enter_and_exec(req, cmd.value());
  a.trace.report(tr.value());
  return wait_status(std::move(st));
}

// --- run ---------------------------------------------------------------------------------------

struct run_args {
  trace_request trace;
  std::string plan_file;
  std::string bootstrap_file;
  std::string runc = "1.2";
  std::vector<std::string> cmd;
};

inline int run_run(const run_args& a) {
  default_sigchld();
  auto p = load_plan(a.plan_file, a.bootstrap_file, protocol_of(a.runc));
  if (!p) return fail(p.error());
  auto cmd = exec_spec::make(a.cmd);
  if (!cmd) return fail(cmd.error());
  auto tr = a.trace.make();
  if (!tr) return fail(tr.error());
  run_options opt;
  if (tr.value()) opt.trace = &*tr.value();
  auto c = run_plan(p.value(), cmd.value(), opt);
  a.trace.report(tr.value());
  if (!c) return fail(c.error());
  return wait_status(c.value().wait());
}

inline void add_exec_commands(CLI::App& app, int& status) {
  auto enter = std::make_shared<enter_args>();
  auto* e = app.add_subcommand("enter", "enter a process's namespaces and run a command");
  e->add_option("-t,--target", enter->target, "the target process")->check(CLI::Range(1, std::numeric_limits<int>::max()));
  e->add_flag("-a,--all", enter->all, "every namespace of the target that differs from ours");
  for (const auto& row : ns_kinds) {  // -U,--user ... as nsenter spells them
    auto name = std::string("-") + row.cli_flag + ",--" + std::string(row.name);
    e->add_flag(name, enter->kinds[static_cast<std::size_t>(row.kind)],
                "the target's " + std::string(row.name) + " namespace");
  }
  e->add_option("--ns", enter->paths, "KIND=PATH: a namespace file to join (repeatable)")
      ->allow_extra_args(false);
  e->add_option("--wd", enter->wd, "working directory for the command");
  add_trace_option(e, enter->trace);
  e->add_option("cmd", enter->cmd, "CMD [ARGS...] (after an optional --)")->required();
  e->positionals_at_end();  // everything from CMD on is CMD's, options included
  e->callback([enter, &status] { status = run_enter(*enter); });

  auto run = std::make_shared<run_args>();
  auto* r = app.add_subcommand("run", "carry out a plan and run a command in it");
  auto* plan_opt =
      r->add_option("--plan", run->plan_file, "a JSON plan (as `nsentry decode` prints), - for stdin");
  auto* boot_opt =
      r->add_option("--bootstrap", run->bootstrap_file, "a runc bootstrap message, - for stdin");
  plan_opt->excludes(boot_opt);
  boot_opt->excludes(plan_opt);
  r->add_option("--runc", run->runc, "runc protocol of --bootstrap (1.1 or 1.2)")
      ->check(CLI::IsMember({"1.1", "1.2"}))
      ->needs(boot_opt);
  add_trace_option(r, run->trace);
  r->add_option("cmd", run->cmd, "CMD [ARGS...] (after an optional --)")->required();
  r->positionals_at_end();
  r->callback([run, &status] {
    if (run->plan_file.empty() && run->bootstrap_file.empty()) {
      report("run: one of --plan or --bootstrap is required");
      status = nsentry_failed;
      return;
    }
    status = run_run(*run);
  });
}

}  // namespace nsentry::cli
