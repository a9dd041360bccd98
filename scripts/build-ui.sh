#!/usr/bin/env bash
# Builds the desktop app's UI (ui/ → ui/dist, which the Rust build embeds). Installs the
# npm packages from the lock file first, only when they are missing or the lock changed.
# Idempotent and quiet when there is nothing to do.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/ui"
command -v npm >/dev/null || { echo "build-ui: Node.js (npm) is required" >&2; exit 1; }
stamp=node_modules/.quire-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "build-ui: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
# Rebuild only when a source changed since the last build.
if [ ! -f dist/index.html ] || [ -n "$(find index.html src public vite.config.ts package-lock.json -newer dist/index.html 2>/dev/null | head -1)" ]; then
  echo "build-ui: vite build"
  npm run --silent build
fi
