#!/usr/bin/env bash
# Fuzzing with cargo-fuzz (libFuzzer, AddressSanitizer, debug assertions):
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# Targets (fuzz/fuzz_targets/): offer, trickle, http, datagram; default all, one after another,
# each for SECONDS (default 20). FUZZ_KEEP_GOING=1 runs libFuzzer's fork mode, which goes on after
# a crash until the time is up (each finding still saved and counted). Installs the nightly toolchain and cargo-fuzz when missing; when
# nightly cannot be installed it says `fuzzing skipped: <why>` and exits 0. Seeds come from
# fuzz/corpus/<target> (kept in git); what the fuzzer adds goes to a temporary folder. Exits
# non-zero when a target finds a crash, a hang or a leak, and prints the artifact's path.
#
# http and datagram start a ferrocast server in process and talk to it over loopback; they run in
# a network namespace that has only `lo`. Builds go to $FUZZ_TARGET_DIR, else
# $CARGO_TARGET_DIR/fuzz, else /var/tmp/ferrocast-fuzz-target.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

seconds=${1:-20}
if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
  exit 2
fi
shift || true
all_targets=(offer trickle http datagram)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for target in "${targets[@]}"; do
  if [ ! -f "fuzz/fuzz_targets/$target.rs" ] || [ "$target" = harness ]; then
    echo "unknown fuzz target: $target (known: ${all_targets[*]})" >&2
    exit 2
  fi
done

if [ -n "${FUZZ_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR=$FUZZ_TARGET_DIR
elif [ -n "${CARGO_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR=$CARGO_TARGET_DIR/fuzz
else
  export CARGO_TARGET_DIR=/var/tmp/ferrocast-fuzz-target
fi

# The nightly toolchain: the one thing whose absence skips fuzzing instead of failing.
if ! command -v rustup >/dev/null; then
  echo "fuzzing skipped: rustup is not installed, so the nightly toolchain cannot be"
  exit 0
fi
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  say "installing the nightly toolchain"
  if ! rustup toolchain install nightly --profile minimal; then
    echo "fuzzing skipped: the nightly toolchain cannot be installed"
    exit 0
  fi
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  say "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# Reproducing a finding: `cargo +nightly fuzz run` with these flags (or it builds with others).
build_flags=(--fuzz-dir fuzz --codegen-units 16)

for target in "${targets[@]}"; do
  say "building fuzz target $target"
  cargo +nightly fuzz build "${build_flags[@]}" "$target"
done
# The runs start the binaries just built, as `cargo fuzz run` would (with its ASAN_OPTIONS), so
# that every target of one call runs the same build even if the sources change meanwhile, and
# no cargo runs inside the network namespace.
host=$(rustc +nightly -vV | sed -n 's/^host: //p')
bin_dir=$CARGO_TARGET_DIR/$host/release
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_odr_violation=0

# Runs a command in a new network namespace whose only interface is lo (as scripts/test.sh).
in_loopback_netns() {
  local unshare_flags=(-n)
  [ "$(id -u)" = 0 ] || unshare_flags=(-r -n)
  if unshare "${unshare_flags[@]}" true 2>/dev/null && command -v ip >/dev/null; then
    unshare "${unshare_flags[@]}" -- bash -c 'ip link set lo up && exec "$@"' netns "$@"
  else
    echo "(no network namespace here: running on the host's loopback)"
    "$@"
  fi
}

work=$(mktemp -d "${TMPDIR:-/tmp}/ferrocast-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
failed=()
summary=()
for target in "${targets[@]}"; do
  corpus=$work/corpus/$target
  artifacts=$root/fuzz/artifacts/$target
  mkdir -p "$corpus" "$artifacts" "$root/fuzz/corpus/$target"
  options=(-max_total_time="$seconds" -print_final_stats=1 -print_funcs=0 -artifact_prefix="$artifacts/")
  case $target in
    offer) options+=(-max_len=16384 -timeout=10) ;;
    trickle) options+=(-max_len=8192 -timeout=10) ;;
    # One server for the whole run: its allocations live on past each input (no leak checks),
    # and it needs more room than libFuzzer's default 2 GB under AddressSanitizer. A request
    # hanging is caught by the target itself (2 s); the long libFuzzer timeout leaves room for
    # the harness making its publisher and viewer again (seen to take 10-40 s).
    http) options+=(-max_len=9000 -timeout=120 -detect_leaks=0 -rss_limit_mb=6144) ;;
    datagram) options+=(-max_len=1500 -timeout=120 -detect_leaks=0 -rss_limit_mb=6144) ;;
  esac
  if [ "${FUZZ_KEEP_GOING:-0}" = 1 ]; then
    options+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  fi
  run=("$bin_dir/$target" "${options[@]}" "$corpus" "$root/fuzz/corpus/$target")
  say "fuzzing $target for ${seconds}s"
  marker=$work/started-$target
  # The run's output stays (beside the artifacts, ignored by git) for a look afterwards.
  log=$root/fuzz/artifacts/$target.log
  touch "$marker"
  status=0
  case $target in
    http | datagram) in_loopback_netns "${run[@]}" 2>&1 | tee "$log" || status=$? ;;
    *) "${run[@]}" 2>&1 | tee "$log" || status=$? ;;
  esac
  stats=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
  execs=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || true)
  cov=$(grep -oE 'cov: [0-9]+' <<<"$stats" | grep -oE '[0-9]+' || true)
  summary+=("$target: last status line: ${stats:-none}; exec/s ${execs:-?}; cov ${cov:-?}")
  found=$(find "$artifacts" -type f -newer "$marker" \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \
    -o -name 'leak-*' \) 2>/dev/null | head -n 20)
  if [ "$status" -ne 0 ] || [ -n "$found" ]; then
    echo "fuzz target $target failed (exit $status); its output: $log"
    if [ -n "$found" ]; then
      echo "artifact: $found"
      echo "reproduce: cargo +nightly fuzz run ${build_flags[*]} $target <artifact>"
      echo "       or: $bin_dir/$target <artifact>   (http, datagram: inside unshare -n, lo up)"
    fi
    failed+=("$target")
  fi
done

say "summary"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]}"
  exit 1
fi
echo "fuzzing found nothing in ${seconds}s per target: ${targets[*]}"
