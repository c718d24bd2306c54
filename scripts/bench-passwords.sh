#!/usr/bin/env bash
# The password audit's speed per hash scheme against John the Ripper, in the same run
# (BENCHMARKS.md, "Password audit"): scripts/bench-passwords.py on the release build.
#
#   scripts/bench-passwords.sh [ACCOUNTS] [WORDS]     (defaults 4 accounts per scheme, 1000 words)
# SMTPGUARD_BIN: the binary to measure (default .build/release/smtpguard, built only when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
BIN="${SMTPGUARD_BIN:-$(pwd)/.build/release/smtpguard}"
[ -x "$BIN" ] || swift build -c release --product smtpguard >/dev/null
python3 scripts/bench-passwords.py "$(realpath "$BIN")" "$@"
