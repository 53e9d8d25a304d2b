#!/usr/bin/env bash
# README command 1: installs what is missing, builds, and runs ferrocast on its defaults
# (SQLite under ./data, http://127.0.0.1:3000). Extra arguments go to the server, e.g.
#   scripts/run.sh --listen 0.0.0.0:8080 --public-url https://live.example.com
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
target_dir=${CARGO_TARGET_DIR:-target}
profile=${FERROCAST_PROFILE:-debug}
exec "$target_dir/$profile/ferrocast" --site-root "$target_dir/site" "$@"
