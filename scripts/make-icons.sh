#!/usr/bin/env bash
# Regenerates the app icons in icons/ from icons/icon.svg (the one source): a 1024 px
# RGBA PNG rendered with rsvg-convert, then every desktop size with the Tauri CLI.
# The generated files are committed; run this only after changing the SVG.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
rsvg-convert -w 1024 -h 1024 icons/icon.svg -o "$tmp/icon.png"
ui/node_modules/.bin/tauri icon "$tmp/icon.png" -o icons >/dev/null 2>&1
rm -rf icons/android icons/ios icons/Square*Logo.png icons/StoreLogo.png
ls icons
