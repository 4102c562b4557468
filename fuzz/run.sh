#!/bin/sh
# Builds fuzz/bootstrap_fuzz.cpp with clang++ (libFuzzer + ASan + UBSan) and runs it for
# SECONDS (default 60), seeded with the runc captures. Nothing is written into the repository:
# the binary, the working corpus and any crash reproducer go to a temporary directory, which
# is kept (and printed) only when the fuzzer finds something.
#   fuzz/run.sh [SECONDS] [extra libFuzzer flags...]
set -eu
SECONDS_TO_RUN=${1:-60}
[ $# -gt 0 ] && shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SEEDS=${NSENTRY_SEEDS:-$ROOT/../shared/testdata/runc-1.1.5}
CXX=${CXX_FUZZ:-clang++}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nsentry-fuzz.XXXXXX")
mkdir -p "$WORK/corpus"
cp "$SEEDS"/*.bin "$WORK/corpus/"
"$CXX" -std=c++20 -O1 -g -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -I"$ROOT/include" -I"$ROOT" "$ROOT/fuzz/bootstrap_fuzz.cpp" -o "$WORK/bootstrap_fuzz"
cd "$WORK"
status=0
./bootstrap_fuzz -max_total_time="$SECONDS_TO_RUN" -print_final_stats=1 \
  -artifact_prefix="$WORK/" "$@" corpus || status=$?
if [ "$status" -eq 0 ]; then
  rm -rf "$WORK"
else
  echo "fuzz/run.sh: failure; reproducer and corpus kept in $WORK" >&2
fi
exit "$status"
