#!/usr/bin/env bash
# Installs what building ferrocast needs, skipping whatever is already there.
#   scripts/setup.sh          Rust wasm target + wasm-bindgen CLI (for the server)
#   scripts/setup.sh --test   also Chromium, iproute2, the servers the tests run (pebble, an ACME
#                             test CA; nginx and Caddy; coturn), NSS tools (Chromium trusting pebble's root) and the
#                             end2end npm packages
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

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
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
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
