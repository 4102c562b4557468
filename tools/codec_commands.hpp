// tools/codec_commands.hpp — `nsentry decode` and `nsentry encode`.
//
//   nsentry decode [--runc 1.1|1.2] FILE   runc bootstrap message -> one JSON object (plan_json.hpp)
//   nsentry encode [--runc 1.1|1.2] FILE   that JSON -> the message bytes, in runc's order
// FILE "-" is stdin. Bad input: exit 2, nothing on stdout, one line "nsentry: <what>" on stderr.
#pragma once

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <unistd.h>

#include <memory>
#include <string>

#include "nsentry/bootstrap.hpp"
#include "nsentry/fd.hpp"
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

inline void add_codec_commands(CLI::App& app, int& status) {
  struct options {
    std::string runc = "1.2";
    std::string file;
  };
  // CLI11 keeps pointers to these until parsing ends; the callbacks run during app.parse().
  auto dec = std::make_shared<options>();
  auto enc = std::make_shared<options>();

  auto* d = app.add_subcommand("decode", "print a runc bootstrap message as a JSON plan");
  d->add_option("--runc", dec->runc, "runc protocol (27290 is MOUNT_SOURCES in 1.1, TIMENSOFFSET in 1.2+)")
      ->check(CLI::IsMember({"1.1", "1.2"}));
  d->add_option("FILE", dec->file, "message file, - for stdin")->required();
  d->callback([dec, &status] { status = codec_detail::decode(dec->file, dec->runc); });

  auto* e = app.add_subcommand("encode", "write a JSON plan as a runc bootstrap message");
  e->add_option("--runc", enc->runc, "runc protocol (1.1 or 1.2)")
      ->check(CLI::IsMember({"1.1", "1.2"}));
  e->add_option("FILE", enc->file, "JSON plan file, - for stdin")->required();
  e->callback([enc, &status] { status = codec_detail::encode(enc->file, enc->runc); });
}

}  // namespace nsentry::cli
