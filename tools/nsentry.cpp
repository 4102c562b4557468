// nsentry — the command-line front end: argument parsing (tools/args.hpp) and dispatch only;
// every subcommand lives in its own header and calls into the library. No CLI framework and
// no iostreams: `nsentry enter` sits on the exec path of every command it starts, so its
// start-up costs microseconds (docs/performance.md).
#include <cstdio>
#include <string_view>

#include "nsentry/version.hpp"
#include "tools/codec_commands.hpp"
#include "tools/common.hpp"
#include "tools/exec_commands.hpp"
#include "tools/runc_commands.hpp"

namespace {

constexpr const char* usage =
    "\nUsage:\n"
    " nsentry <command> [options] [arguments]\n"
    "\n"
    "Enter and create Linux namespaces; read and write runc's bootstrap message.\n"
    "\n"
    "Commands:\n"
    " enter       run a program in the namespaces of another process (like nsenter)\n"
    " run         carry out a plan (JSON or a runc bootstrap message) and run a program in it\n"
    " runc-init   act as runc's init (its nsexec protocol)\n"
    " decode      print a runc bootstrap message as a JSON plan\n"
    " encode      write a JSON plan as a runc bootstrap message\n"
    "\n"
    "Options:\n"
    " -h, --help     display this help\n"
    " -V, --version  display the version\n"
    "\n"
    "`nsentry <command> --help` describes each command. Example:\n"
    " nsentry enter -t 1234 -a -- ip link\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace nsentry::cli;
  std::string_view sub = argc > 1 ? argv[1] : "";
  if (sub == "enter") return enter_main(argc, argv);
  if (sub == "run") return run_main(argc, argv);
  if (sub == "runc-init") return runc_init_main(argc, argv);
  if (sub == "decode") return codec_main(true, argc, argv);
  if (sub == "encode") return codec_main(false, argc, argv);
  if (sub == "-V" || sub == "--version") {
    std::printf("nsentry %s\n", nsentry::version_string.data());
    return 0;
  }
  if (sub == "-h" || sub == "--help") {
    std::fputs(usage, stdout);
    return 0;
  }
  report(sub.empty() ? std::string_view("a command is required (try nsentry --help)")
                     : std::string_view("unknown command; try nsentry --help"));
  return bad_input;
}
