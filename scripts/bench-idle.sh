#!/usr/bin/env bash
# bench-idle.sh: what idle clients cost, through the guard and through HAProxy (mode tcp).
#
# Idle bots connect, read the greeting, say EHLO and then do nothing. The guard answers them
# itself and connects to the mail server only when a client starts something the server must
# see (MAIL, an AUTH it lets through): an idle client should hold one descriptor of the guard's
# and no connection (no smtpd process) of the mail server's. HAProxy in mode tcp, the peer,
# opens a backend connection for every client.
#
# For each set-up, in one run, against scripts/smtp-stub.py as the mail server (Postfix's
# smtp-sink stops accepting near a thousand connections):
#   1. the proxy is started with its soft open-file limit lowered to 1024 (the guard must raise
#      it itself; its log line is shown), then measured at rest;
#   2. scripts/idle-clients.py opens N idle clients from many loopback addresses (100 each);
#      with all of them open, the proxy's descriptors (/proc/PID/fd), its resident memory
#      (VmRSS) and the connections open at the mail server (ss, established, at its port) are
#      read; then BENCH_SESSIONS complete sessions (greeting, EHLO, MAIL, RCPT, RSET, QUIT) run
#      one after another from another address and their latency is taken (p50, p99, max); the
#      idle clients must all still be open afterwards;
#   3. the same sessions with no idle clients, as the baseline.
# Per idle client: (descriptors, memory with N idle − at rest right after the start) / N.
#
# The guard runs with its state, admin API and event log off, in a mktemp folder (nothing is
# written into the repository). This machine's hard limit is 20,000 descriptors: HAProxy needs
# two per client, so it is measured at BENCH_PEER_IDLE (5,000) and the guard at that and at
# BENCH_IDLE (15,000).
#
#   scripts/bench-idle.sh
#   BENCH_IDLE=2000 BENCH_PEER_IDLE=1000 BENCH_SESSIONS=200 scripts/bench-idle.sh   # quick check
# Environment: SMTPGUARD_BIN [.build/release/smtpguard; built when missing], BENCH_IDLE
# [15000], BENCH_PEER_IDLE [5000], BENCH_SESSIONS [500], BENCH_OUT [/tmp/bench-idle.json].
# Loopback only; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

IDLE=${BENCH_IDLE:-15000}
PEER_IDLE=${BENCH_PEER_IDLE:-5000}
SESSIONS=${BENCH_SESSIONS:-500}
OUT=${BENCH_OUT:-/tmp/bench-idle.json}
BIN=${SMTPGUARD_BIN:-$ROOT/.build/release/smtpguard}
if [ ! -x "$BIN" ]; then
  echo "bench-idle: building the release binary" >&2
  swift build -c release --product smtpguard >/dev/null
  BIN=$ROOT/.build/release/smtpguard
fi
command -v haproxy >/dev/null || { echo "bench-idle: haproxy is missing (scripts/install-deps.sh)" >&2; exit 1; }
command -v ss >/dev/null || { echo "bench-idle: ss (iproute2) is missing" >&2; exit 1; }

