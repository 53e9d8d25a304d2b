#!/usr/bin/env bash
# README command 2: installs what is missing, builds, and runs every test: the Rust unit and
# integration tests, then the browser tests in end2end/ (real Chromium). Both run inside a network
# namespace that has only loopback, so no test can reach beyond 127.0.0.1 / ::1.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

scripts/setup.sh --test
scripts/build.sh --site
target_dir=$(cd "${CARGO_TARGET_DIR:-target}" && pwd)

# Builds the server binary too (the integration tests run it), with the tests' feature set.
say "building the server and the Rust tests"
cargo test --no-run

# Runs a command in a new network namespace whose only interface is lo.
in_loopback_netns() {
  local unshare_flags=(-n)
  [ "$(id -u)" = 0 ] || unshare_flags=(-r -n)
  unshare "${unshare_flags[@]}" -- bash -c 'ip link set lo up && exec "$@"' netns "$@"
}

logs=$(mktemp -d)
status=0

say "Rust tests (loopback-only namespace)"
# Bounded in time: a hung test fails the run instead of stalling CI.
in_loopback_netns timeout 1200 cargo test --offline 2>&1 | tee "$logs/cargo.log" || status=1

say "benchmark smoke runs (debug build, loopback-only namespace: the programs must work; figures mean nothing)"
smoke=0 smoke_failed=0
for bench in "hot_path" "fanout -- --viewers 5 --seconds 3" "fanout -- --viewers 5 --seconds 3 --record" "fanout -- --viewers 4 --seconds 3 --simulcast --layers h,m,l,auto" "web -- --rps 50 --logins 2 --seconds 2" "web -- --rps 50 --logins 2 --seconds 2 --https" "soak -- --seconds 20"; do
  # shellcheck disable=SC2086 # the bench name and its arguments are meant to split
  if in_loopback_netns timeout 600 cargo test --offline --bench $bench; then
    smoke=$((smoke + 1))
  else
    echo "benchmark smoke run failed: $bench"
    smoke_failed=$((smoke_failed + 1))
  fi
done

say "fuzz targets, 20 s each (scripts/fuzz.sh: nightly + cargo-fuzz, installed when missing)"
# Skipped, with the reason, only where the nightly toolchain cannot be installed.
fuzz_passed=0 fuzz_failed=0
if timeout 3600 scripts/fuzz.sh 20 2>&1 | tee "$logs/fuzz.log"; then
  if grep -q '^fuzzing skipped' "$logs/fuzz.log"; then
    echo "(fuzzing was skipped: see the reason above)"
  else
    fuzz_passed=$(grep -c '^[a-z]*: last status line' "$logs/fuzz.log" || true)
  fi
else
  echo "fuzzing failed or found a problem: see above"
  fuzz_failed=1
fi

say "browser tests (loopback-only namespace, /usr/bin/chromium)"
in_loopback_netns timeout 1200 env FERROCAST_BIN="$target_dir/debug/ferrocast" FERROCAST_SITE_ROOT="$target_dir/site" \
  node --test --test-reporter=tap --test-timeout=180000 "$root/end2end/tests/" 2>&1 | tee "$logs/e2e.log" || status=1

# The browser tests that failed, again with their errors, where the end of a long log shows them.
if grep -q '^not ok' "$logs/e2e.log"; then
  say "browser tests that failed"
  awk '/^not ok/ { shown = 1 } shown { print } shown && /^  \.\.\.$/ { shown = 0 }' "$logs/e2e.log"
fi

# One plain closing line over both runners.
passed=$(( smoke + fuzz_passed + $(grep -oE 'test result: [a-zA-Z]+\. [0-9]+ passed' "$logs/cargo.log" | awk '{s+=$4} END {print s+0}') \
         + $(grep -E '^# pass [0-9]+' "$logs/e2e.log" | awk '{s+=$3} END {print s+0}') ))
failed=$(( smoke_failed + fuzz_failed + $(grep -oE '[0-9]+ failed' "$logs/cargo.log" | awk '{s+=$1} END {print s+0}') \
         + $(grep -E '^# fail [0-9]+' "$logs/e2e.log" | awk '{s+=$3} END {print s+0}') ))
rm -rf "$logs"
[ "$failed" = 0 ] || status=1
echo "total: $passed passed, $failed failed"
exit $status
