#!/usr/bin/env bash
# Room catch-up benchmark, on loopback (never the real network): a member that was away
# while POSTS posts were made (default 10,000) catches up from another member. Prints the
# time from its start and from its first post, the bytes its stored events take against the
# bytes of their texts, and the CPU the sender and the receiver spent. Then the resident memory
# of a node in 20 rooms of 250 members with 100 posts each.
# Usage: scripts/bench-rooms.sh [POSTS]
set -euo pipefail
cd "$(dirname "$0")/.."
PIGEON_ROOM_POSTS=${1:-10000} \
    cargo test --release --quiet --test it -- --ignored --exact rooms::bench_catch_up --nocapture 2>&1 \
    | grep -E '^\||panicked'
cargo test --release --quiet --test it -- --ignored --exact rooms::bench_memory --nocapture 2>&1 \
    | grep -E '^\||panicked'
