#!/usr/bin/env bash
# Scale benchmark: labs of 100 and 250 hosts (network namespaces on one bridge; never the
# real network), started within a second. Prints, per lab size: time until every host lists
# every other (from the last start), and in steady state the datagrams each host receives
# per second, its CPU and its memory. Needs root (namespaces).
# Usage: scripts/bench-scale.sh [HOSTS,...] [STEADY_SECS] [PIGEON_BINARY] [NETWORKS]
#   defaults: 100,250  60  target/release/pigeon (built here)  open
#   NETWORKS: comma-separated, each size runs on each: open, no-broadcast (the bridge drops
#   broadcasts: found by multicast), ipv6-only (no IPv4 address on any host)
set -euo pipefail
cd "$(dirname "$0")/.."
hosts=${1:-100,250}
steady=${2:-60}
bin=${3:-}
networks=${4:-open}
if [ -z "$bin" ]; then
    cargo build --release --quiet
    bin=$PWD/target/release/pigeon
fi
# The harness runs as a release build too, so that parsing the hosts' events (62,250 joins
# at 250 hosts) does not take the CPU the hosts are measured on.
PIGEON_TEST_BIN=$bin PIGEON_SCALE_HOSTS=$hosts PIGEON_SCALE_STEADY_SECS=$steady PIGEON_SCALE_NETWORKS=$networks \
    cargo test --release --quiet --test it -- --ignored --exact scale::scale --nocapture 2>&1 \
    | grep -E '^\||SKIPPED|panicked'
