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
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --document-private-items --quiet
cargo test --all-targets
