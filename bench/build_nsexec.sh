#!/usr/bin/env bash
# Builds runc 1.1's own nsexec (nsexec.c, escape.c, cloned_binary.c from runc's source, not kept in this repository) into the
# program of bench/nsexec_program.c, with and without its self-clone, for runc_init_bench's
# `nsexec/*` comparisons against bench/nsentry_init_program.cpp:
#
#   bash bench/build_nsexec.sh OUT_DIR [PAD_TO_FILE]
#
# OUT_DIR gets nsexec_program and nsexec_program_noclone. Static and -O2, like the nsentry
# program (bazel -c opt, -static). With PAD_TO_FILE both are padded with zeros after the ELF
# image to that file's size, so that a self-clone which copies the binary copies as many bytes
# on both sides (the padding is not loaded). The source: $NSENTRY_RUNC_SRC (default
# /var/tmp/nsentry-runc/src/runc-1.1.5+ds1, unpacked by tests/runc/build-runc.sh).
set -euo pipefail
out=${1:?usage: build_nsexec.sh OUT_DIR [PAD_TO_FILE]}
pad_to=${2:-}
src=${NSENTRY_RUNC_SRC:-/var/tmp/nsentry-runc/src/runc-1.1.5+ds1}/libcontainer/nsenter
here=$(dirname "$(readlink -f "$0")")
if [ ! -f "$src/nsexec.c" ] || [ ! -f "$src/escape.c" ] || [ ! -f "$src/cloned_binary.c" ]; then
  echo "build_nsexec.sh: no runc source at $src (tests/runc/build-runc.sh unpacks it)" >&2
  exit 1
fi
mkdir -p "$out"
cc=${CC:-gcc}
flags=(-O2 -static -w -I"$src")
"$cc" "${flags[@]}" -o "$out/nsexec_program" "$here/nsexec_program.c" "$src/nsexec.c" \
  "$src/escape.c" "$src/cloned_binary.c"
"$cc" "${flags[@]}" -DNSEXEC_NO_CLONE -o "$out/nsexec_program_noclone" \
  "$here/nsexec_program.c" "$src/nsexec.c" "$src/escape.c"
if [ -n "$pad_to" ]; then
  size=$(stat -c %s "$pad_to")
  for f in "$out/nsexec_program" "$out/nsexec_program_noclone"; do
    [ "$(stat -c %s "$f")" -lt "$size" ] && truncate -s "$size" "$f"
  done
fi
ls -l "$out"
