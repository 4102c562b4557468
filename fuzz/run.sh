#!/bin/bash
# Builds the two libFuzzer targets with clang++ (libFuzzer + ASan + UBSan) and runs them:
#   bootstrap_fuzz   the bootstrap codec (fuzz/bootstrap_check.hpp)
#   plan_json_fuzz   the JSON plan reader, tools/plan_json.hpp (fuzz/plan_json_check.hpp)
#
#   fuzz/run.sh [EXECUTIONS [MAX_SECONDS]] [extra libFuzzer flags...]
#
# Each target first replays its whole stored corpus, tests/fuzz_corpus/<target>/ (seeds and
# every input that ever found a bug; bootstrap also the runc captures, ../shared/testdata/
# runc-1.1.5/*.bin or $NSENTRY_SEEDS), one execution per file, and fails on the first crash.
# Then both fuzz at once, one per core, seeded with that corpus, until together they have run
# EXECUTIONS inputs (default 10000000: issue 9's figure), split between them by their speed
# (-runs=N each: bootstrap_fuzz $BOOTSTRAP_SHARE percent, default 60), or until MAX_SECONDS
# (default 300) pass, whichever comes first. The last line is the total:
#   fuzz/run.sh: 10000000 executions in total (bootstrap_fuzz 6000000 at 54545/s, ...)
# Nothing is written into the repository: binaries, grown corpora and reproducers go to a
# temporary directory, kept (and printed) only when something fails. Exit status: 0, or 1 on
# any crash, leak, sanitizer report or property violation, a build failure, or fewer than
# EXECUTIONS executions in total (the time cap came first: a machine too loaded to prove it).
set -eu
EXECUTIONS=10000000
MAX_SECONDS=300
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then EXECUTIONS=$1; shift; fi
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then MAX_SECONDS=$1; shift; fi
SHARE=${BOOTSTRAP_SHARE:-60}
runs_bootstrap=$((EXECUTIONS * SHARE / 100))
runs_plan_json=$((EXECUTIONS - runs_bootstrap))
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SEEDS=${NSENTRY_SEEDS:-$ROOT/../shared/testdata/runc-1.1.5}
CORPUS=$ROOT/tests/fuzz_corpus
CXX=${CXX_FUZZ:-clang++}
# The grown corpora are written while fuzzing: on tmpfs that takes a quarter of the system time
# it takes on disk (ext4's journal), 7-12% fewer CPU seconds for the same executions.
TMP_ROOT=${TMPDIR:-/tmp}
[ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] && TMP_ROOT=/dev/shm
WORK=$(mktemp -d "$TMP_ROOT/nsentry-fuzz.XXXXXX")
# Fewer stack frames per allocation: about +25% executions/s, reports still name the site.
export ASAN_OPTIONS=${ASAN_OPTIONS:-malloc_context_size=2:quarantine_size_mb=16}
# Coverage only in nsentry's functions, Boost.JSON's and the entry point (clang matches the
# mangled names; src:* is needed too): libstdc++ internals add edges that guide nothing and
# cost about 25% of the executions.
printf 'src:*\nfun:*nsentry*\nfun:*boost4json*\nfun:LLVMFuzzerTestOneInput\n' > "$WORK/coverage.txt"

FLAGS=(-std=c++20 -O2 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=all -fsanitize-coverage-allowlist="$WORK/coverage.txt"
       -I"$ROOT/include" -I"$ROOT")
"$CXX" "${FLAGS[@]}" "$ROOT/fuzz/bootstrap_fuzz.cpp" -o "$WORK/bootstrap_fuzz" &
b=$!
"$CXX" "${FLAGS[@]}" "$ROOT/fuzz/plan_json_fuzz.cpp" -o "$WORK/plan_json_fuzz" -lboost_json &
j=$!
status=0
wait $b || status=1
wait $j || status=1
if [ "$status" -ne 0 ]; then
  echo "fuzz/run.sh: build failed; kept $WORK" >&2
  exit 1
fi

mkdir -p "$WORK/bootstrap" "$WORK/plan_json"
cp "$SEEDS"/*.bin "$WORK/bootstrap/"
cd "$WORK"

# 1. Replay: every stored input once, so an old bug stays fixed.
for t in bootstrap plan_json; do
  files=()
  while IFS= read -r -d '' f; do files+=("$f"); done \
    < <(find "$CORPUS/$t" "$WORK/$t" -type f ! -name 'README*' -print0 | sort -z)
  if ! ./${t}_fuzz -artifact_prefix="$WORK/$t-" "${files[@]}" > "$WORK/$t-replay.log" 2>&1; then
    tail -n 40 "$WORK/$t-replay.log" >&2
    echo "fuzz/run.sh: $t: a stored input fails; kept $WORK" >&2
    exit 1
  fi
  echo "fuzz/run.sh: $t: replayed ${#files[@]} stored inputs"
done

# 2. Fuzz, both targets at once. New inputs go to $WORK/<target>; the stored corpus is read only.
start=$(date +%s)
for t in bootstrap plan_json; do
  ( rc=0
    eval "runs=\$runs_$t"
    ./${t}_fuzz -runs="$runs" -max_total_time="$MAX_SECONDS" -print_final_stats=1 \
      -artifact_prefix="$WORK/$t-" "$@" "$WORK/$t" "$CORPUS/$t" > "$WORK/$t.log" 2>&1 || rc=$?
    times > "$WORK/$t.cpu"  # line 2: the fuzzer's user and system CPU time
    exit $rc ) &
  eval "pid_$t=$!"
done
total=0
cpu_total=0
summary=""
for t in bootstrap plan_json; do
  eval "pid=\$pid_$t"
  if ! wait "$pid"; then
    status=1
    grep -v '^#' "$WORK/$t.log" | tail -n 60 >&2
    echo "fuzz/run.sh: ${t}_fuzz failed; reproducer in $WORK/$t-*" >&2
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$WORK/$t.log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$WORK/$t.log")
  runs=${runs:-0}
  total=$((total + runs))
  cpu=$(awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }
               printf "%.0f", t }' "$WORK/$t.cpu" 2>/dev/null || echo 0)
  cpu_total=$((cpu_total + cpu))
  summary="$summary${summary:+, }${t}_fuzz $runs at ${rate:-0}/s on ${cpu:-0} CPU s"
done
# CPU seconds show how much of the two cores the fuzzers got: on a loaded machine far less
# than 2 x the wall time, and the run takes longer (up to MAX_SECONDS).
echo "fuzz/run.sh: $total executions in total ($summary) in $(( $(date +%s) - start )) s, $cpu_total CPU s"
if [ "$status" -eq 0 ] && [ "$total" -lt "$EXECUTIONS" ]; then
  echo "fuzz/run.sh: only $total of $EXECUTIONS executions within $MAX_SECONDS s" >&2
  status=1
fi
if [ "$status" -eq 0 ]; then
  rm -rf "$WORK"
else
  echo "fuzz/run.sh: failure; reproducers, logs and corpora kept in $WORK" >&2
fi
exit "$status"
