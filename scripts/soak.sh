#!/usr/bin/env bash
# The one-hour soak (tests/it/messy.rs, `soak`): six hosts in a namespace lab on a link with
# 10% loss and 30±10 ms delay exchange messages and files while hosts are killed and
# restarted. Needs root. Usage: scripts/soak.sh [SECONDS]   (default 3600)
set -euo pipefail
cd "$(dirname "$0")/.."
export PIGEON_SOAK_SECS=${1:-3600}
cargo test --release --test it messy::soak -- --ignored --nocapture 2>&1 | grep -E '^soak|panicked|test result|SKIPPED'
