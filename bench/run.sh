#!/usr/bin/env bash
# The whole benchmark suite, one command: builds with -c opt, runs every comparison with its
# sides alternated (A B A B, after a warm-up) under `nice -n -10`, and writes
# bench/results/latest.json (median, p99 and the same-run ratio of every comparison, plus the
# targets of issue 10) and the plots bench/results/*.png. As root, after `bash tools/setup.sh`.
#
#   bash bench/run.sh            ~5 minutes on a 2-core machine (25 rounds)
#   bash bench/run.sh --quick    ~1-2 minutes: 7 rounds, shorter batches
#   bash bench/run.sh --filter=spawn/   only the comparisons whose group/name contains it
#
# runc vs nsentry's init (and runc's nsexec alone vs nsentry's, bench/build_nsexec.sh) needs the
# runc source and the runc builds of tests/runc/build-runc.sh and the busybox image
# of tests/runc/integration.sh under $NSENTRY_RUNC_WORK (default /var/tmp/nsentry-runc); without
# them that comparison is skipped with a note in the JSON.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "run.sh: run as root (the suite creates and joins namespaces)" >&2
  exit 1
fi
cd "$(dirname "$(readlink -f "$0")")/.."
start=$SECONDS

suite_args=() quick=0
for a in "$@"; do
  case $a in
    --quick) quick=1; suite_args+=(--quick) ;;
    --filter=* | --rounds=* | --batch-ms=*) suite_args+=("$a") ;;
    -h | --help) sed -n 2,14p "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $a" >&2; exit 2 ;;
  esac
done

out=$PWD/bench/results
raw=$out/raw
mkdir -p "$raw"
logs=$(mktemp -d /tmp/nsentry-bench.XXXXXX)

echo "== bazel build -c opt (log: $logs/build.log)"
if ! bazel build -c opt //bench:spawn_bench //bench:runc_init_bench //bench:bootstrap_bench \
  //bench:enter_floor //bench:nsentry_init_program //bench:nsentry_init_program_noclone \
  //bench:init_floor_program //bench:init_floor_program_noclone \
  //tools:nsentry >"$logs/build.log" 2>&1; then
  tail -n 30 "$logs/build.log" >&2
  exit 1
fi
bin=$(bazel info -c opt bazel-bin 2>/dev/null)
# Every program whose start is measured runs from an installed copy (`install`, as a package
# would put it), not from the file the linker wrote: the same bytes exec measurably slower from
# the linker's output (nsentry enter 8-10 %, enter_floor 4-6 % here, same path depth, same
# page-fault count; a `cp` of it next to it is as fast as the installed one).
inst=$logs/installed
install -D -m 755 -t "$inst" "$bin/tools/nsentry" "$bin/bench/enter_floor" \
  "$bin/bench/nsentry_init_program" "$bin/bench/nsentry_init_program_noclone" \
  "$bin/bench/init_floor_program" "$bin/bench/init_floor_program_noclone"
export NSENTRY_BIN=$inst/nsentry ENTER_FLOOR_BIN=$inst/enter_floor

# The init alone: runc 1.1's nsexec built from runc's source (bench/build_nsexec.sh), padded to
# the size of nsentry's program, vs nsentry's constructor, vs a lower bound for any init
# (bench/init_floor.c).
export NSENTRY_INIT_PROGRAM=$inst/nsentry_init_program
export NSENTRY_INIT_PROGRAM_NOCLONE=$inst/nsentry_init_program_noclone
export INIT_FLOOR_PROGRAM=$inst/init_floor_program
export INIT_FLOOR_PROGRAM_NOCLONE=$inst/init_floor_program_noclone
if bash bench/build_nsexec.sh "$logs/nsexec" "$NSENTRY_INIT_PROGRAM" >"$logs/nsexec.log" 2>&1; then
  install -m 755 -t "$inst" "$logs/nsexec/nsexec_program" "$logs/nsexec/nsexec_program_noclone"
  export NSEXEC_PROGRAM=$inst/nsexec_program
  export NSEXEC_PROGRAM_NOCLONE=$inst/nsexec_program_noclone
else
  echo "== no runc source for nsexec (see $logs/nsexec.log): nsexec vs nsentry's init is skipped"
fi

# runc: a busybox bundle running /bin/true, for the stock and the nsentry build of runc.
work=${NSENTRY_RUNC_WORK:-/var/tmp/nsentry-runc}
bundle=""
if [ -x "$work/bin/stock/runc" ] && [ -x "$work/bin/nsentry/runc" ] &&
  [ -f "$work/images/busybox-rootfs.tar.xz" ] && command -v jq >/dev/null; then
  bundle=$logs/bundle
  mkdir -p "$bundle/rootfs"
  tar -C "$bundle/rootfs" -xf "$work/images/busybox-rootfs.tar.xz"
  (cd "$bundle" && "$work/bin/stock/runc" spec)
  jq '.process.terminal = false | .process.args = ["/bin/true"]' "$bundle/config.json" \
    >"$bundle/c.json" && mv "$bundle/c.json" "$bundle/config.json"
  export RUNC_STOCK=$work/bin/stock/runc RUNC_NSENTRY=$work/bin/nsentry/runc RUNC_BUNDLE=$bundle
  export RUNC_STATE=$logs/runc-state
else
  echo "== no runc build under $work: runc vs nsentry's init is skipped"
fi
cleanup() { rm -rf "$logs/bundle" "$logs"/runc-state-* "$logs/nsexec"; }
trap cleanup EXIT

# Each binary alone, niced; inside, the sides of a comparison alternate.
run() {
  local name=$1
  shift
  echo "== $name ($((SECONDS - start)) s in)"
  nice -n -10 "$@" | tee "$logs/$name.txt"
}
run spawn_bench "$bin/bench/spawn_bench" "${suite_args[@]}" --json="$raw/spawn_bench.json"
run runc_init_bench "$bin/bench/runc_init_bench" "${suite_args[@]}" \
  --json="$raw/runc_init_bench.json"
# Parse per capture (bench/bootstrap_bench.cpp): rounds of getppid() and parse batches,
# alternating which goes first, thread CPU time; the median of the per-round ratios.
rounds=$([ $quick = 1 ] && echo 51 || echo 301)
echo "== bootstrap_bench ($((SECONDS - start)) s in; parse + validate per capture vs getppid, $rounds alternating rounds)"
(cd "$PWD" && NSENTRY_CAPTURES=${NSENTRY_CAPTURES:-$PWD/../shared/testdata/runc-1.1.5} \
  nice -n -10 "$bin/bench/bootstrap_bench" --rounds="$rounds" --json="$raw/bootstrap_bench.json" \
  >"$logs/bootstrap_bench.txt" 2>&1) || echo "   bootstrap_bench failed: $logs/bootstrap_bench.txt"

python=/usr/bin/python3
"$python" bench/plot.py merge --seconds=$((SECONDS - start)) --quick=$quick \
  --out "$out/latest.json" "$raw"/*.json
if "$python" -c 'import matplotlib' 2>/dev/null; then
  "$python" bench/plot.py plot "$out/latest.json" "$out"
else
  echo "== no python3-matplotlib (bash tools/setup.sh --deps-only): no plots"
fi
echo "== done in $((SECONDS - start)) s: $out/latest.json"
