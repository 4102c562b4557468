// tools/runc_commands.hpp — `nsentry runc-init`: runc's init entry protocol from the CLI.
//
//   nsentry runc-init [--runc 1.1|1.2] [--sealed] [--trace[=FILE]] [--] [CMD ARGS...]
//
// Started by a runc-style parent (fd in _LIBCONTAINER_INITPIPE, optional _LIBCONTAINER_LOGPIPE
// and _LIBCONTAINER_LOGLEVEL), it reads one bootstrap message and carries it out in runc's three
// stages (nsentry/runc/init.hpp). Stage-2 execs CMD — without the init's pipes and without the
// _LIBCONTAINER_* / _NSENTRY_RUNC_PROTOCOL variables, which belong to the init, not to the
// container — or exits 0 when there is none. Without an init pipe nothing happens: exit 0.
//
// --runc picks the meaning of attribute 27290 (1.1: MOUNT_SOURCES; 1.2, the default:
// TIMENSOFFSET); _NSENTRY_RUNC_PROTOCOL, when set, overrides it. --sealed re-executes from a
// sealed memfd copy of the binary first (runc/sealed_exe.hpp). --trace: the three stages' steps
// up to stage-2's setup, reported by stage-0 as it exits (a table on its stderr, or JSON lines
// to FILE); stage-2's exec of CMD comes after it.
//
// Exit status: 1 on any failure of the init (as runc's), with a fatal log line or `FATAL: ...`
// on stderr; in stage-2, 127/126 when CMD is not found / cannot be executed.
#pragma once

#include <fcntl.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nsentry/child.hpp"
#include "nsentry/runc/container_command.hpp"
#include "nsentry/runc/env.hpp"
#include "nsentry/runc/init.hpp"
#include "nsentry/runc/log.hpp"
#include "tools/args.hpp"
#include "tools/common.hpp"

namespace nsentry::cli {

struct runc_init_args {
  trace_request trace;
  std::string runc = "1.2";
  bool sealed = false;
  std::vector<std::string> cmd;
};

// Our own command line, for the sealed re-exec (main's argv is not kept).
inline result<std::vector<std::string>> own_command_line() {
  NSENTRY_TRY(auto text, read_file("/proc/self/cmdline"));
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < text.size()) {
    auto nul = text.find('\0', at);
    if (nul == std::string::npos) nul = text.size();
    out.push_back(text.substr(at, nul - at));
    at = nul + 1;
  }
  return out;
}

inline int run_runc_init(const runc_init_args& a) {
  // Everything stage-2 needs is built here, in stage-0: stage-2 must not allocate.
  std::optional<exec_spec> cmd;
  if (!a.cmd.empty()) {
    auto spec = runc::container_command(a.cmd);
    if (!spec) return fail(spec.error(), runc_init_failed);
    cmd.emplace(std::move(spec).value());
  }
  std::vector<std::string> args;
  std::vector<char*> argv;
  if (a.sealed) {
    auto self = own_command_line();
    if (!self) return fail(self.error(), runc_init_failed);
    args = std::move(self).value();
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
  }
  auto tr = a.trace.make();
  if (!tr) return fail(tr.error(), runc_init_failed);
  runc::init_options o;
  o.protocol = protocol_of(a.runc);
  o.sealed = a.sealed;
  o.argv = argv.data();
  if (tr.value()) {
    o.trace = &*tr.value();
    o.before_exit = [&] { a.trace.report(tr.value()); };
  }
  if (runc::init(o) == runc::init_role::not_init) return 0;
  if (!cmd) return 0;  // stage-2 with nothing to run
  runc::exec_container_command(*cmd);
}

// `nsentry runc-init [--runc 1.1|1.2] [--sealed] [--trace[=FILE]] [--] [CMD...]`.
inline int runc_init_main(int argc, char** argv) {
  runc_init_args a;
  command c;
  c.name = "runc-init";
  c.summary =
      "Act as runc's init (its nsexec): read the bootstrap message from the fd in\n"
      "_LIBCONTAINER_INITPIPE, set up the namespaces in runc's three stages, report the pids,\n"
      "and exec the program (or exit 0) in stage-2.";
  c.usage = "[--runc 1.1|1.2] [--sealed] [--trace[=FILE]] [--] [<program> [<argument>...]]";
  c.example = "_LIBCONTAINER_INITPIPE=3 nsentry runc-init --runc 1.1 -- /bin/sh";
  c.options = {{0, "runc", "1.1|1.2", "runc protocol of the message (default 1.2)",
                set_choice(a.runc, {"1.1", "1.2"})},
               {0, "sealed", "", "re-exec from a sealed memfd copy of this binary first",
                set_flag(a.sealed)},
               trace_option(a.trace)};
  c.positional = "CMD";
  c.rest_is_command = true;
  c.positionals = &a.cmd;
  auto p = parse(c, argc, argv, 2);
  if (p.help) return print_help(c);
  if (p.error) return cli::fail(*p.error, runc_init_failed);
  return run_runc_init(a);
}

}  // namespace nsentry::cli
