// tools/exec_commands.hpp — `nsentry enter` and `nsentry run`.
//
//   nsentry enter -t PID [--all | --user --mnt ...] [--ns KIND=PATH ...] [--wd DIR] [--] CMD...
//   nsentry run (--plan FILE.json | --bootstrap FILE [--runc 1.1|1.2]) [--] CMD...
//
// `run` passes a plan's mount sources to CMD as O_PATH descriptors on 3, 4, ... and names them
// in NSENTRY_MOUNT_FDS (see mount_sources_env below).
//
// Exit status: CMD's own (128+signal if it was killed); 125 when nsentry fails (one line on
// stderr naming the step, namespace, path and errno); 126 when CMD cannot be executed; 127
// when it is not found.
#pragma once

#include <charconv>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nsentry/bootstrap.hpp"
#include "nsentry/child.hpp"
#include "nsentry/exec_spec.hpp"
#include "nsentry/executor.hpp"
#include "nsentry/join.hpp"
#include "nsentry/mount_sources.hpp"
#include "nsentry/plan.hpp"
#include "tools/args.hpp"
#include "tools/common.hpp"
#include "tools/plan_json.hpp"

// Builds whose sanitizer runtime installs signal handlers (see run_enter).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define NSENTRY_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define NSENTRY_SANITIZED 1
#endif
#endif

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
  // The CLI installs no signal handler (and exec left none): the spawned command's child
  // side need not ask the kernel about each signal (spawn_options::handled_signals). The
  // sanitizer runtimes install handlers, so their builds let the child ask.
#if !defined(NSENTRY_SANITIZED)
  req.handled_signals.emplace();
  sigemptyset(&*req.handled_signals);
#endif
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

// The plan's mount sources go to CMD on 3, 4, ... (run_plan's default), and CMD learns which is
// which from NSENTRY_MOUNT_FDS ("[3,-1,4]": one entry per mount source, -1 for ""), replacing
// any value it would have inherited.
inline std::optional<std::vector<std::string>> mount_sources_env(const plan& p, run_options& opt) {
  if (!p.mount_sources || p.mount_sources->empty()) return std::nullopt;
  opt.mount_fds = mount_fd_list(*p.mount_sources);
  const std::string name = std::string(mount_fds_env) + "=";
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e)
    if (std::string_view(*e).substr(0, name.size()) != name) env.emplace_back(*e);
  env.push_back(name + format_mount_fds(opt.mount_fds));
  return env;
}

inline int run_run(const run_args& a) {
  default_sigchld();
  auto p = load_plan(a.plan_file, a.bootstrap_file, protocol_of(a.runc));
  if (!p) return fail(p.error());
  run_options opt;
  auto cmd = exec_spec::make(a.cmd, mount_sources_env(p.value(), opt));
  if (!cmd) return fail(cmd.error());
  auto tr = a.trace.make();
  if (!tr) return fail(tr.error());
  if (tr.value()) opt.trace = &*tr.value();
  auto c = run_plan(p.value(), cmd.value(), opt);
  a.trace.report(tr.value());
  if (!c) return fail(c.error());
  return wait_status(c.value().wait());
}

// `nsentry enter ...`; argv[1] is "enter". Flags as nsenter spells them where they overlap.
inline int enter_main(int argc, char** argv) {
  enter_args a;
  command c;
  c.name = "enter";
  c.summary =
      "Run a program in the namespaces of another process, or in namespace files (like nsenter).";
  c.usage = "[options] [--] <program> [<argument>...]";
  c.example = "nsentry enter -t 1234 -a -- ip link";
  c.options.push_back({'t', "target", "pid", "the target process",
                       [&a](std::string_view v) -> std::optional<std::string> {
                         long long pid = 0;
                         auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), pid);
                         if (ec != std::errc{} || end != v.data() + v.size() || pid < 1 ||
                             pid > std::numeric_limits<pid_t>::max())
                           return "expected a process id, got \"" + std::string(v) + "\"";
                         a.target = static_cast<pid_t>(pid);
                         return std::nullopt;
                       }});
  c.options.push_back(
      {'a', "all", "", "every namespace of the target that differs from ours", set_flag(a.all)});
  static const auto kind_help = [] {  // "the target's user namespace", ... from the table
    std::array<std::string, ns_kind_count> h;
    for (const auto& row : ns_kinds)
      h[static_cast<std::size_t>(row.kind)] =
          "the target's " + std::string(row.name) + " namespace";
    return h;
  }();
  for (const auto& row : ns_kinds)  // -U,--user ... from the table of kinds
    c.options.push_back({row.cli_flag, row.name, "", kind_help[static_cast<std::size_t>(row.kind)],
                         set_flag(a.kinds[static_cast<std::size_t>(row.kind)])});
  c.options.push_back({0, "ns", "kind=path", "a namespace file to join (repeatable)",
                       [&a](std::string_view v) -> std::optional<std::string> {
                         a.paths.emplace_back(v);
                         return std::nullopt;
                       }});
  c.options.push_back({0, "wd", "dir", "working directory for the program", set_string(a.wd)});
  c.options.push_back(trace_option(a.trace));
  c.positional = "CMD";
  c.positional_required = true;
  c.rest_is_command = true;
  c.positionals = &a.cmd;
  auto p = parse(c, argc, argv, 2);
  if (p.help) return print_help(c);
  if (p.error) return cli::fail(*p.error, nsentry_failed);
  return run_enter(a);
}

// `nsentry run (--plan FILE | --bootstrap FILE [--runc 1.1|1.2]) [--] CMD...`.
inline int run_main(int argc, char** argv) {
  run_args a;
  bool runc_given = false;
  command c;
  c.name = "run";
  c.summary = "Carry out a plan (JSON, or a runc bootstrap message) and run a program in it.";
  c.usage = "(--plan <file> | --bootstrap <file> [--runc 1.1|1.2]) [--] <program> [<argument>...]";
  c.example = "nsentry run --plan plan.json -- /bin/sh";
  c.options.push_back({0, "plan", "file", "a JSON plan (as `nsentry decode` prints), - for stdin",
                       set_string(a.plan_file)});
  c.options.push_back({0, "bootstrap", "file", "a runc bootstrap message, - for stdin",
                       set_string(a.bootstrap_file)});
  auto choose = set_choice(a.runc, {"1.1", "1.2"});
  c.options.push_back({0, "runc", "1.1|1.2", "runc protocol of --bootstrap",
                       [&runc_given, choose](std::string_view v) {
                         runc_given = true;
                         return choose(v);
                       }});
  c.options.push_back(trace_option(a.trace));
  c.positional = "CMD";
  c.positional_required = true;
  c.rest_is_command = true;
  c.positionals = &a.cmd;
  auto p = parse(c, argc, argv, 2);
  if (p.help) return print_help(c);
  if (p.error) return cli::fail(*p.error, nsentry_failed);
  if (!a.plan_file.empty() && !a.bootstrap_file.empty())
    return cli::fail("--plan excludes --bootstrap", nsentry_failed);
  if (a.plan_file.empty() && a.bootstrap_file.empty())
    return cli::fail("run: one of --plan or --bootstrap is required", nsentry_failed);
  if (runc_given && a.bootstrap_file.empty())
    return cli::fail("--runc needs --bootstrap", nsentry_failed);
  return run_run(a);
}

}  // namespace nsentry::cli
