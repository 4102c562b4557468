#!/usr/bin/env bash
# Sets up a Debian 12 machine for nsentry and runs its main job: installs the packages, builds
# everything, runs a demo, prints a short summary. As root, or as a user with sudo (it re-runs
# itself under sudo). Details go to log files; a failing step prints the end of its log.
#   bash tools/setup.sh              install packages, build everything, run a demo
#   bash tools/setup.sh --deps-only  install packages only (what .ci/run uses)
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    exec sudo -- bash "$(readlink -f "$0")" "$@"
  fi
  echo "setup.sh: run as root (it installs Debian packages); sudo is not installed" >&2
  exit 1
fi
cd "$(dirname "$(readlink -f "$0")")/.."

# Every package the build, the tests, the benchmarks, the fuzzer and the CMake/pkg-config
# consumer check need. Keep this list the single source of truth.
PACKAGES=(
  bazel-bootstrap bazel-rules-java   # Bazel 4.2.3 + the rules_java it resolves offline
  g++ clang libclang-rt-14-dev       # compilers; clang's libFuzzer and sanitizer runtimes
  clang-format git                   # the style check (.clang-format) in .ci/run
  libboost1.81-dev libboost-json1.81-dev  # Boost.Outcome (header-only), Boost.JSON
  doctest-dev libbenchmark-dev
  cmake pkg-config                   # the consumer packaging (CMakeLists.txt, nsentry.pc)
  uidmap util-linux passwd iproute2  # newuidmap/newgidmap, nsenter/unshare, useradd, ip
  runc                               # reference runtime for comparison
  python3-matplotlib                 # bench/plot.py: the benchmark plots
)

logs=$(mktemp -d /tmp/nsentry-setup.XXXXXX)
# step NAME LOG COMMAND...: runs COMMAND with its output in LOG; on failure shows LOG's end.
step() {
  local name=$1 log=$logs/$2
  shift 2
  if ! "$@" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "setup.sh: $name failed (full log: $log)" >&2
    exit 1
  fi
}

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  packages="all ${#PACKAGES[@]} already installed"
else
  echo "== installing ${#missing[@]} of ${#PACKAGES[@]} packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  step "apt-get update" apt.log apt-get update
  step "apt-get install" apt-install.log apt-get install -y "${PACKAGES[@]}"
  packages="installed ${missing[*]} ($(grep -Eo '[0-9]+ newly installed' \
    "$logs/apt-install.log" || echo "? newly installed") with dependencies)"
fi
if [ "${1:-}" = "--deps-only" ]; then
  echo "packages: $packages"
  exit 0
fi

echo "== bazel build //... (a few minutes on a fresh machine; log: $logs/build.log)"
start=$SECONDS
step "bazel build //..." build.log bazel build //...
built="bazel build //... ok in $((SECONDS - start)) s"
nsentry=$PWD/bazel-bin/tools/nsentry

# Demo 1: runc's bootstrap message, decoded to nsentry's JSON plan.
capture=../shared/testdata/runc-1.1.5/b_userns.bin
if [ -f "$capture" ]; then
  echo "== nsentry decode --runc 1.1 $capture"
  "$nsentry" decode --runc 1.1 "$capture"
fi

# Demo 2: a command run by nsentry in new namespaces, its namespaces against this shell's.
echo "== nsentry run --plan: sh in new uts, ipc, net, mnt, pid, cgroup namespaces"
kinds="cgroup ipc mnt net pid uts user time"
ns_ids='for k in '$kinds'; do printf "%s " "$(readlink /proc/self/ns/$k || echo -)"; done'
plan=$logs/demo-plan.json
printf '%s' '{"create":["uts","ipc","net","mnt","pid","cgroup"],"join":[],"uid_map":[],"gid_map":[],"setgroups":false,"rootless_euid":false,"oom_score_adj":null,"uidmap_tool":null,"gidmap_tool":null,"time_offsets":[],"mount_sources":null}' >"$plan"
outside=$(sh -c "$ns_ids")
if inside=$("$nsentry" run --plan "$plan" -- sh -c "$ns_ids; echo \$\$" 2>"$logs/demo.log"); then
  read -ra ids_out <<<"$outside"
  read -ra ids_in <<<"$inside"
  new="" same=""
  i=0
  for k in $kinds; do
    if [ "${ids_out[$i]}" != "${ids_in[$i]}" ]; then new+=" $k"; else same+=" $k"; fi
    i=$((i + 1))
  done
  echo "new:$new; shared with this shell:$same; the command's pid inside: ${ids_in[$i]}"
  demo="ok"
else
  cat "$logs/demo.log" >&2
  demo="FAILED (see $logs/demo.log)"
fi

echo "== summary"
echo "packages: $packages"
echo "build:    $built"
echo "binary:   $nsentry ($("$nsentry" --version))"
echo "demo:     $demo"
echo "logs:     $logs"
echo "next:     bazel test //...   (as root; see docs/build.md)"
[[ $demo == ok* ]]
