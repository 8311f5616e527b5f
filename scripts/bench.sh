#!/usr/bin/env bash
# Node benchmarks on private loopback addresses (127.200.x.y), never the real network.
# Usage: scripts/bench.sh [--idle-secs N]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
cargo run --release --quiet --example bench -- --bin target/release/pigeon "$@"
