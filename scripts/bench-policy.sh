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
# Environment: SMTPGUARD_BIN, POLICY_LOAD_BIN (default .build/release/…, built when so);
#   SMTPGUARD_BEFORE_BIN: another build of the guard, run beside it on its own ports and
#   measured in the same rounds ("dovecot-before", "postfix-before"), so that a change is
#   compared with the code before it in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
REQUESTS=${1:-100000}
[ -n "${SMTPGUARD_BIN:-}" ] || swift build -c release --product smtpguard >/dev/null
[ -n "${POLICY_LOAD_BIN:-}" ] || swift build -c release --product policy-load >/dev/null
BIN=$(realpath "${SMTPGUARD_BIN:-$ROOT/.build/release/smtpguard}")
LOAD=$(realpath "${POLICY_LOAD_BIN:-$ROOT/.build/release/policy-load}")
BEFORE=${SMTPGUARD_BEFORE_BIN:+$(realpath "$SMTPGUARD_BEFORE_BIN")}
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
# policy_config NAME BASE-PORT: admin BASE+3, Dovecot BASE, Postfix BASE+1.
policy_config() {
  cat >"$WORK/$1.yaml" <<YAML
admin:
  listen: 127.0.0.1:$(($2 + 3))
  token: bench-admin-token-0123456789
dovecot_policy:
  listen: 127.0.0.1:$2
  api_header: "X-API-Key: $KEY"
  hash_nonce: "bench-nonce"
postfix_policy:
  listen: ["127.0.0.1:$(($2 + 1))"]
state:
  path: $WORK/$1.db
events:
  path: $WORK/$1-events.jsonl
YAML
}
policy_config policy 18325
"$BIN" policy --config "$WORK/policy.yaml" --log-level error >"$WORK/guard.log" 2>&1 &
PIDS+=($!)
ports="18325 18326 18327"
if [ -n "$BEFORE" ]; then
  policy_config before 18335
  "$BEFORE" policy --config "$WORK/before.yaml" --log-level error >"$WORK/before.log" 2>&1 &
  PIDS+=($!)
  ports="$ports 18335 18336"
fi
"$LOAD" serve-trivial --postfix 127.0.0.1:18327 >"$WORK/trivial.log" 2>&1 &
PIDS+=($!)
for port in $ports; do
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done
echo "machine: $(nproc) cores; $REQUESTS requests per measurement, 8 connections, one request in flight each"

for round in 1 2 3; do
  for what in dovecot-trivial dovecot ${BEFORE:+dovecot-before} postfix-trivial postfix ${BEFORE:+postfix-before}; do
    case $what in
      dovecot-trivial) out=$("$LOAD" dovecot --target 127.0.0.1:18325 --api-key "$KEY" --path /health --requests "$REQUESTS" --json) ;;
      dovecot) out=$("$LOAD" dovecot --target 127.0.0.1:18325 --api-key "$KEY" --requests "$REQUESTS" --json) ;;
      postfix-trivial) out=$("$LOAD" postfix --target 127.0.0.1:18327 --requests "$REQUESTS" --json) ;;
      postfix) out=$("$LOAD" postfix --target 127.0.0.1:18326 --requests "$REQUESTS" --json) ;;
      dovecot-before) out=$("$LOAD" dovecot --target 127.0.0.1:18335 --api-key "$KEY" --requests "$REQUESTS" --json) ;;
      postfix-before) out=$("$LOAD" postfix --target 127.0.0.1:18336 --requests "$REQUESTS" --json) ;;
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
    if (1, name + "-before") in rows:
        before = med(name + "-before", "per_second")
        print(f"{name} before: decisions {before:,.0f}/s (p99 {med(name + '-before', 'p99_us'):.0f} µs) = {before / trivial:.2f} of trivial; after/before {real / before:.2f}")
PY
echo "events written: $(wc -l <"$WORK/policy-events.jsonl"); bans: $(grep -c '"event":"ban"' "$WORK/policy-events.jsonl" || true)"
