// A program that uses an installed nsentry, as a consumer project would. .ci/run builds it
// against a temporary install with CMake's find_package and with pkg-config, then runs it.
// Unprivileged and syscall-free: it checks the package, not the kernel.
#include <iostream>
#include <nsentry/nsentry.hpp>
#include <nsentry/version.hpp>

int main() {
  static_assert(NSENTRY_VERSION >= 200, "find_package(nsentry 0.2) / nsentry.pc >= 0.2");
  auto map = nsentry::id_map::parse("0 100000 65536\n", nsentry::step::uid_map);
  auto bad = nsentry::id_map::parse("0 100000\n", nsentry::step::uid_map);
  constexpr auto kinds = nsentry::ns_set::of<nsentry::user_ns, nsentry::net_ns>();
  if (!map || map.value().size() != 1 || bad || kinds.size() != 2) {
    std::cerr << "consumer: unexpected results from nsentry\n";
    return 1;
  }
  std::cout << "consumer: nsentry " << nsentry::version_string << " ok\n";
  return 0;
}
