#!/usr/bin/env bash
# Builds the Linux installers (.deb and .rpm) with the Tauri CLI from ui/node_modules.
# Model files are not inside: on first run the app offers to import a GGUF file or names
# scripts/fetch-models.sh. Output: $CARGO_TARGET_DIR/release/bundle/{deb,rpm}/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/build-ui.sh
cd src-tauri
../ui/node_modules/.bin/tauri build --ci --bundles deb,rpm -- --locked
