// tools/runc_commands.hpp — `nsentry runc-init`: runc's init entry protocol from the CLI.
//
//   nsentry runc-init [--runc 1.1|1.2] [--sealed] [--] [CMD ARGS...]
//
// Started by a runc-style parent (fd in _LIBCONTAINER_INITPIPE, optional _LIBCONTAINER_LOGPIPE
// and _LIBCONTAINER_LOGLEVEL), it reads one bootstrap message and carries it out in runc's three
// stages (nsentry/runc/init.hpp). Stage-2 execs CMD — without the init's pipes and without the
// _LIBCONTAINER_* / _NSENTRY_RUNC_PROTOCOL variables, which belong to the init, not to the
// container — or exits 0 when there is none. Without an init pipe nothing happens: exit 0.
//
// --runc picks the meaning of attribute 27290 (1.1: MOUNT_SOURCES; 1.2, the default:
// TIMENSOFFSET); _NSENTRY_RUNC_PROTOCOL, when set, overrides it. --sealed re-executes from a
// sealed memfd copy of the binary first (runc/sealed_exe.hpp).
//
// Exit status: 1 on any failure of the init (as runc's), with a fatal log line or `FATAL: ...`
// on stderr; in stage-2, 127/126 when CMD is not found / cannot be executed.
#pragma once

#include <CLI/CLI.hpp>
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
#include "tools/common.hpp"

namespace nsentry::cli {


struct runc_init_args {
  std::string runc = "1.2";
  bool sealed = false;
  std::vector<std::string> cmd;
};

// Our own command line, for the sealed re-exec (CLI11 does not keep main's argv).
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
  runc::init_options o;
  o.protocol = protocol_of(a.runc);
  o.sealed = a.sealed;
  o.argv = argv.data();
  if (runc::init(o) == runc::init_role::not_init) return 0;
  if (!cmd) return 0;  // stage-2 with nothing to run
  runc::exec_container_command(*cmd);
}

inline void add_runc_commands(CLI::App& app, int& status) {
  auto args = std::make_shared<runc_init_args>();
  auto* r = app.add_subcommand("runc-init", "act as runc's init (runc's nsexec protocol)");
  r->add_option("--runc", args->runc, "runc protocol of the message (1.1 or 1.2)")
      ->check(CLI::IsMember({"1.1", "1.2"}))
      ->default_str("1.2");
  r->add_flag("--sealed", args->sealed, "re-exec from a sealed memfd copy of this binary first");
  r->add_option("cmd", args->cmd, "CMD [ARGS...] for stage-2 to exec (after an optional --)");
  r->positionals_at_end();
  r->callback([args, &status] { status = run_runc_init(*args); });
}

}  // namespace nsentry::cli
