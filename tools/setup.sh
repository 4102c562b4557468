#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for nsentry and runs its main job.
#   sudo bash tools/setup.sh              install packages, build everything, run a demo
#   sudo bash tools/setup.sh --deps-only  install packages only (what .ci/run uses)
set -euo pipefail
cd "$(dirname "$0")/.."

# Every package the build, the tests, the benchmarks and the fuzzer need. Keep this list the
# single source of truth.
PACKAGES=(
  bazel-bootstrap bazel-rules-java   # Bazel 4.2.3 + the rules_java it resolves offline
  g++ clang libclang-rt-14-dev       # compilers; clang's libFuzzer and sanitizer runtimes
  libboost1.81-dev libboost-json1.81-dev  # Boost.Outcome (header-only), Boost.JSON
  doctest-dev libbenchmark-dev libcli11-dev
  uidmap util-linux passwd iproute2  # newuidmap/newgidmap, nsenter/unshare, useradd, ip
  runc                               # reference runtime for comparison
)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (it installs Debian packages)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y "${PACKAGES[@]}"

[ "${1:-}" = "--deps-only" ] && exit 0

bazel build //...
nsentry=bazel-bin/tools/nsentry
capture=../shared/testdata/runc-1.1.5/b_userns.bin
if [ -f "$capture" ]; then
  echo "== nsentry decode $capture"
  "$nsentry" decode --runc 1.1 "$capture"
fi
echo "== namespaces of this shell, then of a command run in new ones by nsentry"
ls -l /proc/self/ns/ | awk '{print $9, $11}'
printf '%s' '{"create":["uts","ipc","net","mnt","pid","cgroup"],"join":[],"uid_map":[],"gid_map":[],"setgroups":false,"rootless_euid":false,"oom_score_adj":null,"uidmap_tool":null,"gidmap_tool":null,"time_offsets":[],"mount_sources":null}' > /tmp/nsentry-demo-plan.json
"$nsentry" run --plan /tmp/nsentry-demo-plan.json -- sh -c 'ls -l /proc/self/ns/ | awk "{print \$9, \$11}"; echo "pid in the new pid namespace: $$"'
