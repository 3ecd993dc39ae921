#!/usr/bin/env bash
# Fuzz every importer: build the cargo-fuzz targets in fuzz/ and run each for SECONDS
# (default 30) from its seed samples (fuzz/seeds/<target>/). Prints each target's runs and
# runs per second; exits non-zero on the first crash, hang (over 10 s on one input) or
# out-of-memory, leaving the input that did it in fuzz/artifacts/<target>/. Replay one:
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -s none <target> fuzz/artifacts/<target>/<file>
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
# Env: FUZZ_TARGET_DIR (default fuzz/target): where the fuzz build goes.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-30}"
shift || true
if ! [[ "$secs" =~ ^[0-9]+$ ]]; then
  echo "fuzz: SECONDS must be a whole number, got \`$secs\`; usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
  exit 2
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz: cargo-fuzz is missing; install it with \`cargo install cargo-fuzz\`" >&2
  exit 1
fi

# cargo-fuzz hands rustc flags only nightly accepts; RUSTC_BOOTSTRAP lets a stable
# toolchain take them. No sanitizer: the code under test is safe Rust, so AddressSanitizer
# would halve the runs and find nothing a panic does not already show (overflow checks and
# debug assertions stay on, as cargo-fuzz builds by default).
export RUSTC_BOOTSTRAP=1
target_dir="${FUZZ_TARGET_DIR:-$PWD/fuzz/target}"
fuzz=(cargo fuzz)
common=(--sanitizer none --target-dir "$target_dir" --fuzz-dir fuzz)

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <("${fuzz[@]}" list --fuzz-dir fuzz)
fi

"${fuzz[@]}" build "${common[@]}"

failed=0
for t in "${targets[@]}"; do
  corpus="fuzz/corpus/$t"
  mkdir -p "$corpus" "fuzz/artifacts/$t"
  log="$(mktemp)"
  # The first corpus directory collects what the run finds; the seeds are only read.
  if "${fuzz[@]}" run "${common[@]}" "$t" "$corpus" "fuzz/seeds/$t" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    echo "fuzz: $t: ${runs:-?} runs in ${secs} s, ${rate:-?} runs/s, no crash"
  else
    failed=1
    echo "fuzz: $t FAILED; the end of its log:" >&2
    tail -40 "$log" >&2
    echo "fuzz: the input is in fuzz/artifacts/$t/" >&2
  fi
  rm -f "$log"
done
exit "$failed"
