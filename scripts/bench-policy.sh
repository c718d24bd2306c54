#!/usr/bin/env bash
# Benchmarks of the policy servers (BENCHMARKS.md, "Policy servers"), each against a trivial
# endpoint of the same server code that does no work, in the same run:
#   1. Dovecot's auth policy: allow / report decisions over HTTP keep-alive (8 connections,
#      one request in flight each, as Dovecot's client) against `smtpguard policy`, versus the
#      same bodies POSTed to /health of the same running server (read, answered, not decided).
#   2. Postfix's policy delegation: CONNECT and authenticated RCPT requests against
#      `smtpguard policy`, versus the same server code answering DUNNO without work
#      (`policy-load serve-trivial`).
# Three rounds, alternating; requests per second and the 99th-percentile latency.
#
#   scripts/bench-policy.sh [REQUESTS]      (default 100000 per measurement)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
REQUESTS=${1:-100000}
swift build -c release --product smtpguard >/dev/null
swift build -c release --product policy-load >/dev/null
BIN="$ROOT/.build/release/smtpguard"
LOAD="$ROOT/.build/release/policy-load"
WORK=$(mktemp -d /tmp/smtpguard-bench-policy.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

KEY="bench-$$-key"
# The admin server is on, as by default: its sinks (metrics, the event feed, the
# statistics) hear every decision measured here.
cat >"$WORK/policy.yaml" <<YAML
admin:
  listen: 127.0.0.1:18328
  token: bench-admin-token-0123456789
dovecot_policy:
  listen: 127.0.0.1:18325
  api_header: "X-API-Key: $KEY"
  hash_nonce: "bench-nonce"
postfix_policy:
  listen: ["127.0.0.1:18326"]
state:
  path: $WORK/state.db
events:
  path: $WORK/events.jsonl
YAML
"$BIN" policy --config "$WORK/policy.yaml" --log-level error >"$WORK/guard.log" 2>&1 &
PIDS+=($!)
"$LOAD" serve-trivial --postfix 127.0.0.1:18327 >"$WORK/trivial.log" 2>&1 &
PIDS+=($!)
for port in 18325 18326 18327; do
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done
echo "machine: $(nproc) cores; $REQUESTS requests per measurement, 8 connections, one request in flight each"

for round in 1 2 3; do
  for what in dovecot-trivial dovecot postfix-trivial postfix; do
    case $what in
      dovecot-trivial) out=$("$LOAD" dovecot --target 127.0.0.1:18325 --api-key "$KEY" --path /health --requests "$REQUESTS" --json) ;;
      dovecot) out=$("$LOAD" dovecot --target 127.0.0.1:18325 --api-key "$KEY" --requests "$REQUESTS" --json) ;;
      postfix-trivial) out=$("$LOAD" postfix --target 127.0.0.1:18327 --requests "$REQUESTS" --json) ;;
      postfix) out=$("$LOAD" postfix --target 127.0.0.1:18326 --requests "$REQUESTS" --json) ;;
    esac
    echo "round $round $what: $out"
    echo "$round $what $out" >>"$WORK/results"
  done
done
python3 - "$WORK/results" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    round_, what, text = line.split(" ", 2)
    rows[(int(round_), what)] = json.loads(text)
def med(what, field): return statistics.median(rows[(r, what)][field] for r in (1, 2, 3))
for name in ("dovecot", "postfix"):
    real, trivial = med(name, "per_second"), med(name + "-trivial", "per_second")
    errors = sum(rows[(r, name)]["errors"] for r in (1, 2, 3))
    print(f"{name}: decisions {real:,.0f}/s (p99 {med(name, 'p99_us'):.0f} µs) vs trivial {trivial:,.0f}/s (p99 {med(name + '-trivial', 'p99_us'):.0f} µs) = {real / trivial:.2f} of it (medians of 3 rounds); errors {errors}")
PY
echo "events written: $(wc -l <"$WORK/events.jsonl"); bans: $(grep -c '"event":"ban"' "$WORK/events.jsonl" || true)"
