#!/usr/bin/env bash
# Runs Quire's whole test suite: installs what it needs (packages, both reference models),
# checks formatting and that no network-client crate crept in, then runs every test on
# real models. Idempotent, like scripts/setup.sh.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

scripts/setup.sh --no-run --all-models

# The keychain tests run against a real Secret Service (gnome-keyring on a private D-Bus);
# the desktop app's end-to-end test runs in a real window (Xvfb) driven over WebDriver
# (WebKitWebDriver), with its connections traced (strace) in a namespace with no network.
missing=()
for p in gnome-keyring dbus-daemon dbus-x11 xvfb xauth webkit2gtk-driver strace iproute2 imagemagick; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=(); [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
fi

command -v tauri-driver >/dev/null || cargo install --locked tauri-driver --version 2.1.0

echo "test: UI unit tests (Vitest, IPC mocked)"
(cd ui && npm test --silent)

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

# The OS keychain, for real: an unlocked gnome-keyring, then a locked one, each on its own
# session bus (nothing of the user's own keychain is touched).
echo "test: keychain (gnome-keyring, unlocked)"
dbus-run-session -- sh -c 'printf quire-ci | gnome-keyring-daemon --unlock --components=secrets >/dev/null &&
  cargo test --release --locked --workspace --test keychain -- --ignored made_once'
echo "test: keychain (gnome-keyring, locked)"
dbus-run-session -- sh -c 'gnome-keyring-daemon --start --components=secrets >/dev/null &&
  cargo test --release --locked --workspace --test keychain -- --ignored locked'

target="${CARGO_TARGET_DIR:-$root/target}"

# The desktop app in a real window: add papers, ask, open a citation, write a note,
# restart — offline, with a screenshot of each screen.
echo "test: desktop app end to end (Xvfb, WebDriver, no network)"
QUIRE_E2E_OUT="$target/e2e" tests/e2e/run.sh "$target/release/quire-desktop"

# The installers: a .deb and an .rpm are built, the .deb is installed and its binary
# starts to a ready window.
echo "test: packaging (.deb, .rpm) and the installed app"
scripts/package-linux.sh
tests/e2e/installed.sh "$target/release/bundle/deb/"*.deb
