#!/usr/bin/env bash
# Runs Quire's whole test suite: installs what it needs (packages, both reference models),
# checks formatting and that no network-client crate crept in, then runs every test on
# real models. Idempotent, like scripts/setup.sh.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

scripts/setup.sh --no-run --all-models

# The keychain tests run against a real Secret Service (gnome-keyring on a private D-Bus).
missing=()
for p in gnome-keyring dbus-daemon; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=(); [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
fi

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
