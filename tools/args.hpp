// tools/args.hpp — the CLI's argument parser: getopt-style, table-driven, in microseconds.
//
// Each subcommand is a `command` (name, one-line summary, usage, example) with `option`s and
// positionals. Short options combine (`-Un`, `-t42`), long ones take `--name value` or
// `--name=value`, `--` ends the options. With `rest_is_command`, the first positional and
// everything after it (options included) are the command's. Errors are one line:
// "--runc: 1.3 not in {1.1,1.2}", "FILE is required", "unknown option --x".
// Help is nsenter's layout: usage, summary, options, an example.
#pragma once

#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nsentry::cli {

struct option {
  char short_name = 0;          // 't', or 0
  std::string_view long_name;   // "target"
  std::string_view value_name;  // "PID": takes a value; "" a flag; "[=FILE]" an optional value
  std::string_view help;
  // Called with the value ("" for a flag, or an optional value not given); an error text or
  // nothing.
  std::function<std::optional<std::string>(std::string_view)> set;

  bool takes_value() const noexcept { return !value_name.empty() && value_name.front() != '['; }
  bool optional_value() const noexcept { return !value_name.empty() && value_name.front() == '['; }
  std::string display() const {
    std::string out = short_name ? std::string("-") + short_name + ", " : "    ";
    out += "--";
    out += long_name;
    if (takes_value()) {
      out += " <";
      out += value_name;
      out += ">";
    } else if (optional_value()) {
      out += value_name;
    }
    return out;
  }
};

struct command {
  std::string_view name;
  std::string_view summary;
  std::string_view usage;    // after "nsentry NAME "
  std::string_view example;  // a whole command line
  std::vector<option> options;
  std::string_view positional = "";  // "FILE", "CMD"; "" for none
  bool positional_required = false;
  bool rest_is_command = false;  // from the first positional on, everything is the command's
  std::vector<std::string>* positionals = nullptr;

  std::string help() const {
    std::string out = "\nUsage:\n nsentry ";
    out += name;
    out += ' ';
    out += usage;
    out += "\n\n";
    out += summary;
    out += "\n\nOptions:\n";
    for (const auto& o : options) {
      std::string d = o.display();
      char line[256];
      std::snprintf(line, sizeof line, " %-30s %.*s\n", d.c_str(), static_cast<int>(o.help.size()),
                    o.help.data());
      out += line;
    }
    out += " -h, --help                     display this help\n";
    out += "\nExample:\n ";
    out += example;
    out += "\n";
    return out;
  }
};

// The outcome of parsing: an error line, a request for help, or success.
struct parsed {
  std::optional<std::string> error;
  bool help = false;
};

inline parsed parse(const command& c, int argc, char** argv, int from) {
  parsed out;
  auto find_long = [&](std::string_view n) -> const option* {
    for (const auto& o : c.options)
      if (o.long_name == n) return &o;
    return nullptr;
  };
  auto find_short = [&](char n) -> const option* {
    for (const auto& o : c.options)
      if (o.short_name == n) return &o;
    return nullptr;
  };
  auto apply = [&](const option& o, std::string_view shown, std::string_view value) -> bool {
    if (auto e = o.set(value)) {
      out.error = std::string(shown) + ": " + *e;
      return false;
    }
    return true;
  };
  bool options_done = false;
  for (int i = from; i < argc; ++i) {
    std::string_view a = argv[i];
    const bool is_option = !options_done && a.size() > 1 && a[0] == '-';
    if (!is_option) {
      if (c.positionals == nullptr) {
        out.error = "unexpected argument \"" + std::string(a) + "\"";
        return out;
      }
      c.positionals->emplace_back(a);
      if (c.rest_is_command) {
        for (++i; i < argc; ++i) c.positionals->emplace_back(argv[i]);
        break;
      }
      continue;
    }
    if (a == "--") {
      options_done = true;
      continue;
    }
    if (a == "-h" || a == "--help") {
      out.help = true;
      return out;
    }
    if (a.substr(0, 2) == "--") {
      std::string_view name = a.substr(2), value;
      auto eq = name.find('=');
      const bool has_value = eq != std::string_view::npos;
      if (has_value) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      const option* o = find_long(name);
      std::string shown = "--" + std::string(name);
      if (o == nullptr) {
        out.error = "unknown option " + shown;
        return out;
      }
      if (o->takes_value() && !has_value) {
        if (i + 1 >= argc) {
          out.error = shown + " needs a value";
          return out;
        }
        value = argv[++i];
      } else if (!o->takes_value() && !o->optional_value() && has_value) {
        out.error = shown + " takes no value";
        return out;
      }
      if (!apply(*o, shown, value)) return out;
      continue;
    }
    // -abc: short flags, the last (or one with its value attached) may take a value.
    for (std::size_t j = 1; j < a.size(); ++j) {
      const option* o = find_short(a[j]);
      std::string shown = std::string("-") + a[j];
      if (o == nullptr) {
        out.error = "unknown option " + shown;
        return out;
      }
      if (o->takes_value()) {
        std::string_view value = a.substr(j + 1);
        if (value.empty()) {
          if (i + 1 >= argc) {
            out.error = shown + " needs a value";
            return out;
          }
          value = argv[++i];
        }
        if (!apply(*o, shown, value)) return out;
        break;
      }
      if (!apply(*o, shown, "")) return out;
    }
  }
  if (c.positional_required && (c.positionals == nullptr || c.positionals->empty()))
    out.error = std::string(c.positional) + " is required";
  return out;
}

// A setter for a flag.
inline std::function<std::optional<std::string>(std::string_view)> set_flag(bool& b) {
  return [&b](std::string_view) -> std::optional<std::string> {
    b = true;
    return std::nullopt;
  };
}

// A setter for a string value.
inline std::function<std::optional<std::string>(std::string_view)> set_string(std::string& s) {
  return [&s](std::string_view v) -> std::optional<std::string> {
    s = v;
    return std::nullopt;
  };
}

// A setter for one of a fixed set of values.
inline std::function<std::optional<std::string>(std::string_view)> set_choice(
    std::string& s, std::vector<std::string_view> choices) {
  return [&s, choices](std::string_view v) -> std::optional<std::string> {
    for (auto c : choices)
      if (c == v) {
        s = v;
        return std::nullopt;
      }
    std::string set;
    for (auto c : choices) set += (set.empty() ? "" : ",") + std::string(c);
    return std::string(v) + " not in {" + set + "}";
  };
}

}  // namespace nsentry::cli
