#!/usr/bin/env bash
# Smoke runs of the examples (docs/cookbook.md): each runs its example against a real target and
# checks a fact the example claims. Root; needs `bazel build //examples/... //tools:nsentry`
# first. Prints one line per example, "example NAME: ok|FAILED" (a failure's log before it), and
# finally "N passed, M failed"; exits non-zero if any failed.
#
#   bash examples/smoke.sh [NAME...]     (default: all)
# Environment: BAZEL_BIN (default: `bazel info bazel-bin`), EXAMPLES_HEAP_MIB (default 1024).
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "examples/smoke.sh: run as root" >&2
  exit 2
fi
bin=${BAZEL_BIN:-$(bazel info bazel-bin 2>/dev/null)}
ex=$bin/examples
nsentry=$bin/tools/nsentry
tmp=$(mktemp -d /tmp/nsentry-examples.XXXXXX)
chmod 755 "$tmp"
netns=nsentry-ex-$$
bg_pids=()
cleanup() {
  local i p
  # Newest first, SIGKILL: a pid namespace's init ignores SIGTERM, and unshare --fork ignores it
  # while it waits for that init.
  for ((i = ${#bg_pids[@]} - 1; i >= 0; i--)); do
    p=${bg_pids[i]}
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  ip netns del "$netns" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "check failed: $*"; return 1; }
ino() { stat -L -c %i "$1"; }

# A network namespace for examples 1 and 5, loopback up.
make_netns() {
  [ -e "/run/netns/$netns" ] && return 0
  ip netns add "$netns" && ip netns exec "$netns" ip link set lo up
}

# 1. Worker threads listen inside the netns: the sockets are seen there (ss in the netns, with
# the server's pid), not on the host, and answer a connection made from inside.
smoke_threaded_netns_server() {
  make_netns || return 1
  local out=$tmp/server.out port
  "$ex/threaded_netns_server" "/run/netns/$netns" 3 7000 >"$out" 2>&1 &
  local srv=$!
  bg_pids+=("$srv")
  for _ in $(seq 50); do [ "$(grep -c listening "$out")" -eq 3 ] && break; sleep 0.1; done
  cat "$out"
  [ "$(grep -c listening "$out")" -eq 3 ] || fail "3 workers listening"  || return 1
  local inside host
  inside=$(ip netns exec "$netns" ss -ltnpH)
  host=$(ss -ltnpH)
  echo "in the netns:"; echo "$inside"
  for port in 7000 7001 7002; do
    grep -q "127.0.0.1:$port .*pid=$srv," <<<"$inside" || fail "port $port in the netns" || return 1
  done
  ! grep -q "pid=$srv," <<<"$host" || fail "no socket of the server on the host" || return 1
  for port in 7000 7001 7002; do
    local reply
    reply=$(nsenter --net="/run/netns/$netns" timeout 5 bash -c \
      "exec 3<>/dev/tcp/127.0.0.1/$port && cat <&3")
    echo "port $port: $reply"
    [ "$reply" = "hello from worker $((port - 7000))" ] || fail "reply on $port" || return 1
  done
  wait "$srv" || fail "server exit status" || return 1
  grep -q "all 3 workers served one connection" "$out"
}

# A target in new mnt/uts/ipc/net/pid/cgroup namespaces; sets $target.
start_target() {
  unshare --mount --uts --ipc --net --pid --cgroup --fork --mount-proc --kill-child sleep 120 &
  local u=$!
  bg_pids+=("$u")
  target=""
  for _ in $(seq 50); do target=$(pgrep -P "$u") && [ -n "$target" ] && break; sleep 0.1; done
  [ -n "$target" ] || fail "target started" || return 1
  bg_pids+=("$target")  # not our child: killed, not waited for
}

# 2. The command's namespace inodes are the target's, kind by kind.
smoke_spawn_large_heap() {
  start_target || return 1
  local got want k
  got=$("$ex/spawn_large_heap" "$target" "${EXAMPLES_HEAP_MIB:-1024}") || fail "exit status" || return 1
  want=$(for k in cgroup ipc mnt net pid uts; do echo "$k $(ino "/proc/$target/ns/$k")"; done)
  echo "command saw:"; echo "$got"; echo "target has:"; echo "$want"
  [ "$got" = "$want" ] || fail "inodes equal the target's"
}

# 3. Driven like runc: a strict pid report, and main runs as stage-2 — pid 1, in namespaces
# that are not ours.
smoke_minimal_runc_init() {
  echo '{"create":["ipc","mnt","net","pid","uts"]}' >"$tmp/plan.json"
  "$nsentry" encode --runc 1.2 "$tmp/plan.json" >"$tmp/msg.bin" || fail "encode" || return 1
  local out k
  out=$(timeout 30 python3 examples/runc_driver.py "$ex/minimal_runc_init" "$tmp/msg.bin") ||
    { echo "$out"; fail "driver exit status"; return 1; }
  echo "$out"
  grep -Eq '^pid report: \{"stage1_pid":[0-9]+,"stage2_pid":[0-9]+\}$' <<<"$out" ||
    fail "pid report" || return 1
  grep -qx 'role=stage-2' <<<"$out" && grep -qx 'pid=1' <<<"$out" && grep -qx 'uid=0' <<<"$out" ||
    fail "stage-2 as pid 1, uid 0" || return 1
  for k in ipc mnt net pid uts; do
    local in
    in=$(sed -n "s/^ns\.$k=//p" <<<"$out")
    [ -n "$in" ] && [ "$in" != 0 ] && [ "$in" != "$(ino /proc/self/ns/$k)" ] ||
      fail "$k namespace is a new one" || return 1
  done
}

# 4. As an unprivileged user: uid_map and gid_map inside show the 3 ranges, id -u is 0.
smoke_rootless_sandbox() {
  local user=nsentry-test
  # As tests/exec_test_util.hpp's ensure_user: the user, and a subordinate range if it has none.
  getent passwd "$user" >/dev/null || useradd -M -s /bin/sh "$user" || return 1
  local f
  for f in /etc/subuid /etc/subgid; do
    grep -q "^$user:" "$f" || echo "$user:200000:65536" >>"$f"
  done
  local uid gid su sc gu gc
  uid=$(id -u "$user"); gid=$(id -g "$user")
  IFS=: read -r _ su sc < <(grep "^$user:" /etc/subuid | head -n 1)
  IFS=: read -r _ gu gc < <(grep "^$user:" /etc/subgid | head -n 1)
  # bazel-bin may sit where the user cannot enter: run a copy.
  cp "$ex/rootless_sandbox" "$tmp/rootless_sandbox" && chmod 755 "$tmp/rootless_sandbox"
  local out
  out=$(cd /tmp && timeout 30 runuser -u "$user" -- "$tmp/rootless_sandbox") ||
    { echo "$out"; fail "exit status"; return 1; }
  echo "$out"
  local norm want
  norm=$(awk '{ if ($0 == "---") print; else if (NF == 3) print $1, $2, $3; else print }' <<<"$out")
  want=$(printf '0 %s 1\n1 %s 1000\n1001 %s %s\n---\n0 %s 1\n1 %s 1000\n1001 %s %s\n---\n0' \
    "$uid" "$su" $((su + 1000)) $((sc - 1000)) "$gid" "$gu" $((gu + 1000)) $((gc - 1000)))
  [ "$norm" = "$want" ] || { echo "expected:"; echo "$want"; fail "3-range maps, uid 0"; }
}

# 5. The final function ran in the joined netns (the file's inode), in a new uts namespace
# with the hostname it set, after our handler wrote the maps.
smoke_custom_sequence() {
  make_netns || return 1
  local out
  out=$("$ex/custom_sequence" "/run/netns/$netns") || { echo "$out"; fail "exit status"; return 1; }
  echo "$out"
  grep -q '^handler: writing id maps of pid [0-9]*$' <<<"$out" || fail "handler ran" || return 1
  local line
  line=$(grep '^net=' <<<"$out")
  [[ $line == "net=$(ino "/run/netns/$netns") "* ]] || fail "net is the joined netns" || return 1
  [[ $line != *"uts=$(ino /proc/self/ns/uts) "* ]] || fail "uts is a new one" || return 1
  [[ $line == *" hostname=custom" ]] || fail "hostname set inside"
}

all=(threaded_netns_server spawn_large_heap minimal_runc_init rootless_sandbox custom_sequence)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=("${all[@]}")
passed=0
failed=0
for name in "${names[@]}"; do
  log=$tmp/$name.log
  if [ -x "$ex/$name" ] && "smoke_$name" >"$log" 2>&1; then
    echo "example $name: ok"
    passed=$((passed + 1))
  else
    [ -x "$ex/$name" ] || echo "no $ex/$name: bazel build //examples/... first" >>"$log"
    sed 's/^/  | /' "$log"
    echo "example $name: FAILED"
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
