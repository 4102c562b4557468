#!/usr/bin/env bash
# Runs runc's bats integration suite, offline, against the binaries of build-runc.sh.
#
#   bash tests/runc/integration.sh [--rootless] [stock|nsentry ...] [-- FILE.bats ...]
#
# Default: both binaries, every *.bats file, as root. --rootless runs the suite as the
# unprivileged user nsentry-test (created here with subordinate ids if the library's tests have
# not made it yet) with ROOTLESS_FEATURES=idmap, as runc's own tests/rootless.sh runs it; both
# binaries took 12 min 45 s here (loaded machine).
# Results: $NSENTRY_RUNC_WORK/results/<root|rootless>-<binary>/<file>.tap; then
# tests/runc/summary.sh prints the table (and exits non-zero on regressions).
#
# Offline: the suite's get-images.sh is replaced, in a copy of the suite ($work/suite), by one
# that names a local busybox rootfs tarball built from Debian's busybox-static (DEBIAN_IMAGE, used
# only by hooks.bats, names the same tarball). The helper programs helpers.bash names are built
# from the same tree, with the Go settings of env.sh.
set -euo pipefail
work=${NSENTRY_RUNC_WORK:-/var/tmp/nsentry-runc}
mode=root
binaries=()
files=()
while [ $# -gt 0 ]; do
  case $1 in
    --rootless) mode=rootless ;;
    --) shift; files=("$@"); break ;;
    *) binaries+=("$1") ;;
  esac
  shift
done
[ ${#binaries[@]} -gt 0 ] || binaries=(stock nsentry)
log() { echo "integration: $*" >&2; }

[ -f "$work/env.sh" ] || { log "run tests/runc/build-runc.sh first"; exit 1; }
# shellcheck disable=SC1091
. "$work/env.sh"
pkg=$GOPATH/src/github.com/opencontainers/runc
tree=$(find "$work/src" -maxdepth 1 -type d -name 'runc-*' | head -n 1)
# A copy of the suite, laid out as in runc's tree (helpers.bash finds ../../{contrib,tests}/cmd/*).
suite=$work/suite/tests/integration
if [ ! -f "$suite/helpers.bash" ]; then
  mkdir -p "$work/suite/tests"
  cp -a "$tree/tests/integration" "$work/suite/tests/"
fi
cp "$tree/go.mod" "$work/suite/go.mod"  # spec.bats reads runtime-spec's version from ../../go.mod

command -v bats >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q bats >/dev/null
dpkg -s busybox-static >/dev/null 2>&1 ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >/dev/null

# The busybox rootfs: /bin/busybox from busybox-static, one link per applet, and the /etc files
# the docker busybox image has.
image=$work/images/busybox-rootfs.tar.xz
if [ ! -f "$image" ] || [ /bin/busybox -nt "$image" ]; then
  log "making $image"
  rm -rf "$work/images/rootfs"
  r=$work/images/rootfs
  mkdir -p "$r"/{bin,dev,etc,home,proc,root,sys,tmp,usr/bin,usr/sbin,sbin,var/spool/mail,var/www}
  chmod 1777 "$r/tmp"
  cp /bin/busybox "$r/bin/busybox"
  for a in $("$r/bin/busybox" --list-full); do
    [ "$a" = bin/busybox ] || ln -sf /bin/busybox "$r/$a"
  done
  cat >"$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
EOF
  cat >"$r/etc/group" <<'EOF'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
EOF
  mkdir -p "$work/images"
  tar -C "$r" --numeric-owner --owner=0 --group=0 -cJf "$image.tmp" .
  mv "$image.tmp" "$image"
  rm -rf "$r"
fi

cat >"$suite/get-images.sh" <<EOF
#!/bin/bash
# Offline (nsentry tests/runc/integration.sh): local images only.
echo "BUSYBOX_IMAGE=$image"
echo "DEBIAN_IMAGE=$image"
EOF
chmod +x "$suite/get-images.sh"

# The helper programs helpers.bash names as ${INTEGRATION_ROOT}/../../DIR/NAME (contrib/cmd/* in
# runc 1.1, tests/cmd/* in 1.2), each built from DIR of the tree.
# shellcheck disable=SC2016
mapfile -t helpers < <(sed -n 's|.*"${INTEGRATION_ROOT}/\.\./\.\./\([a-z]*/cmd/[a-z-]*/[a-z-]*\)".*|\1|p' \
  "$suite/helpers.bash")
for h in "${helpers[@]}"; do
  if [ ! -x "$work/suite/$h" ]; then
    log "go build $(dirname "$h")"
    mkdir -p "$work/suite/$(dirname "$h")"
    (cd "$pkg/$(dirname "$h")" && go build -tags "$NSENTRY_RUNC_TAGS" -o "$work/suite/$h" .)
  fi
done

if [ "$mode" = rootless ]; then
  user=nsentry-test
  id "$user" >/dev/null 2>&1 || useradd -M -s /bin/bash "$user"
  grep -q "^$user:" /etc/subuid || echo "$user:200000:65536" >>/etc/subuid
  grep -q "^$user:" /etc/subgid || echo "$user:200000:65536" >>/etc/subgid
  command -v newuidmap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q uidmap >/dev/null
  # The suite's tree and the binaries must be readable by the user.
  chmod -R a+rX "$work/bin" "$work/suite" "$work/images"
  chmod a+x "$work"
fi

cd "$suite"
[ ${#files[@]} -gt 0 ] || mapfile -t files < <(ls ./*.bats | sed 's|^\./||')
for b in "${binaries[@]}"; do
  out=$work/results/$mode-$b
  rm -rf "$out"
  mkdir -p "$out"
  start=$(date +%s)
  for f in "${files[@]}"; do
    if [ "$mode" = root ]; then
      # Under a pseudo-terminal (script): the suite's default spec has terminal: true.
      RUNC=$work/bin/$b/runc timeout 900 script -qefc "bats --tap $f" /dev/null </dev/null |
        tr -d '\r' >"$out/$f.tap" 2>&1 || true
    else
      uid=$(id -u nsentry-test)
      sub=$(awk -F: '$1 == "nsentry-test" {print $2; exit}' /etc/subuid)
      subn=$(awk -F: '$1 == "nsentry-test" {print $3; exit}' /etc/subuid)
      mkdir -p "/run/user/$uid" && chown nsentry-test "/run/user/$uid"
      timeout 900 runuser -u nsentry-test -- env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
        HOME=/tmp XDG_RUNTIME_DIR="/run/user/$uid" RUNC="$work/bin/$b/runc" \
        ROOTLESS_FEATURES=idmap ROOTLESS_UIDMAP_START="$sub" ROOTLESS_UIDMAP_LENGTH="$subn" \
        ROOTLESS_GIDMAP_START="$sub" ROOTLESS_GIDMAP_LENGTH="$subn" \
        script -qefc "bats --tap $f" /dev/null </dev/null | tr -d '\r' >"$out/$f.tap" 2>&1 || true
    fi
  done
  echo "$(($(date +%s) - start))" >"$out/seconds"
  log "$mode $b: $(cat "$out/seconds") s"
done
# Nothing left behind: containers of the suite's state dirs are deleted by its teardown; check.
leftover=$(pgrep -f 'runc:\[|runc init' || true)
[ -z "$leftover" ] || log "warning: runc processes left: $leftover"
