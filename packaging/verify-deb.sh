#!/usr/bin/env bash
# Proves the .deb is complete: installs it into a fresh minimal Debian 12 root (debootstrap,
# then chroot; apt resolves the package's dependencies from deb.debian.org) and starts the
# window there on a private Xvfb display, bound to loopback with broadcast off, until its
# first frame. Needs root, debootstrap and the .deb from build-deb.sh.
# Usage: packaging/verify-deb.sh [path/to/pigeon.deb]
set -euo pipefail
cd "$(dirname "$0")/.."
deb=${1:-$(ls -t target/debian/pigeon_*.deb | head -1)}
root=$(mktemp -d /tmp/pigeon-root.XXXXXX)
cleanup() {
    # Every process started inside the root (Xvfb, pigeon): minbase has no pkill.
    for proc in /proc/[0-9]*; do
        [ "$(readlink "$proc/root" 2>/dev/null)" = "$root" ] && kill "${proc#/proc/}" 2>/dev/null
    done
    for m in dev/pts dev proc sys; do umount -l "$root/$m" 2>/dev/null || true; done
    rm -rf "$root" "$root.log"
}
trap cleanup EXIT
echo "== debootstrap (minbase bookworm) into $root"
debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian > "$root.log" 2>&1 \
    || { tail -20 "$root.log"; exit 1; }
mount --bind /proc "$root/proc"
mount --bind /sys "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "$deb" "$root/tmp/pigeon.deb"
echo "== apt install ./pigeon.deb (and xvfb to show it)"
chroot "$root" apt-get update -qq
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /tmp/pigeon.deb xvfb > /dev/null
chroot "$root" dpkg -L pigeon | grep -E 'bin/pigeon|applications|hicolor/256|man1'
echo "== start it"
chroot "$root" sh -c '
    Xvfb :57 -screen 0 1024x768x24 -nolisten tcp >/dev/null 2>&1 &
    for i in $(seq 100); do [ -S /tmp/.X11-unix/X57 ] && break; sleep 0.05; done
    DISPLAY=:57 RUST_LOG=pigeon=info pigeon --bind 127.0.0.57 --no-broadcast --data-dir /tmp/p \
        --name "验证 Check" 2> /tmp/pigeon.log &
    for i in $(seq 300); do grep -q "first frame" /tmp/pigeon.log && break; sleep 0.1; done
    cat /tmp/pigeon.log
    grep -q "first frame" /tmp/pigeon.log && grep -q "CJK font" /tmp/pigeon.log'
echo "verified: $deb installs into a fresh Debian 12 and opens its window"
