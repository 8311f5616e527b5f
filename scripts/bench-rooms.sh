#!/usr/bin/env bash
# Room catch-up benchmark, on loopback (never the real network): a member that was away
# while POSTS posts were made (default 10,000) catches up from another member. Prints the
# time from its start and from its first post, the bytes its stored events take against the
# bytes of their texts, and the CPU the sender and the receiver spent. Then the resident memory
# of a node in 20 rooms of 250 members with 100 posts each. As root, also the post latency in
# a room of 50 members on a 50-namespace lab (p50/p99 from post to all members stored).
# Usage: scripts/bench-rooms.sh [POSTS]
set -euo pipefail
cd "$(dirname "$0")/.."
PIGEON_ROOM_POSTS=${1:-10000} \
    cargo test --release --quiet --test it -- --ignored --exact rooms::bench_catch_up --nocapture 2>&1 \
    | grep -E '^\||panicked'
cargo test --release --quiet --test it -- --ignored --exact rooms::bench_memory --nocapture 2>&1 \
    | grep -E '^\||panicked'
if [ "$(id -u)" = 0 ]; then
    cargo build --release --quiet
    PIGEON_TEST_BIN=$PWD/target/release/pigeon \
        cargo test --release --quiet --test it -- --ignored --exact rooms::bench_post_latency --nocapture 2>&1 \
        | grep -E '^\||panicked|skip'
else
    echo "post latency: skipped (needs root for the namespace lab)"
fi
