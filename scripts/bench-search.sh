#!/usr/bin/env bash
# Search over 1,000,000 messages in a temporary history file (no network involved).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release --quiet --example bench_search
