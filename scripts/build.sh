#!/usr/bin/env bash
# Builds the server binary and the browser bundle into $CARGO_TARGET_DIR/site (what cargo-leptos
# would do, with plain cargo and wasm-bindgen). FERROCAST_PROFILE=release for an optimised build.
#   scripts/build.sh          server + site
#   scripts/build.sh --site   only the site (scripts/test.sh builds the server through cargo test,
#                             whose dev-dependencies change feature sets: one build, not two)
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=${CARGO_TARGET_DIR:-target}
profile=${FERROCAST_PROFILE:-debug}
cargo_profile=()
[ "$profile" = release ] && cargo_profile=(--release)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

if [ "${1:-}" != "--site" ]; then
  say "building the server ($profile)"
  cargo build "${cargo_profile[@]}" --bin ferrocast
fi

say "building the browser bundle ($profile)"
cargo build "${cargo_profile[@]}" --lib --target wasm32-unknown-unknown --no-default-features --features hydrate

site="$target_dir/site"
mkdir -p "$site/pkg"
wasm-bindgen --target web --out-dir "$site/pkg" --out-name ferrocast \
  "$target_dir/wasm32-unknown-unknown/$profile/ferrocast.wasm"
cp -r public/. "$site/"
cp style/main.css "$site/pkg/ferrocast.css"
say "site ready in $site"
