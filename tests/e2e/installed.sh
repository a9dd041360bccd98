#!/usr/bin/env bash
# Installs Quire's .deb, starts the installed binary headlessly (Xvfb, private D-Bus with
# gnome-keyring, no network) to a ready window, then removes the package again.
#
#   tests/e2e/installed.sh path/to/Quire_*.deb
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
deb="$(realpath "$1")"
sudo_cmd=(); [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
work="$(mktemp -d)"
cleanup() { "${sudo_cmd[@]}" dpkg -r quire >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

# Its dependencies are what the build needed already; apt resolves them offline.
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "$deb" >/dev/null
bin=/usr/bin/quire-desktop
test -x "$bin" || { echo "installed: $bin missing after installing $deb" >&2; exit 1; }
ls /usr/share/applications/ | grep -qi quire || { echo "installed: no .desktop entry" >&2; exit 1; }
dpkg -L quire | grep -q '\.gguf$' && { echo "installed: a model file is inside the package" >&2; exit 1; }

# A fresh user with no models anywhere Quire looks (cwd is not the source checkout).
export HOME="$work/home" XDG_DATA_HOME="$work/home/.local/share" XDG_CONFIG_HOME="$work/home/.config" \
  XDG_CACHE_HOME="$work/home/.cache" XDG_RUNTIME_DIR="$work/run"
mkdir -p "$HOME" "$XDG_RUNTIME_DIR"; chmod 700 "$XDG_RUNTIME_DIR"
unset QUIRE_MODEL QUIRE_MODELS_DIR QUIRE_DATA_DIR
export WEBKIT_DISABLE_COMPOSITING_MODE=1 WEBKIT_DISABLE_DMABUF_RENDERER=1 NO_AT_BRIDGE=1
out="${QUIRE_E2E_OUT:-$root/target/e2e}"
cd "$work"
unshare -rn bash -c '
  set -e
  ip link set lo up
  exec dbus-run-session -- sh -c "
    printf quire-e2e | gnome-keyring-daemon --unlock --components=secrets >/dev/null
    xvfb-run -a -s \"-screen 0 1280x800x24\" node \"$0\" \"$1\" \"$2\"
  "
' "$root/tests/e2e/installed.mjs" "$bin" "$out"
