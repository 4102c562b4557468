// nsentry — the command-line front end. Argument parsing (CLI11) and dispatch only; every
// subcommand lives in its own header and calls into the library.
#include <CLI/CLI.hpp>

#include <string>

#include "nsentry/version.hpp"
#include "tools/codec_commands.hpp"
#include "tools/common.hpp"
#include "tools/exec_commands.hpp"
#include "tools/runc_commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"nsentry: enter and create Linux namespaces"};
  app.require_subcommand(1);
  app.set_version_flag("-V,--version", "nsentry " + std::string(nsentry::version_string),
                       "Print the version (nsentry X.Y.Z) and exit");
  int status = 0;
  nsentry::cli::add_codec_commands(app, status);
  nsentry::cli::add_exec_commands(app, status);
  nsentry::cli::add_runc_commands(app, status);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version: stdout, exit 0
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    nsentry::cli::report(e.what());
    // Commands that run CMD keep CMD's exit statuses free: their own failures are 125.
    for (const auto* sub : app.get_subcommands()) {
      if (sub->get_name() == "runc-init") return nsentry::cli::runc_init_failed;  // as runc's init
      if (sub->get_name() != "decode" && sub->get_name() != "encode")
        return nsentry::cli::nsentry_failed;
    }
    return nsentry::cli::bad_input;
  }
  return status;
}
