// Paired "must compile / must not compile" checks of the type-level API.
//
// Each tests/compile_fail/<name>.cpp compiles cleanly as written and must fail to compile with
// -DNSENTRY_MISUSE, with a diagnostic containing one of its "// expect:" lines — so a snippet
// that fails for an unrelated reason (a typo, a missing include) is caught too.
// The compiler is $CXX (default c++), the one the rest of the build uses.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct outcome {
  int status;
  std::string output;
};

outcome compile(const std::string& file, bool misuse) {
  const char* cxx = std::getenv("CXX");
  std::string cmd = std::string(cxx && *cxx ? cxx : "c++") +
                    " -std=c++20 -fsyntax-only -Wall -Wextra -Werror -Iinclude " +
                    (misuse ? "-DNSENTRY_MISUSE " : "") + file + " 2>&1";
  outcome o{0, {}};
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::array<char, 4096> buf;
  while (std::size_t n = std::fread(buf.data(), 1, buf.size(), p)) o.output.append(buf.data(), n);
  o.status = ::pclose(p);
  return o;
}

std::vector<std::string> expectations(const std::string& file) {
  std::ifstream in(file);
  REQUIRE(in.good());
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    if (line.rfind("// expect: ", 0) == 0) out.push_back(line.substr(11));
  REQUIRE_FALSE(out.empty());
  return out;
}

void check_snippet(const std::string& name) {
  std::string file = "tests/compile_fail/" + name + ".cpp";
  CAPTURE(file);
  auto ok = compile(file, false);
  CAPTURE(ok.output);
  CHECK_MESSAGE(ok.status == 0, "the well-formed half must compile");
  auto bad = compile(file, true);
  CAPTURE(bad.output);
  CHECK_MESSAGE(bad.status != 0, "the misuse must not compile");
  bool matched = false;
  for (const auto& e : expectations(file))
    matched = matched || bad.output.find(e) != std::string::npos;
  CHECK_MESSAGE(matched, "the misuse failed, but not for the expected reason");
}

}  // namespace

TEST_CASE("ns_set | non-namespace clone flag does not compile") {
  check_snippet("ns_set_or_clone_flag");
}
TEST_CASE("ns_set from a constant with stray bits does not compile") {
  check_snippet("ns_set_stray_bits");
}
TEST_CASE("ns_set is not implicitly constructible from an int") {
  check_snippet("ns_set_implicit_int");
}
TEST_CASE("ns_set from a run-time int does not compile") { check_snippet("ns_set_runtime_int"); }
TEST_CASE("thread-scoped set with user_ns does not compile") {
  check_snippet("thread_scoped_user");
}
TEST_CASE("thread-scoped set with time_ns does not compile") {
  check_snippet("thread_scoped_time");
}
TEST_CASE("unique_fd copy does not compile") { check_snippet("unique_fd_copy"); }
TEST_CASE("enter_scoped<user_ns> does not compile") { check_snippet("enter_scoped_user"); }
TEST_CASE("enter_scoped<time_ns> does not compile") { check_snippet("enter_scoped_time"); }
TEST_CASE("spawn with a child function that may throw does not compile") {
  check_snippet("spawn_throwing_fn");
}
