#!/usr/bin/env bash
# Installs what building ferrocast needs, skipping whatever is already there.
#   scripts/setup.sh          Rust wasm target + wasm-bindgen CLI, OpenSSL's headers (for the server)
#   scripts/setup.sh --test   also Chromium, iproute2, the servers the tests run (pebble, an ACME
#                             test CA; nginx and Caddy; coturn), NSS tools (Chromium trusting pebble's root),
#                             GStreamer's webrtcbin with PyGObject (a third WebRTC client stack) and the
#                             end2end npm packages
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# The SFU's DTLS handshakes run on OpenSSL (the `openssl` crate links Debian's libssl).
if ! pkg-config --exists openssl 2>/dev/null; then
  say "installing libssl-dev and pkg-config (Debian packages)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libssl-dev pkg-config
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# The CLI must be exactly the wasm-bindgen version in Cargo.lock, or the bundle will not load.
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3 }' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [ "$have" != "$want" ]; then
  say "installing wasm-bindgen-cli $want (found: ${have:-none})"
  # Not --locked: its own lock file pins crates that do not build on every toolchain.
  cargo install wasm-bindgen-cli --version "=$want"
fi

if [ "${1:-}" = "--test" ]; then
  missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v ip >/dev/null || missing+=(iproute2)
  command -v unshare >/dev/null || missing+=(util-linux)
  [ -x /usr/bin/pebble ] && [ -x /usr/bin/pebble-challtestsrv ] || missing+=(pebble)
  [ -x /usr/sbin/nginx ] || missing+=(nginx)
  [ -x /usr/bin/caddy ] || missing+=(caddy)
  [ -x /usr/bin/turnserver ] || missing+=(coturn)
  [ -x /usr/sbin/nft ] || missing+=(nftables)
  command -v ffprobe >/dev/null || missing+=(ffmpeg)
  command -v certutil >/dev/null || missing+=(libnss3-tools)
  command -v openssl >/dev/null || missing+=(openssl)
  # webrtcbin and the elements end2end/gst/webrtcbin_client.py builds its pipelines from.
  if ! /usr/bin/python3 - 2>/dev/null <<'PY'
import gi
for namespace, version in (("Gst", "1.0"), ("GstWebRTC", "1.0"), ("GstSdp", "1.0"), ("Nice", "0.1")):
    gi.require_version(namespace, version)
from gi.repository import Gst
Gst.init(None)
elements = ("webrtcbin", "nicesrc", "dtlssrtpenc", "srtpenc", "videotestsrc", "audiotestsrc", "vp8enc",
            "vp8dec", "x264enc", "avdec_h264", "h264parse", "opusenc", "opusdec", "rtpvp8pay",
            "rtph264pay", "rtpopuspay", "decodebin", "videoconvert", "audioconvert")
raise SystemExit(1 if any(Gst.ElementFactory.find(e) is None for e in elements) else 0)
PY
  then
    missing+=(python3-gi python3-gst-1.0 gir1.2-gst-plugins-base-1.0 gir1.2-gst-plugins-bad-1.0 gir1.2-nice-0.1 gstreamer1.0-nice
      gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
      gstreamer1.0-libav)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} (Debian packages)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
  if [ ! -d end2end/node_modules/playwright-core ] || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then
    say "installing end2end npm packages (no browser download: tests drive /usr/bin/chromium)"
    (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
  fi
fi
