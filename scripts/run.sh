#!/usr/bin/env bash
# Installs what Pigeon needs (see install-deps.sh) and runs it; arguments go to pigeon.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# A Rust installed just now by rustup is not on PATH in this shell yet.
# shellcheck disable=SC1091
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo run --release -- "$@"
