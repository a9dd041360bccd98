#!/usr/bin/env bash
# End-to-end test of the real desktop app, in a real window, with no network:
#   - a network namespace with only loopback (`unshare -rn`), so nothing can leave;
#   - a private D-Bus with an unlocked gnome-keyring (the real Secret Service) for the key;
#   - Xvfb for the window, tauri-driver + WebKitWebDriver to drive it (drive.mjs);
#   - the namespace's own counters of packets that found no route (`OutNoRoutes` in
#     /proc/net/snmp and snmp6): with only loopback, every attempt to reach any other
#     address — a TCP connect, a UDP datagram (DNS), IPv4 or IPv6 — by the app, its WebKit
#     processes or anything else in the namespace is counted there. The test fails unless
#     both stay 0. (Tracing with strace instead stalled the app's IPC.)
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
# The chat check needs an answer the default 135M model gets past verification, with a
# citation to click. Its greedy output is deterministic, but any change to retrieval,
# focus or the prompt can change it: the HIT-risk question stopped passing when sentences
# became whole (the model's "2.6 %" is not in the paper, so the answer was withheld), and
# the vena-cava-filter question in those words stopped when the prompt's source labels
# changed (the model then gave 2.8 % as the failure rate of compression devices). Check a
# replacement with `quire ask "…" --json` on a library of the two papers.
export QUIRE_E2E_QUESTION="${QUIRE_E2E_QUESTION:-What is the failed retrieval rate of IVC filters?}"

# Runs in the namespace: the whole session, then its no-route counters into $out.
unshare -rn bash -c '
  set -e
  ip link set lo up
  rc=0
  dbus-run-session -- sh -c "
    printf quire-e2e | gnome-keyring-daemon --unlock --components=secrets >/dev/null
    xvfb-run -a -s \"-screen 0 1280x800x24\" node \"$0\" \"$1\" \"$2\" \"$3\"
  " || rc=$?
  awk "/^Ip: [0-9]/ { print \"ipv4\", \$13 }" /proc/net/snmp > "$3/no-route.txt"
  awk "/^Ip6OutNoRoutes/ { print \"ipv6\", \$2 }" /proc/net/snmp6 >> "$3/no-route.txt"
  exit $rc
' "$root/tests/e2e/drive.mjs" "$app" "$work/docs" "$out"

# Nothing in the namespace tried to reach an address outside loopback.
v4="$(awk '$1 == "ipv4" { print $2 }' "$out/no-route.txt")"
v6="$(awk '$1 == "ipv6" { print $2 }' "$out/no-route.txt")"
if [ "${v4:-x}" != 0 ] || [ "${v6:-x}" != 0 ]; then
  echo "e2e: something tried to reach outside this machine (packets with no route: IPv4 ${v4:-?}, IPv6 ${v6:-?})" >&2
  exit 1
fi
echo "e2e: no connection outside loopback was attempted (no-route counters: IPv4 0, IPv6 0)"
ls "$out"/*.png
