#!/usr/bin/env bash
# Builds Debian's runc 1.1.5 twice from one source tree: stock, and with libcontainer/nsenter's C
# code (nsexec.c, cloned_binary.c, escape.c, namespace.h) replaced by one C++ file that includes
# nsentry/runc/constructor.hpp with NSENTRY_RUNC_PROTOCOL 11.
#
#   sudo bash tests/runc/build-runc.sh        # as root: apt sources, build-deps
#
# Output ($NSENTRY_RUNC_WORK, default /var/tmp/nsentry-runc):
#   bin/stock/runc, bin/nsentry/runc     the two binaries (named runc: help.bats reads the name)
#   env.sh                               GOPATH/GOCACHE/CGO_* of the nsentry tree (for go test)
#   nsentry/src/github.com/opencontainers/runc   the nsentry tree (a copy of the GOPATH tree)
#
# Steps, each skipped when already done (a re-run with nothing changed takes seconds):
#  1. a deb-src entry for Debian's archive (same URI and suite as the deb entry) in
#     /etc/apt/sources.list.d/nsentry-deb-src.sources; apt-get update when it was added;
#  2. apt-get source runc into $WORK/src; apt-get build-dep runc (only if dpkg-checkbuilddeps
#     says something is missing);
#  3. stock: DEB_BUILD_OPTIONS=nocheck dpkg-buildpackage -b (offline; dh-golang's GOPATH tree is
#     _build/), binary copied to bin/stock/runc;
#  4. nsentry: the runc package of that GOPATH tree copied (dependencies stay symlinks), nsenter's
#     C files removed, nsenter.go's preamble replaced, nsentry.cpp added; `go build` with the
#     same tags and ldflags as debian/rules. libstdc++/libgcc are linked statically: loading
#     libstdc++.so into every runc process costs ~10% of a `runc run` (docs/runc.md). Rebuilt
#     when nsentry's headers change (their hash is in CGO_CXXFLAGS: Go's cache ignores them).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${NSENTRY_RUNC_WORK:-/var/tmp/nsentry-runc}
mkdir -p "$work/src" "$work/bin/stock" "$work/bin/nsentry"
log() { echo "build-runc: $*" >&2; }

# 1. deb-src
src_list=/etc/apt/sources.list.d/nsentry-deb-src.sources
if [ ! -f "$src_list" ]; then
  deb=/etc/apt/sources.list.d/debian.sources
  # The first stanza of debian.sources: the main archive.
  uri=$(awk '/^URIs:/ {print $2; exit}' "$deb")
  suite=$(awk '/^Suites:/ {print $2; exit}' "$deb")
  key=$(awk '/^Signed-By:/ {print $2; exit}' "$deb")
  log "adding deb-src $uri $suite"
  printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' \
    "$uri" "$suite" "${key:-/usr/share/keyrings/debian-archive-keyring.gpg}" >"$src_list"
  apt-get update -q
fi

# 2. source and build dependencies
tree=$(find "$work/src" -maxdepth 1 -type d -name 'runc-*' | head -n 1)
if [ -z "$tree" ]; then
  log "apt-get source runc"
  (cd "$work/src" && apt-get source -q runc) || { apt-get update -q && (cd "$work/src" && apt-get source -q runc); }
  tree=$(find "$work/src" -maxdepth 1 -type d -name 'runc-*' | head -n 1)
fi
if ! (cd "$tree" && dpkg-checkbuilddeps) >/dev/null 2>&1; then
  log "apt-get build-dep runc"
  DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -q runc >/dev/null
fi
# gawk: runc's helpers.bash calls it.
command -v gawk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q gawk >/dev/null
# Boost's headers and g++ come with nsentry's own dependencies (tools/setup.sh --deps-only).
[ -f /usr/include/boost/outcome.hpp ] && command -v g++ >/dev/null ||
  { log "missing Boost headers or g++: run tools/setup.sh --deps-only first"; exit 1; }

