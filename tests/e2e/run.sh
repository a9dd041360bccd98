#!/usr/bin/env bash
# End-to-end test of the real desktop app, in a real window, with no network:
#   - a network namespace with only loopback (`unshare -rn`), so nothing can leave;
#   - a private D-Bus with an unlocked gnome-keyring (the real Secret Service) for the key;
#   - Xvfb for the window, tauri-driver + WebKitWebDriver to drive it (drive.mjs);
#   - every connect()/sendto() of the app and its WebKit processes traced with strace:
#     the test fails if any went to an address outside loopback.
# Screenshots go to $QUIRE_E2E_OUT (default: target/e2e).
#
#   tests/e2e/run.sh PATH/TO/quire-desktop
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
app="$(realpath "$1")"
out="$(realpath -m "${QUIRE_E2E_OUT:-$root/target/e2e}")"
shared="$(realpath "$root/../shared")"
rm -rf "$out"; mkdir -p "$out"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT

# The documents: two papers, a scanned PDF (no text layer) and a password-protected one.
mkdir -p "$work/docs"
cp "$shared/corpus/papers/cermine_bmc-jtmo-2010_dvt-prophylaxis-trauma-systematic-review.pdf" \
   "$shared/corpus/papers/cermine_hindawi-rrp-2010_heart-failure-programmes-patient-experiences.pdf" \
   "$shared/corpus/tricky/scanned_ocrmypdf_c02-22_huckfinn-page.pdf" \
   "$shared/corpus/tricky/encrypted_userpw-is-password_unstructured.pdf" "$work/docs/"

# A private home: the data folder, the keyring and WebKit's caches live and die here.
export HOME="$work/home" XDG_DATA_HOME="$work/home/.local/share" XDG_CONFIG_HOME="$work/home/.config" \
  XDG_CACHE_HOME="$work/home/.cache" XDG_RUNTIME_DIR="$work/run"
mkdir -p "$HOME" "$XDG_RUNTIME_DIR"; chmod 700 "$XDG_RUNTIME_DIR"
export QUIRE_MODELS_DIR="$root/models" QUIRE_E2E_BIN="$app"
export WEBKIT_DISABLE_COMPOSITING_MODE=1 WEBKIT_DISABLE_DMABUF_RENDERER=1 NO_AT_BRIDGE=1
export QUIRE_E2E_QUESTION="${QUIRE_E2E_QUESTION:-What is the risk of heparin-induced thrombocytopenia in trauma patients?}"

# The app as WebKitWebDriver starts it: under strace, which follows every process.
cat > "$work/app" <<WRAP
#!/bin/sh
exec strace -f -qq -e trace=connect,sendto,sendmsg -o "$out/strace.log" "$app" "\$@"
WRAP
chmod +x "$work/app"

unshare -rn bash -c '
  set -e
  ip link set lo up
  exec dbus-run-session -- sh -c "
    printf quire-e2e | gnome-keyring-daemon --unlock --components=secrets >/dev/null
    xvfb-run -a -s \"-screen 0 1280x800x24\" node \"$0\" \"$1\" \"$2\" \"$3\"
  "
' "$root/tests/e2e/drive.mjs" "$work/app" "$work/docs" "$out"

# No connection outside loopback was even attempted (AF_UNIX and netlink are local).
if [ ! -s "$out/strace.log" ]; then
  echo "e2e: no strace log: the app was never started under the tracer" >&2; exit 1
fi
outside="$(grep -E 'sa_family=AF_INET6?' "$out/strace.log" \
  | grep -vE 'inet_addr\("127\.|inet_pton\(AF_INET6, "::1"|inet_pton\(AF_INET6, "::ffff:127\.' || true)"
if [ -n "$outside" ]; then
  echo "e2e: the app tried to reach outside this machine:" >&2
  echo "$outside" | head -20 >&2
  exit 1
fi
echo "e2e: no connection outside loopback ($(grep -c 'sa_family=AF_INET' "$out/strace.log" || true) loopback socket calls traced)"
ls "$out"/*.png
