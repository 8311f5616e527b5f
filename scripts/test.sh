#!/usr/bin/env bash
# The whole check, as CI runs it: formatting, lints, docs, every test. Namespace-lab tests
# need root; without it they print SKIPPED and pass.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# shellcheck disable=SC1091
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo fmt --check
cargo clippy --all-targets -- -D warnings
# The fuzz targets build with nightly and cargo-fuzz (fuzz/Cargo.toml); here they must compile.
cargo check -p pigeon-fuzz --quiet
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --document-private-items --quiet
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Examples are benchmarks (scripts/bench.sh); clippy above already checks that they build.
cargo test --lib --bins --tests 2>&1 | tee "$log"
count() { grep -E '^test result:' "$log" | grep -oE "[0-9]+ $1" | awk '{s += $1} END {print s + 0}'; }
echo "all tests: $(count passed) passed, $(count failed) failed"
