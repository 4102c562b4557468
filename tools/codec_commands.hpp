// tools/codec_commands.hpp — `nsentry decode` and `nsentry encode`.
//
//   nsentry decode [--runc 1.1|1.2] FILE   runc bootstrap message -> one JSON object
//   (plan_json.hpp) nsentry encode [--runc 1.1|1.2] FILE   that JSON -> the message bytes, in
//   runc's order
// FILE "-" is stdin. Bad input: exit 2, nothing on stdout, one line "nsentry: <what>" on stderr.
#pragma once

#include <unistd.h>

#include <boost/json.hpp>
#include <memory>
#include <string>

#include "nsentry/bootstrap.hpp"
#include "nsentry/fd.hpp"
#include "tools/args.hpp"
#include "tools/common.hpp"
#include "tools/plan_json.hpp"

namespace nsentry::cli {

namespace codec_detail {

inline int fail(const error& e) { return cli::fail(e, bad_input); }

inline int decode(const std::string& file, const std::string& runc) {
  auto bytes = read_input(file);
  if (!bytes) return fail(bytes.error());
  auto p = bootstrap::parse(bytes_of(bytes.value()), protocol_of(runc));
  if (!p) return fail(p.error());
  std::string text = boost::json::serialize(plan_to_json(p.value()));
  text += '\n';
  if (auto w = write_all(STDOUT_FILENO, text); !w) return fail(with_path(w.error(), "stdout"));
  return 0;
}

inline int encode(const std::string& file, const std::string& runc) {
  auto bytes = read_input(file);
  if (!bytes) return fail(bytes.error());
  auto p = plan_from_json_bytes(bytes_of(bytes.value()));
  if (!p) return fail(p.error());
  auto msg = bootstrap::encode(p.value(), protocol_of(runc));
  if (!msg) return fail(msg.error());
  if (auto w = write_all(STDOUT_FILENO, msg.value()); !w)
    return fail(with_path(w.error(), "stdout"));
  return 0;
}

}  // namespace codec_detail

// `nsentry decode|encode [--runc 1.1|1.2] FILE`; argv[1] is the subcommand.
inline int codec_main(bool decoding, int argc, char** argv) {
  std::string runc = "1.2";
  std::vector<std::string> files;
  command c;
  c.name = decoding ? "decode" : "encode";
  c.summary = decoding
                  ? "Print a runc bootstrap message as a JSON plan (one object on stdout)."
                  : "Write a JSON plan as a runc bootstrap message, byte for byte as runc does.";
  c.usage = "[--runc 1.1|1.2] <file>|-";
  c.example = decoding ? "nsentry decode --runc 1.1 message.bin"
                       : "nsentry encode --runc 1.1 plan.json > message.bin";
  c.options = {{0, "runc", "1.1|1.2",
                "runc protocol (27290 is MOUNT_SOURCES in 1.1, TIMENSOFFSET in 1.2+)",
                set_choice(runc, {"1.1", "1.2"})}};
  c.positional = "FILE";
  c.positional_required = true;
  c.positionals = &files;
  auto p = parse(c, argc, argv, 2);
  if (p.help) return print_help(c);
  if (p.error) return cli::fail(*p.error, bad_input);
  if (files.size() != 1) return cli::fail("expected one FILE", bad_input);
  return decoding ? codec_detail::decode(files[0], runc) : codec_detail::encode(files[0], runc);
}

}  // namespace nsentry::cli
