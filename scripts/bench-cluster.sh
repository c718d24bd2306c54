#!/usr/bin/env bash
# bench-cluster.sh: how fast a ban decided by one guard reaches another on the same
# PostgreSQL (tests/integration/pg.sh, loopback), and what PostgreSQL state costs.
#
# Two guards in front of scripts/smtp-stub.py (every password wrong; no tarpit). For each of
# BENCH_BANS client addresses (127.60.x.1, each in its own /24): one session on guard B sends AUTH until it is
# banned (the 6th failure), then guard A is probed every 5 ms until it refuses that address at
# connect; the time from B's ban reply to A's first refusal is the propagation latency.
#   scripts/bench-cluster.sh                   BENCH_BANS=200
set -euo pipefail
cd "$(dirname "$0")/.."
bans=${BENCH_BANS:-200}
guard_bin=${SMTPGUARD_BIN:-.build/release/smtpguard}
[ -x "$guard_bin" ] || swift build -c release --product smtpguard >&2
bash scripts/install-deps.sh >&2
work=$(mktemp -d /tmp/smtpguard-bench-cluster.XXXXXX)
chmod 755 "$work"
export PG_DIR="$work/pg" PG_PORT=15434
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  bash tests/integration/pg.sh stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
bash tests/integration/pg.sh start >&2
eval "$(bash tests/integration/pg.sh env)"
python3 scripts/smtp-stub.py 127.0.0.1:12539 >/dev/null 2>&1 &
pids+=($!)
for n in 1 2; do
  cat >"$work/guard$n.yaml" <<YAML
admin:
  listen: ""
listen: ["127.0.0.1:1285$n"]
auth:
  require_tls: false
backend:
  address: 127.0.0.1:12539
events:
  path: ""
state:
  url: $PG_URL
guard:
  tarpit:
    initial: 0s
    min_refusal_delay: 0s
YAML
  "$guard_bin" run --config "$work/guard$n.yaml" --log-level warning >"$work/guard$n.log" 2>&1 &
  pids+=($!)
done
for port in 12539 12851 12852; do
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
done

python3 - "$bans" <<'PY'
import socket, statistics, sys, time, base64
bans = int(sys.argv[1])

def reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            return lines
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            return lines

def banned_on_b(source):
    s = socket.create_connection(("127.0.0.1", 12852), timeout=10, source_address=(source, 0))
    f = s.makefile("rb")
    greeting = reply(f)
    if not greeting or not greeting[0].startswith(b"220"):
        sys.exit("guard B did not greet %s: %r" % (source, greeting))
    s.sendall(b"EHLO bench\r\n"); reply(f)
    for i in range(10):
        payload = base64.b64encode(b"\0user%d\0wrong" % i)
        s.sendall(b"AUTH PLAIN " + payload + b"\r\n")
        answer = reply(f)
        if len(answer) > 1 or (answer and answer[0].startswith(b"421")):
            break  # the failure reply, then 421: banned
        if answer and answer[0].startswith(b"535") and i >= 5:
            more = reply(f)  # the 421 that follows a ban
            break
    t = time.monotonic()
    s.close()
    return t

def refused_on_a(source):
    s = socket.create_connection(("127.0.0.1", 12851), timeout=10, source_address=(source, 0))
    f = s.makefile("rb")
    first = reply(f)
    s.close()
    return bool(first) and first[0].startswith(b"554")

latencies = []
for k in range(bans):
    source = "127.%d.%d.1" % (60 + k // 250, k % 250)  # each in a /24 of its own (no prefix bans)
    t0 = banned_on_b(source)
    deadline = t0 + 5
    while time.monotonic() < deadline:
        if refused_on_a(source):
            latencies.append((time.monotonic() - t0) * 1000)
            break
        time.sleep(0.005)
    else:
        latencies.append(float("inf"))
ok = [l for l in latencies if l != float("inf")]
ok.sort()
p = lambda q: ok[min(len(ok) - 1, int(q * len(ok)))] if ok else float("nan")
print(f"| bans | reached the other guard | median | p99 | max |")
print(f"|---|---|---|---|---|")
print(f"| {bans} | {len(ok)} | {statistics.median(ok):.0f} ms | {p(0.99):.0f} ms | {ok[-1]:.0f} ms |")
PY
