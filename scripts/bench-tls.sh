#!/usr/bin/env bash
# bench-tls.sh: STARTTLS sessions per second through the guard versus Postfix doing STARTTLS
# itself, and the guard's resident memory with 10,000 idle connections held open.
#
# 1. STARTTLS, in one run, interleaved rounds (BENCH_RUNS), BENCH_SESSIONS sessions each at
#    BENCH_CONCURRENCY in flight, full TLS handshakes (no resumption), ECDSA P-256 certificates
#    from the same lab CA on both sides:
#      postfix   smtp-load -> Postfix 3.7 smtpd (STARTTLS by Postfix)           127.0.0.1:10025
#      guard     smtp-load -> SMTPGuard (STARTTLS by the guard) -> the same Postfix, plain
#    A session: greeting, EHLO, STARTTLS, handshake, EHLO, QUIT (smtp-load --starttls --tls-only).
# 2. Idle connections: the guard in front of Postfix's smtp-sink; smtp-load --hold opens
#    BENCH_IDLE connections (each greeted and past EHLO, from 127.4.x.y) and keeps them; the
#    guard's VmRSS is read before, while they are held, and 100 sessions are timed meanwhile.
#
# Both guards run with their state (SQLite), admin API and event log off, in a mktemp folder:
# nothing is written into the repository.
# Needs root (the lab, ulimit). Loopback only. Output: Markdown on stdout, progress on stderr.
#   scripts/bench-tls.sh                       BENCH_RUNS=3 BENCH_SESSIONS=2000 BENCH_IDLE=10000
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${BENCH_RUNS:-3}
sessions=${BENCH_SESSIONS:-2000}
concurrency=${BENCH_CONCURRENCY:-20}
idle=${BENCH_IDLE:-10000}
guard_bin=${SMTPGUARD_BIN:-.build/release/smtpguard}
load_bin=${SMTP_LOAD_BIN:-.build/release/smtp-load}
[ -x "$guard_bin" ] || swift build -c release --product smtpguard >&2
[ -x "$load_bin" ] || swift build -c release --product smtp-load >&2
guard_bin=$(realpath "$guard_bin") load_bin=$(realpath "$load_bin")  # the guards run in $work
bash scripts/install-deps.sh >&2
# Each held client connection costs the guard two descriptors (client and backend): with the
# hard limit of this machine (20,000, not raisable in its container) at most ~9,900 fit.
ulimit -n "$(ulimit -Hn)"
max_idle=$(( ($(ulimit -n) - 200) / 2 ))
if [ "$idle" -gt "$max_idle" ]; then
  echo "bench-tls: BENCH_IDLE=$idle needs $((idle * 2 + 200)) descriptors; the limit is $(ulimit -n): holding $max_idle" >&2
  idle=$max_idle
fi

work=$(mktemp -d /tmp/smtpguard-bench-tls.XXXXXX)
chmod 755 "$work"
export LAB_DIR="$work/lab"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  bash tests/integration/lab.sh stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
bash tests/integration/lab.sh start >"$work/lab.log" 2>&1 || { cat "$work/lab.log" >&2; exit 1; }
eval "$(bash tests/integration/lab.sh env)"

wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

cat >"$work/guard.yaml" <<YAML
admin:
  listen: ""
listen: ["127.0.0.1:12528"]
tls:
  certificate: $LAB_TLS_DIR/guard.pem
  key: $LAB_TLS_DIR/guard.key
backend:
  address: $LAB_SMTP
smtp:
  hostname: mx.guard.test
  max_connections: 20000
  max_connections_per_ip: 20000
events:
  path: ""
state:
  path: ""
YAML
(cd "$work" && exec "$guard_bin" run --config "$work/guard.yaml" --log-level warning) >"$work/guard.log" 2>&1 &
guard_pid=$!; pids+=("$guard_pid")
wait_port 12528

declare -A rates
for round in $(seq 1 "$runs"); do
  for setup in postfix guard; do
    port=$([ "$setup" = postfix ] && echo 10025 || echo 12528)
    echo "bench-tls: round $round, $setup" >&2
    result=$("$load_bin" --target "127.0.0.1:$port" --starttls --tls-only --sessions "$sessions" --concurrency "$concurrency" \
      --sources 127.5 --json)
    echo "  $result" >&2
    rates[$setup]="${rates[$setup]:-} $(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["sessions_per_second"] if r["errors"]==0 else "failed")' "$result")"
    declare -g "last_$setup=$result"
  done
done
median() { python3 -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:] if x!="failed"]; print(f"{statistics.median(v):,.0f}" if v else "failed")' "$@"; }

# 2. Idle connections, with a small asyncio SMTP server as the backend (smtp-sink stops
# accepting near a thousand connections).
python3 scripts/smtp-stub.py 127.0.0.1:12529 >"$work/stub.log" 2>&1 &
pids+=("$!")
wait_port 12529
cat >"$work/idle.yaml" <<YAML
admin:
  listen: ""
listen: ["127.0.0.1:12530"]
backend:
  address: 127.0.0.1:12529
smtp:
  hostname: mx.guard.test
  max_connections: 20000
  max_connections_per_ip: 20000
events:
  path: ""
state:
  path: ""
YAML
(cd "$work" && exec "$guard_bin" run --config "$work/idle.yaml" --log-level warning) >"$work/idle-guard.log" 2>&1 &
idle_pid=$!; pids+=("$idle_pid")
wait_port 12530
rss_before=$(rss_kib "$idle_pid")
SMTP_LOAD_HELD_FILE="$work/held" SMTP_LOAD_HOLD_PAUSE=5 "$load_bin" --target 127.0.0.1:12530 --hold "$idle" --sessions 100 \
  --concurrency 1 --sources 127.6 --json >"$work/idle-result.json" 2>"$work/idle-load.log" &
load_pid=$!
for _ in $(seq 1 600); do [ -s "$work/held" ] && break; sleep 0.5; done
sleep 3
rss_held=$(rss_kib "$idle_pid")
wait "$load_pid"
idle_result=$(cat "$work/idle-result.json")
held=$(cat "$work/held" 2>/dev/null || echo 0)

cat <<MD
### STARTTLS sessions and idle connections ($(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r))

Command: \`$0\` (BENCH_RUNS=$runs BENCH_SESSIONS=$sessions BENCH_CONCURRENCY=$concurrency BENCH_IDLE=$idle; guard \`$guard_bin\`, its state, admin API and event log off)

| STARTTLS session (EHLO, STARTTLS, full handshake, EHLO, QUIT) | sessions/s, median of $runs | runs |
|---|---|---|
| Postfix 3.7 smtpd doing STARTTLS itself | $(median ${rates[postfix]}) | ${rates[postfix]} |
| SMTPGuard doing STARTTLS, in front of the same Postfix | $(median ${rates[guard]}) | ${rates[guard]} |

Last round, raw: postfix \`$last_postfix\`; guard \`$last_guard\`.

| Idle connections held (greeted, past EHLO) | guard VmRSS | 100 sessions timed meanwhile |
|---|---|---|
| 0 | $((rss_before / 1024)) MiB | |
| $held | $((rss_held / 1024)) MiB ($(( (rss_held - rss_before) * 1024 / (held > 0 ? held : 1) )) bytes per connection) | \`$idle_result\` |
MD
