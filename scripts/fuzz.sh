#!/usr/bin/env bash
# Runs each cargo-fuzz target for a bounded time from the committed corpus
# (fuzz/corpus/<target>, seeded with the examples and the stdlib). New inputs go
# to a temporary directory, so the committed corpus only changes by hand.
# A crash fails the script; libFuzzer prints the input and writes it under
# fuzz/artifacts/<target>/: copy it to fuzz/regressions/ as a regression case.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-20}
if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for target in parse check compile; do
  scratch=$(mktemp -d)
  echo "fuzzing $target for ${seconds}s"
  log="$scratch.log"
  set +e
  cargo +nightly fuzz run "$target" "$scratch" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -max_len=16384 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    >"$log" 2>&1
  status=$?
  set -e
  grep -E "stat::number_of_executed_units|ERROR|panicked|Test unit written|SUMMARY" "$log" || true
  [ "$status" -eq 0 ] || tail -n 40 "$log"
  rm -f "$log"
  rm -rf "$scratch"
  if [ "$status" -ne 0 ]; then
    echo "fuzz target $target failed (exit $status)"
    exit 1
  fi
done
