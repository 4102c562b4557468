#!/usr/bin/env bash
# runc's own libcontainer/nsenter/nsenter_test.go (its four nsexec cases) against the nsentry
# build: the test binary is linked with nsentry.cpp in place of nsexec.c, re-executes itself as
# the init, and checks the setup byte, the pid JSON (strictly), the exit statuses and the log.
# Debian disables the file (`// +build ignore`: it needs root); here it runs, as root.
#
#   sudo bash tests/runc/nsenter-test.sh      # after build-runc.sh
#
# Last line: "nsenter_test: P passed, F failed". Exit status: go test's.
set -uo pipefail
work=${NSENTRY_RUNC_WORK:-/var/tmp/nsentry-runc}
[ -f "$work/env.sh" ] || { echo "nsenter-test: run tests/runc/build-runc.sh first" >&2; exit 1; }
# shellcheck disable=SC1091
. "$work/env.sh"
tree=$(find "$work/src" -maxdepth 1 -type d -name 'runc-*' | head -n 1)
ns=$GOPATH/src/github.com/opencontainers/runc/libcontainer/nsenter
grep -v '^// +build ignore$' "$tree/libcontainer/nsenter/nsenter_test.go" >"$ns/nsenter_test.go"
log=$(mktemp)
(cd "$ns" && go test -count=1 -v -tags "$NSENTRY_RUNC_TAGS" .) >"$log" 2>&1
rc=$?
cat "$log"
p=$(grep -c '^--- PASS' "$log")
f=$(grep -c '^--- FAIL' "$log")
[ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || f=1  # did not build or run: one failure
rm -f "$log"
echo "nsenter_test: $p passed, $f failed"
exit $rc
