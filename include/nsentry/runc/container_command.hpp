// nsentry/runc/container_command.hpp — what stage-2 execs, when the init is a whole program
// (`nsentry runc-init -- CMD`) rather than runc's Go init.
//
//   NSENTRY_TRY(auto cmd, runc::container_command({"sh"}));   // in stage-0: allocates
//   if (runc::init(o) == runc::init_role::container) runc::exec_container_command(cmd);
//
// The command gets the environment without the init's own variables (_LIBCONTAINER_*,
// _NSENTRY_RUNC_PROTOCOL) and without the init's pipes, which belong to the init.
// Contracts: container_command allocates (call it before init()); exec_container_command is
// allocation-free and async-signal-safe (stage-2), and never returns.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <string_view>
#include <vector>

#include "nsentry/error.hpp"
#include "nsentry/exec_spec.hpp"
#include "nsentry/runc/env.hpp"
#include "nsentry/runc/init.hpp"
#include "nsentry/runc/log.hpp"

namespace nsentry::inline v0::runc {

// Is this `NAME=value` one of the init's own variables?
inline bool init_only_variable(std::string_view e) noexcept {
  return e.rfind("_LIBCONTAINER_", 0) == 0 ||
         (e.rfind(protocol_var, 0) == 0 && e.size() > std::string_view(protocol_var).size() &&
          e[std::string_view(protocol_var).size()] == '=');
}

inline result<exec_spec> container_command(std::vector<std::string> argv,
                                           char* const* envp = environ) {
  std::vector<std::string> env;
  for (char* const* e = envp; e && *e; ++e)
    if (!init_only_variable(*e)) env.emplace_back(*e);
  return exec_spec::make(std::move(argv), std::move(env));
}

// Stage-2: closes the init's pipes on exec and execs `cmd`; on failure one fatal line and
// exit 127/126 (not found / cannot execute).
[[noreturn]] inline void exec_container_command(const exec_spec& cmd) noexcept {
  env_scan scan = scan_environ();
  logger lg(scan.env);
  lg.set_stage(2);
  for (int fd : {scan.env.init_pipe, scan.env.log_pipe.value_or(-1)})
    if (fd >= 0) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  failure f = cmd.exec();
  lg.fatal(name_of(f.step), " ", cmd.argv().front(), ": ", errno_text{f.err});
  ::_exit(exit_status_for(f));
}

}  // namespace nsentry::inline v0::runc
