#!/usr/bin/env bash
# Installs what building, running and testing Pigeon needs on Debian/Ubuntu: a C compiler
# (bundled SQLite); the libraries the window loads at run time (X11/Wayland input, OpenGL via
# Mesa, fontconfig) and a CJK font; Xvfb, ImageMagick, xdotool and iptux (the window's smoke
# test, and a real IP Messenger client to talk to); dbus (a private session bus for the tray
# test); iproute2,
# nftables and tcpdump (network-namespace tests, a bridge that filters, packet capture); python3 (the lab's impaired switch);
# openssl and a Python venv holding localsendd from PyPI (a LocalSend implementation someone
# else wrote, for the LocalSend tests, in .test-peers/); and, only if cargo is missing, Rust
# via rustup.
set -euo pipefail
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
packages=(build-essential pkg-config iproute2 nftables tcpdump python3 python3-venv openssl ca-certificates curl
    libxcursor1 libxi6 libxrandr2 libxkbcommon-x11-0 libwayland-client0 libwayland-egl1
    libegl1 libegl-mesa0 libgl1-mesa-dri libfontconfig1 fonts-wqy-microhei
    xvfb xauth imagemagick xdotool iptux dbus)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
if ! command -v cargo >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile default
fi
# The LocalSend peer of the tests, pinned so a new release cannot change what they meet.
peers="$(cd "$(dirname "$0")/.." && pwd)/.test-peers"
if [ ! -x "$peers/bin/localsendd" ]; then
    python3 -m venv "$peers"
    "$peers/bin/pip" install --quiet --disable-pip-version-check localsendd==0.1.1
fi
