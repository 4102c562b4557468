// nsentry/exec_spec.hpp — a command prepared so that a child can exec it without allocating,
// and the exit statuses a runner of commands reports for its own failures.
//
//   NSENTRY_TRY(auto cmd, exec_spec::make({"ip", "link"}));
//   ...  // in the child: return cmd.exec();   (returns only on failure)
//
// Contracts: make() allocates (parent side); exec() is async-signal-safe and allocation-free
// (child side); the object must outlive every child that may still exec it.
#pragma once

#include <cerrno>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nsentry/channel.hpp"
#include "nsentry/error.hpp"
#include "nsentry/step.hpp"
#include "nsentry/sys.hpp"

extern char** environ;

namespace nsentry::inline v0 {

// The exit statuses of a command runner's own failures, as shells, nsenter and container
// runtimes use them: 127 the command was not found, 126 it could not be executed, 125 the
// runner failed before it got there.
inline constexpr int exit_runner_failed = 125;
inline constexpr int exit_cannot_execute = 126;
inline constexpr int exit_not_found = 127;

constexpr int exit_status_for(step s, int err) noexcept {
  if (s != step::exec) return exit_runner_failed;
  return err == ENOENT || err == ENOTDIR ? exit_not_found : exit_cannot_execute;
}
constexpr int exit_status_for(const failure& f) noexcept { return exit_status_for(f.step, f.err); }
inline int exit_status_for(const error& e) noexcept {
  return exit_status_for(e.step, e.code.category() == std::generic_category() ? e.code.value() : 0);
}

// A command ready to exec without allocating: argv/envp arrays and every PATH candidate are
// built in the parent. Contract: make() allocates (parent side); exec() is async-signal-safe.
class exec_spec {
 public:
  // `env` nullopt: the caller's environment at make() time. PATH search as execvp(3) does it
  // when argv[0] has no '/', using the PATH of `env` (or the default shell search path).
  static result<exec_spec> make(std::vector<std::string> argv,
                                std::optional<std::vector<std::string>> env = std::nullopt,
                                std::optional<std::string> workdir = std::nullopt) {
    if (argv.empty() || argv[0].empty())
      return nsentry_error(errc::invalid_argument, step::exec, "empty command");
    exec_spec s;
    s.args_ = std::move(argv);
    if (env) {
      s.env_ = std::move(*env);
    } else {
      for (char** e = environ; e && *e; ++e) s.env_.emplace_back(*e);
    }
    s.workdir_ = std::move(workdir);
    const std::string& name = s.args_[0];
    if (name.find('/') != std::string::npos) {
      s.candidates_.push_back(name);
    } else {
      std::string_view path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
      for (const auto& e : s.env_)
        if (e.rfind("PATH=", 0) == 0) path = std::string_view(e).substr(5);
      while (true) {
        auto colon = path.find(':');
        std::string_view dir = path.substr(0, colon);
        s.candidates_.push_back((dir.empty() ? std::string(".") : std::string(dir)) + "/" + name);
        if (colon == std::string_view::npos) break;
        path = path.substr(colon + 1);
      }
    }
    s.link();
    return s;
  }

  exec_spec(exec_spec&& o) noexcept { *this = std::move(o); }
  exec_spec& operator=(exec_spec&& o) noexcept {
    args_ = std::move(o.args_);
    env_ = std::move(o.env_);
    candidates_ = std::move(o.candidates_);
    workdir_ = std::move(o.workdir_);
    link();
    return *this;
  }
  exec_spec(const exec_spec&) = delete;
  exec_spec& operator=(const exec_spec&) = delete;

  const std::vector<std::string>& argv() const noexcept { return args_; }
  const std::vector<std::string>& candidates() const noexcept { return candidates_; }
  const std::optional<std::string>& workdir() const noexcept { return workdir_; }

  // The error a failure of exec() stands for, naming what it acted on: the working directory
  // for step::chdir, the command for step::exec (parent side; every runner maps through it).
  error name_failure(error e) const {
    if (e.step == step::exec)
      e.path = args_.front();
    else if (e.step == step::chdir && workdir_)
      e.path = *workdir_;
    return e;
  }

  // chdir (if asked) and exec the first candidate that runs. Returns only on failure: ENOENT
  // when no candidate exists, EACCES if one existed but was not executable, else the error.
  failure exec() const noexcept {
    if (workdir_ && sys::calls.chdir(workdir_->c_str()) == -1)
      return failure::at(step::chdir, errno);
    int err = ENOENT;
    bool denied = false;
    for (const auto& c : candidates_) {
      sys::calls.execve(c.c_str(), argv_.data(), envp_.data());
      err = errno;
      if (err == EACCES) {
        denied = true;
      } else if (err != ENOENT && err != ENOTDIR && err != ELOOP && err != ENAMETOOLONG) {
        return failure::at(step::exec, err);
      }
    }
    return failure::at(step::exec, denied ? EACCES : err);
  }

 private:
  exec_spec() = default;
  void link() {
    argv_.clear();
    envp_.clear();
    for (auto& a : args_) argv_.push_back(a.data());
    argv_.push_back(nullptr);
    for (auto& e : env_) envp_.push_back(e.data());
    envp_.push_back(nullptr);
  }

  std::vector<std::string> args_, env_, candidates_;
  std::optional<std::string> workdir_;
  std::vector<char*> argv_, envp_;
};

}  // namespace nsentry::inline v0
