#!/usr/bin/env bash
# Runs the libFuzzer targets for a bounded time each.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (default: 60 seconds; all of session lines sasl replies proxy-header evtx)
#
# Builds the fuzz executables with -sanitize=fuzzer,address into .build-fuzz, then runs each
# on a copy of its corpus (Fuzz/Corpus/TARGET) for SECONDS. An input that breaks an invariant
# or crashes is copied into Fuzz/Corpus/TARGET/ as crash-*: the regression test
# (Tests/FuzzRegressionTests) replays it from then on; fix the bug and commit it. New
# coverage found on the way is not kept (run with KEEP_CORPUS=1 to merge it in).
# Exits non-zero when any target found a crash.
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-60}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(session lines sasl replies proxy-header evtx)

build_flags=(-c debug --scratch-path .build-fuzz -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -DFUZZING)
build_log=$(mktemp /tmp/smtpguard-fuzz-build.XXXXXX)
for target in "${TARGETS[@]}"; do
  # A failed build fails the run (a stale binary from an earlier build is never fuzzed), and
  # so does a compiler warning; SwiftPM's notice about a dependency's own package layout
  # (swift-distributed-tracing, pulled in by Hummingbird) is not ours to fix.
  if ! swift build "${build_flags[@]}" --product "fuzz-$target" >"$build_log" 2>&1; then
    grep -E "error" "$build_log" | head -20
    echo "fuzz: building fuzz-$target failed (full output: $build_log)"
    exit 1
  fi
  if grep -E "error|warning: " "$build_log" | grep -vE "^warning: '[^']+': found [0-9]+ file\(s\) which are unhandled"; then
    echo "fuzz: building fuzz-$target printed errors or warnings (full output: $build_log)"
    exit 1
  fi
done
rm -f "$build_log"
BIN=$(swift build "${build_flags[@]}" --show-bin-path)

export SWIFT_BACKTRACE=enable=no  # libFuzzer and ASan report crashes themselves
found=0
for target in "${TARGETS[@]}"; do
  work=$(mktemp -d /tmp/smtpguard-fuzz-$target.XXXXXX)
  cp Fuzz/Corpus/"$target"/* "$work"/ 2>/dev/null
  artifacts=$(mktemp -d /tmp/smtpguard-fuzz-artifacts.XXXXXX)
  echo "fuzz: $target for ${SECONDS_EACH}s ($(ls "$work" | wc -l) seed inputs)"
  "$BIN/fuzz-$target" "$work" -max_total_time="$SECONDS_EACH" -max_len=8192 -timeout=10 -rss_limit_mb=4096 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 >"$work.log" 2>&1
  status=$?
  grep -E "^stat::number_of_executed_units|^stat::new_units_added|Done [0-9]+ runs" "$work.log" | sed "s/^/fuzz: $target: /"
  for crash in "$artifacts"/*; do
    [ -e "$crash" ] || continue
    name="crash-$(sha1sum "$crash" | cut -c1-12)"
    cp "$crash" "Fuzz/Corpus/$target/$name"
    echo "fuzz: $target: FOUND $(basename "$crash") -> Fuzz/Corpus/$target/$name"
    grep -E "Fatal error|precondition|ERROR: AddressSanitizer|SUMMARY" "$work.log" | head -5 | sed "s/^/fuzz: $target:   /"
    found=1
  done
  if [ "$status" -ne 0 ] && [ "$found" -eq 0 ]; then echo "fuzz: $target exited $status; log: $work.log"; found=1; fi
  if [ -n "${KEEP_CORPUS:-}" ]; then
    "$BIN/fuzz-$target" -merge=1 "Fuzz/Corpus/$target" "$work" >/dev/null 2>&1
  fi
  rm -rf "$work" "$artifacts"
  [ "$found" -eq 0 ] && rm -f "$work.log"
done
exit "$found"
