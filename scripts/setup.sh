#!/usr/bin/env bash
# Installs everything Quire needs on Debian 12 / Ubuntu (Rust and Node already present),
# fetches the default model, builds Quire and starts the desktop app on it (`quire chat`
# in the terminal when there is no display).
# Idempotent: whatever is already installed, fetched or built is skipped.
#
#   scripts/setup.sh              install, build, start the app
#   scripts/setup.sh --no-run     install and build only
#   scripts/setup.sh --all-models also fetch the Qwen2.5-Coder-0.5B reference model
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

run=1 models=()
for arg in "$@"; do
  case "$arg" in
    --no-run) run=0 ;;
    --all-models) models=(--all) ;;
    -h|--help) sed -n 2,9p "$0"; exit 0 ;;
    *) echo "setup: unknown option $arg" >&2; exit 2 ;;
  esac
done

sudo_cmd=()
[ "$(id -u)" = 0 ] || sudo_cmd=(sudo)

# Debian packages, installed only when missing.
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
  fi
}

command -v cc >/dev/null && command -v make >/dev/null || apt_install build-essential
command -v pkg-config >/dev/null || apt_install pkg-config
# The keychain (Secret Service over D-Bus) and the vendored OpenSSL under SQLCipher.
apt_install libdbus-1-dev perl
# The desktop app: Tauri 2 on WebKitGTK.
apt_install libwebkit2gtk-4.1-dev libxdo-dev libayatana-appindicator3-dev librsvg2-dev libssl-dev file
command -v npm >/dev/null || { echo "setup: Node.js (npm) is required" >&2; exit 1; }
command -v python3 >/dev/null || apt_install python3
python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
command -v cargo >/dev/null || { echo "setup: Rust (cargo) is required: see rustup" >&2; exit 1; }

scripts/fetch-models.sh "${models[@]}"

scripts/build-ui.sh

echo "setup: building Quire (release): the desktop app and the quire command"
cargo build --release --locked -p quire-cli -p quire-desktop

bin="${CARGO_TARGET_DIR:-$root/target}/release"
if [ "$run" = 1 ]; then
  if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
    exec "$bin/quire-desktop"
  fi
  echo "setup: no display to open a window on: starting \`quire chat\` in this terminal instead"
  exec "$bin/quire" chat
fi
echo "setup: done; start Quire with $bin/quire-desktop (or $bin/quire chat in a terminal)"
