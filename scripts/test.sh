#!/usr/bin/env bash
# Runs Quire's whole test suite: installs what it needs (packages, both reference models),
# checks formatting and that no network-client crate crept in, then runs every test on
# real models. Idempotent, like scripts/setup.sh.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

scripts/setup.sh --no-run --all-models

echo "test: cargo fmt --check"
cargo fmt --all --check

echo "test: cargo clippy -D warnings"
cargo clippy --release --locked --workspace --all-targets -- -D warnings

# Privacy is the product: no HTTP client may be linked into anything we ship.
echo "test: no network-client crates"
if cargo tree --locked --workspace -e normal --prefix none --format '{p}' \
    | grep -Ei '^(reqwest|hyper|ureq|isahc|curl|surf|attohttpc|hf-hub) '; then
  echo "test: a network-client crate is in the dependency tree" >&2
  exit 1
fi

echo "test: cargo test (release: the tests run real models)"
cargo test --release --locked --workspace