STUB_PORT=12590
GUARD_PORT=12591
HAPROXY_PORT=12592
WORK=$(mktemp -d /tmp/smtpguard-bench-idle.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_port() { # PORT PID LOG
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || { echo "bench-idle: the process for port $1 exited:" >&2; cat "$3" >&2; exit 1; }
    sleep 0.05
  done
  echo "bench-idle: nothing listens on $1 after 10 s" >&2
  cat "$3" >&2
  exit 1
}

fds() { ls "/proc/$1/fd" | wc -l; }
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
backend_connections() { ss -Htn state established "( sport = :$STUB_PORT )" | wc -l; }
soft_limit() { awk '/^Max open files/ { print $4 }' "/proc/$1/limits"; }

start_stub() {
  python3 scripts/smtp-stub.py "127.0.0.1:$STUB_PORT" >"$WORK/stub.log" 2>&1 &
  STUB_PID=$!
  PIDS+=("$STUB_PID")
  wait_port "$STUB_PORT" "$STUB_PID" "$WORK/stub.log"
}

start_guard() {
  cat >"$WORK/guard.yaml" <<EOF
listen: ["127.0.0.1:$GUARD_PORT"]
backend:
  address: 127.0.0.1:$STUB_PORT
smtp:
  max_connections: 16000
  max_connections_per_ip: 200
state:
  path: ""
admin:
  listen: ""
events:
  path: ""
EOF
  (cd "$WORK" && ulimit -Sn 1024 && exec "$BIN" run --config "$WORK/guard.yaml") >"$WORK/guard.log" 2>&1 &
  PROXY_PID=$!
  PIDS+=("$PROXY_PID")
  wait_port "$GUARD_PORT" "$PROXY_PID" "$WORK/guard.log"
}

start_haproxy() {
  # With maxconn 16000 HAProxy refuses to start under a 20,000 hard limit ("Cannot raise FD
  # limit to 32017"): it gets the largest maxconn that fits, two descriptors per connection.
  local hard
  hard=$(ulimit -Hn)
  HAPROXY_MAXCONN=$(( (hard - 1000) / 2 ))
  [ "$HAPROXY_MAXCONN" -gt 16000 ] && HAPROXY_MAXCONN=16000
  cat >"$WORK/haproxy.cfg" <<EOF
global
    maxconn $HAPROXY_MAXCONN
    nbthread 2
defaults
    mode tcp
    timeout connect 5s
    timeout client 600s
    timeout server 600s
listen smtp
    bind 127.0.0.1:$HAPROXY_PORT
    maxconn $HAPROXY_MAXCONN
    server mail 127.0.0.1:$STUB_PORT
EOF
  (ulimit -Sn 1024 && exec haproxy -db -f "$WORK/haproxy.cfg") >"$WORK/haproxy.log" 2>&1 &
  PROXY_PID=$!
  PIDS+=("$PROXY_PID")
  wait_port "$HAPROXY_PORT" "$PROXY_PID" "$WORK/haproxy.log"
}

stop() { # PID
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}

# measure SETUP PORT N: prints one JSON object.
measure() {
  local setup=$1 port=$2 n=$3 hold="$WORK/hold-$1-$3" report="$WORK/report-$1-$3.json"
  local fd0 rss0 be0 fd1 rss1 be1
  sleep 1
  # At rest: as the proxy was right after its start (the first call), so that memory the
  # allocator kept from an earlier, larger round is not taken for free.
  if [ "$n" -eq 0 ]; then REST=("$(fds "$PROXY_PID")" "$(rss_kb "$PROXY_PID")" "$(backend_connections)"); fi
  fd0=${REST[0]}; rss0=${REST[1]}; be0=${REST[2]}
  : >"$hold"
  timeout 900 python3 scripts/idle-clients.py "127.0.0.1:$port" --idle "$n" --sessions "$SESSIONS" \
    --report "$report" --hold-file "$hold" 2>"$WORK/idle-$setup-$n.log" &
  local client=$!
  for _ in $(seq 1 9000); do
    grep -qx ready "$hold" 2>/dev/null && break
    kill -0 "$client" 2>/dev/null || { echo "bench-idle: $setup: the idle clients failed:" >&2; cat "$WORK/idle-$setup-$n.log" >&2; exit 1; }
    sleep 0.1
  done
  grep -qx ready "$hold" || { echo "bench-idle: $setup: $n idle clients not open after 15 min" >&2; exit 1; }
  sleep 2
  fd1=$(fds "$PROXY_PID"); rss1=$(rss_kb "$PROXY_PID"); be1=$(backend_connections)
  echo measure >"$hold"
  for _ in $(seq 1 6000); do grep -qx done "$hold" 2>/dev/null && break; sleep 0.1; done
  echo close >"$hold"
  wait "$client" || { echo "bench-idle: $setup: the idle clients failed:" >&2; cat "$WORK/idle-$setup-$n.log" >&2; exit 1; }
  python3 - "$setup" "$n" "$fd0" "$rss0" "$be0" "$fd1" "$rss1" "$be1" "$report" <<'EOF'
import json, sys
setup, n, fd0, rss0, be0, fd1, rss1, be1, path = sys.argv[1:]
n, fd0, rss0, be0, fd1, rss1, be1 = map(int, (n, fd0, rss0, be0, fd1, rss1, be1))
r = json.load(open(path))
r.update({"setup": setup, "fds_rest": fd0, "fds_idle": fd1, "rss_rest_kb": rss0, "rss_idle_kb": rss1,
          "backend_rest": be0, "backend_idle": be1})
if n:
    r["fds_per_idle"] = round((fd1 - fd0) / n, 3)
    r["kb_per_idle"] = round((rss1 - rss0) / n, 2)
print(json.dumps(r))
EOF
}

results="$WORK/results.jsonl"
: >"$results"

# The guard.
start_stub
start_guard
guard_soft=$(soft_limit "$PROXY_PID")
guard_said=$(grep -m1 "open-file limit" "$WORK/guard.log" | sed 's/^.*\(raised\|the hard\)/\1/' || true)
for n in 0 "$PEER_IDLE" "$IDLE"; do measure guard "$GUARD_PORT" "$n" >>"$results"; done
stop "$PROXY_PID"
stop "$STUB_PID"

# HAProxy.
start_stub
start_haproxy
haproxy_soft=$(soft_limit "$PROXY_PID")
printf 'global\n    maxconn 16000\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 5s\n    timeout server 5s\nlisten x\n    bind 127.0.0.1:12593\n    server s 127.0.0.1:%s\n' "$STUB_PORT" >"$WORK/haproxy-16000.cfg"
haproxy_refused=$( (ulimit -Sn 1024; timeout 3 haproxy -db -f "$WORK/haproxy-16000.cfg" 2>&1) | grep -m1 -o "Cannot raise FD limit.*" || true)
for n in 0 "$PEER_IDLE"; do measure haproxy "$HAPROXY_PORT" "$n" >>"$results"; done
stop "$PROXY_PID"
stop "$STUB_PID"

cp "$results" "$OUT"
python3 - "$results" "$guard_soft" "$haproxy_soft" "$guard_said" "$(haproxy -v | sed -n 1p)" "$SESSIONS" "$HAPROXY_MAXCONN" "$haproxy_refused" "$(ulimit -Hn)" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
guard_soft, haproxy_soft, said, haproxy_version, sessions, maxconn, refused, hard = sys.argv[2:]
print("| set-up | idle clients | still open after | proxy descriptors | per idle client | proxy RSS (MiB) | per idle client (KiB) | mail-server connections open | new session p50 / p99 / max (ms) | failed |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
for r in rows:
    per_fd = r.get("fds_per_idle", "")
    per_kb = r.get("kb_per_idle", "")
    print("| %s | %d | %d | %d | %s | %.1f | %s | %d | %s / %s / %s | %d |" % (
        r["setup"], r["idle"], r["idle_still_open"], r["fds_idle"], per_fd, r["rss_idle_kb"] / 1024.0, per_kb,
        r["backend_idle"], r["p50_ms"], r["p99_ms"], r["max_ms"], r["failed"]))
print()
print("Soft open-file limit after start (both started with 1024): guard %s, HAProxy %s." % (guard_soft, haproxy_soft))
print("Hard limit %s. The guard (smtp.max_connections 16000) said: %s" % (hard, said or "(nothing)"))
print("HAProxy with maxconn 16000: %s; it ran with maxconn %s." % (refused or "started", maxconn))
print("%s; %s new sessions per row, one after another." % (haproxy_version, sessions))
EOF
echo "(raw figures: $OUT)"