# 3. stock
if [ ! -x "$work/bin/stock/runc" ]; then
  if [ ! -x "$tree/_build/bin/runc" ]; then
    log "dpkg-buildpackage (stock runc; log in $work/stock-build.log)"
    (cd "$tree" && DEB_BUILD_OPTIONS="nocheck parallel=2" dpkg-buildpackage -b -uc -us) \
      >"$work/stock-build.log" 2>&1 || { tail -n 30 "$work/stock-build.log"; exit 1; }
  fi
  cp "$tree/_build/bin/runc" "$work/bin/stock/runc"
fi

# 4. nsentry
gopath=$work/nsentry
pkg=$gopath/src/github.com/opencontainers/runc
ns=$pkg/libcontainer/nsenter
upstream_version=$(cd "$tree" && dpkg-parsechangelog -S Version)
tags="seccomp urfave_cli_no_docs"
ldflags="-X main.version=${upstream_version%%-*} -X main.gitCommit=$upstream_version+nsentry"
# Go's build cache does not hash headers outside the package: the headers' hash goes into the
# compiler flags, which it does hash, so a changed header rebuilds nsentry.cpp.
headers=$(cd "$repo" && find include/nsentry -type f -name '*.hpp' | sort | xargs sha256sum | sha256sum | cut -c1-16)
cat >"$work/env.sh" <<EOF
export GOPATH=$gopath
export GOCACHE=$work/go-cache
export GO111MODULE=off
export GOPROXY=off
export CGO_CXXFLAGS="-O2 -g -std=c++20 -I$repo/include -DNSENTRY_HEADERS=$headers"
export CGO_LDFLAGS="-static-libstdc++ -static-libgcc"
export NSENTRY_RUNC_TAGS="$tags"
EOF

if [ ! -d "$pkg" ]; then
  log "copying the GOPATH tree for the nsentry build"
  mkdir -p "$gopath"
  cp -a "$tree/_build/src" "$gopath/"  # the dependencies are symlinks into /usr/share/gocode
  rm -rf "$pkg"
  cp -a "$tree/_build/src/github.com/opencontainers/runc" "$pkg"  # a real copy, not links
fi
rm -f "$ns/nsexec.c" "$ns/cloned_binary.c" "$ns/escape.c" "$ns/namespace.h"
rm -rf "$ns/test"  # escape.c's own test package: nsentry's escaping is tested in nsentry
cat >"$ns/nsenter.go" <<'EOF'
//go:build linux && !gccgo
// +build linux,!gccgo

package nsenter

// nsentry stands in for nsexec here: nsentry.cpp installs the ELF constructor. The include path and the static libstdc++ come from CGO_CXXFLAGS/CGO_LDFLAGS
// (tests/runc/build-runc.sh).

/*
#cgo CXXFLAGS: -std=c++20 -Wall -Wextra
*/
import "C"
EOF
cat >"$ns/nsentry.cpp" <<'EOF'
// runc's nsexec, by nsentry: runc 1.1's protocol (setup byte, sealed self-clone, mount sources).
#define NSENTRY_RUNC_PROTOCOL 11
#include "nsentry/runc/constructor.hpp"
EOF

out=$work/bin/nsentry/runc
if [ -x "$out" ] && [ "$(cat "$out.headers" 2>/dev/null)" = "$headers" ] &&
  [ -z "$(find "$repo/include/nsentry" "$0" -newer "$out" -print -quit)" ]; then
  log "up to date: $out"
else
  log "go build (nsentry runc)"
  start=$(date +%s)
  # shellcheck disable=SC1091
  (. "$work/env.sh" && cd "$gopath/src/github.com/opencontainers/runc" &&
    go build -trimpath -p 2 -tags "$tags" -ldflags "$ldflags" -o "$out.tmp" .)
  mv "$out.tmp" "$out"
  echo "$headers" >"$out.headers"
  log "built $out in $(($(date +%s) - start)) s"
fi
if ldd "$out" | grep -q 'libstdc++'; then
  log "error: $out links libstdc++ dynamically"
  exit 1
fi
ls -l "$work/bin/stock" "$work/bin/nsentry"
