#!/usr/bin/env bash
# `runc run` and `runc exec` of /bin/true: nsentry build vs stock (build-runc.sh), alternating
# A B A B so that drift hits both alike, each invocation under `nice -n -10`. Prints per binary
# median, p10..p90 and min..max in ms, and the ratio nsentry/stock of the medians.
#
#   sudo bash tests/runc/bench.sh [RUNS]          # RUNS per binary and operation, default 50
#
# As root (a root container: the common case). The busybox rootfs comes from integration.sh.
set -euo pipefail
work=${NSENTRY_RUNC_WORK:-/var/tmp/nsentry-runc}
runs=${1:-50}
image=$work/images/busybox-rootfs.tar.xz
[ -x "$work/bin/stock/runc" ] && [ -x "$work/bin/nsentry/runc" ] ||
  { echo "bench: run tests/runc/build-runc.sh first" >&2; exit 1; }
[ -f "$image" ] || { echo "bench: no $image (run tests/runc/integration.sh once)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/nsentry-runc-bench.XXXXXX)
cleanup() {
  for b in stock nsentry; do
    "$work/bin/$b/runc" --root "$tmp/state-$b" delete -f "bench-exec-$b" >/dev/null 2>&1 || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/bundle/rootfs"
tar -C "$tmp/bundle/rootfs" -xf "$image"
(cd "$tmp/bundle" && "$work/bin/stock/runc" spec)
jq '.process.terminal = false | .process.args = ["/bin/true"]' "$tmp/bundle/config.json" >"$tmp/c.json"
mv "$tmp/c.json" "$tmp/bundle/config.json"
mkdir -p "$tmp/sleep/rootfs"
mount --bind "$tmp/bundle/rootfs" "$tmp/sleep/rootfs"
trap 'umount "$tmp/sleep/rootfs" 2>/dev/null; cleanup' EXIT
jq '.process.args = ["/bin/sleep", "100000"]' "$tmp/bundle/config.json" >"$tmp/sleep/config.json"

# One timed invocation: prints elapsed microseconds.
timed() {
  local t0 t1
  t0=$EPOCHREALTIME
  nice -n -10 "$@" </dev/null >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; return 1; }
  t1=$EPOCHREALTIME
  echo $(( (${t1/./} - ${t0/./}) ))
}

for b in stock nsentry; do
  (cd "$tmp/sleep" && "$work/bin/$b/runc" --root "$tmp/state-$b" run -d "bench-exec-$b" \
    </dev/null >/dev/null 2>&1)
done

: >"$tmp/samples"
for i in $(seq 1 "$runs"); do
  for b in stock nsentry; do
    r=$work/bin/$b/runc
    (cd "$tmp/bundle" && echo "run $b $(timed "$r" --root "$tmp/state-$b" run "bench-$b-$i")") >>"$tmp/samples"
    echo "exec $b $(timed "$r" --root "$tmp/state-$b" exec "bench-exec-$b" /bin/true)" >>"$tmp/samples"
  done
done

python3 - "$tmp/samples" <<'EOF'
import statistics, sys
s = {}
for line in open(sys.argv[1]):
    op, b, us = line.split()
    s.setdefault((op, b), []).append(int(us) / 1000)
def q(v, p):
    v = sorted(v); return v[min(len(v) - 1, int(p * len(v)))]
for op in ("run", "exec"):
    med = {}
    for b in ("stock", "nsentry"):
        v = s[(op, b)]
        med[b] = statistics.median(v)
        print(f"{op:4} {b:7} n={len(v)} median {med[b]:7.2f} ms  p10..p90 {q(v, .1):.2f}..{q(v, .9):.2f}"
              f"  min..max {min(v):.2f}..{max(v):.2f}")
    print(f"{op:4} ratio nsentry/stock (medians): {med['nsentry'] / med['stock']:.3f}")
EOF
