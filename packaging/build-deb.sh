#!/usr/bin/env bash
# Builds target/debian/pigeon_<version>_<arch>.deb: the release binary, its manual page
# (generated from the command-line definition), the .desktop entry and the icons.
# Needs cargo-deb (`cargo install cargo-deb`).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
cargo build --release --quiet
mkdir -p target/man
target/release/pigeon man | gzip -9n > target/man/pigeon.1.gz
cargo deb --no-build --quiet
ls target/debian/*.deb
