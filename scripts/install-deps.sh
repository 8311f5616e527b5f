#!/usr/bin/env bash
# Installs what building and testing Pigeon needs on Debian/Ubuntu: a C compiler (bundled
# SQLite), iproute2 and tcpdump (network-namespace tests, packet capture) and, only if cargo
# is missing, Rust via rustup.
set -euo pipefail
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
packages=(build-essential pkg-config iproute2 tcpdump ca-certificates curl)
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
