#!/usr/bin/env bash
# The log watcher against the real thing:
#   1. Postfix + Dovecot SASL of the lab (tests/integration/lab.sh) write their logs; swaks
#      guesses passwords straight at Postfix; `smtpguard watch` follows both logs and bans the
#      attacker after the configured failures (each guess is in both logs: counted once), in
#      the shared state and the ban list. A restart resumes where it stopped.
#   2. In a network namespace created here, the watcher drives nftables: bans become set
#      elements with their timeouts, IPv6 clients as /64s, trusted networks never, elements
#      go when the ban runs out; 100,000 bans are applied in a handful of nft commands.
#   3. journald through systemd-cat when a journal runs here (otherwise the Swift tests cover
#      journald with a stand-in journalctl, and this check says it is skipped).
#
# Environment: SMTPGUARD_BIN (default .build/debug/smtpguard). Prints PASS/FAIL lines and
# "N passed, N failed"; exits non-zero when a check failed.
set -uo pipefail

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
bash scripts/install-deps.sh || { echo "watch: cannot install the peers"; exit 1; }
BIN="${SMTPGUARD_BIN:-$ROOT/.build/debug/smtpguard}"
[ -x "$BIN" ] || swift build --product smtpguard >/dev/null || { echo "watch: build failed"; exit 1; }

WORK=$(mktemp -d /tmp/smtpguard-watch.XXXXXX)
chmod 755 "$WORK"
export LAB_DIR="$WORK/lab"
export LAB_SMTP_PORT=10035
NS="sgwatch$$"
WATCH_PID=""
. tests/integration/checks.sh

cleanup() {
  [ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null && wait "$WATCH_PID" 2>/dev/null
  ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  bash tests/integration/lab.sh stop >/dev/null 2>&1
  if [ "$failed" -gt 0 ] || [ -n "${KEEP_WORK:-}" ]; then echo "watch: logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

stop_watch() {
  [ -n "$WATCH_PID" ] || return 0
  kill -INT "$WATCH_PID" 2>/dev/null
  wait "$WATCH_PID" 2>/dev/null
  WATCH_PID=""
}

# ---------------------------------------------------------------------------------------
# 1. Real Postfix + Dovecot logs.
bash tests/integration/lab.sh start >"$WORK/lab-start.log" 2>&1 || { cat "$WORK/lab-start.log"; echo "0 passed, 1 failed"; exit 1; }
eval "$(bash tests/integration/lab.sh env)"
PF_LOG="$LAB_DIR/postfix.log"
DC_LOG="$LAB_DIR/dovecot.log"

cat >"$WORK/watch.yaml" <<EOF
admin:
  listen: ""
watch:
  sources:
    - "postfix file:$PF_LOG"
    - "dovecot file:$DC_LOG"
  positions: $WORK/positions
  poll_interval: 50ms
state:
  path: $WORK/state.db
  flush_interval: 100ms
events:
  path: $WORK/events.jsonl
firewall:
  banlist_listen: 127.0.0.1:12680
guard:
  limits:
    ip_failures_short: 4
  tarpit:
    initial: 0s
EOF
check "config check accepts the watcher configuration" "$BIN" config check "$WORK/watch.yaml"
"$BIN" watch --config "$WORK/watch.yaml" >"$WORK/watch.log" 2>&1 &
WATCH_PID=$!
wait_for 10 grep -q "following $DC_LOG" "$WORK/watch.log"

guess() {  # guess FROM USER PASSWORD
  local out
  out=$(timeout 30 swaks --server "$LAB_SMTP" --local-interface "$1" --helo bot.test --auth PLAIN \
    --auth-user "$2" --auth-password "$3" --quit-after AUTH --timeout 20 2>&1)
  grep -q " 535 " <<<"$out"
}
failures_seen() { [ "$(grep -c '"event":"auth"' "$WORK/events.jsonl" 2>/dev/null)" -ge "$1" ]; }

for i in 1 2 3 4; do guess 127.0.5.1 bob "guess-$i" || echo "watch: swaks guess $i was not refused"; done
wait_for 10 failures_seen 4
sleep 0.5
check "four guesses, each in Postfix's and Dovecot's log, count as four (no ban yet)" \
  bash -c '[ "$(grep -c "\"event\":\"auth\"" "$1")" -eq 4 ] && ! grep -q "\"event\":\"ban\"" "$1"' _ "$WORK/events.jsonl"
check "both logs were matched" bash -c 'grep -q "SASL PLAIN authentication failed" "$1" && grep -q "Password mismatch" "$2"' _ "$PF_LOG" "$DC_LOG"
guess 127.0.5.1 bob "guess-5"
check "the fifth guess bans the attacker" wait_for 10 grep -q '"event":"ban".*"key":"127.0.5.1"' "$WORK/events.jsonl"
check "the ban list names it" wait_for 5 bash -c 'curl -s http://127.0.0.1:12680/bans | grep -qx 127.0.5.1'
check "the ban is in the shared state" wait_for 5 python3 -c '
import sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute("select count(*) from bans where key = ?", ("127.0.5.1",)).fetchone()[0]
sys.exit(0 if rows >= 1 else 1)' "$WORK/state.db"
# Postfix logs a success with the username when the client starts a message.
out=$(timeout 30 swaks --server "$LAB_SMTP" --local-interface 127.0.5.2 --auth PLAIN --auth-user alice --auth-password "$LAB_PASS_ALICE" \
  --from alice@example.test --to "$LAB_RCPT" 2>&1)
check "a legitimate login is seen as a success" wait_for 10 grep -q '"event":"auth".*"client_ip":"127.0.5.2".*"outcome":"success"' "$WORK/events.jsonl"
check "no password reaches the events" bash -c '! grep -q "guess-\|$1" "$2"' _ "$LAB_PASS_ALICE" "$WORK/events.jsonl"

# Restart: positions resume; lines written while it was down are read once.
stop_watch
check "positions were saved at shutdown" grep -q "^file	$PF_LOG	" "$WORK/positions"
before=$(grep -c '"event":"auth"' "$WORK/events.jsonl")
guess 127.0.5.3 carol "while-down" || true
"$BIN" watch --config "$WORK/watch.yaml" >"$WORK/watch2.log" 2>&1 &
WATCH_PID=$!
wait_for 10 failures_seen $((before + 1))
sleep 1
check "a restart reads only what was written while it was down" \
  bash -c '[ "$(grep -c "\"event\":\"auth\"" "$1")" -eq $(($2 + 1)) ]' _ "$WORK/events.jsonl" "$before"
check "the ban was restored from the state" bash -c 'curl -s http://127.0.0.1:12680/bans | grep -qx 127.0.5.1'
stop_watch

"$BIN" watch --check "$PF_LOG" --format postfix >"$WORK/check-postfix.txt"; status=$?
check "watch --check on Postfix's real log: every failure matched, no suspects" \
  bash -c '[ $1 -eq 0 ] && grep -Eq "postfix/sasl_failed +[1-9]" "$2" && grep -Eq "unmatched suspects +0" "$2"' _ $status "$WORK/check-postfix.txt"
"$BIN" watch --check "$DC_LOG" --format dovecot >"$WORK/check-dovecot.txt"; status=$?
check "watch --check on Dovecot's real log: every failure matched, no suspects" \
  bash -c '[ $1 -eq 0 ] && grep -Eq "dovecot/password_mismatch +[1-9]" "$2"' _ $status "$WORK/check-dovecot.txt"
printf 'Nov 23 01:00:00 mx dovecot: auth: Info: new-format(x): authentication failed somehow\n' >"$WORK/odd.log"
"$BIN" watch --check "$WORK/odd.log" >"$WORK/check-odd.txt"; status=$?
check "watch --check reports a suspect line and exits 1" bash -c '[ $1 -eq 1 ] && grep -q "new-format" "$2"' _ $status "$WORK/check-odd.txt"
"$BIN" replay --config "$WORK/watch.yaml" --json "$PF_LOG" "$DC_LOG" >"$WORK/replay.json"
check "replay of the real logs: the attacker's ban and the merged duplicates" python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert any(b["key"] == "127.0.5.1" for b in r["bans"]), r["bans"]
assert r["merged"] >= 5 and r["failures"] >= 6, (r["merged"], r["failures"])' "$WORK/replay.json"
bash tests/integration/lab.sh stop >/dev/null 2>&1

# ---------------------------------------------------------------------------------------
# 2. nftables, in a network namespace of our own.
ip netns add "$NS" || { echo "watch: cannot create a network namespace"; failed=$((failed + 1)); }
in_ns() { ip netns exec "$NS" "$@"; }
in_ns ip link set lo up
cat >"$WORK/nft.yaml" <<EOF
admin:
  listen: ""
watch:
  sources: ["postfix file:$WORK/nft.log"]
  positions: ""
  from_start: true
  poll_interval: 50ms
state:
  path: ""
events:
  path: $WORK/nft-events.jsonl
firewall:
  backend: nftables
guard:
  trusted_networks: [198.51.100.0/24]
  limits:
    ip_failures_short: 1
    prefix_failures_short: 1000000
    prefix_failures_long: 1000000
    ip_failures_long: 100000
    usernames_per_ip: 10000
    username_failures_short: 100000
    username_failures_long: 100000
    ips_per_username: 10000
  bans:
    ip: 4s
    jitter: 0
EOF
fail_line() { echo "Nov 23 01:00:00 mx postfix/smtpd[1]: warning: unknown[$1]: SASL LOGIN authentication failed: x, sasl_username=user$2"; }
: >"$WORK/nft.log"
ip netns exec "$NS" "$BIN" watch --config "$WORK/nft.yaml" --log-level debug >"$WORK/nft-watch.log" 2>&1 &
WATCH_PID=$!
check "the watcher creates its nftables table" wait_for 10 bash -c 'ip netns exec "$1" nft list table inet smtpguard >/dev/null 2>&1' _ "$NS"
for n in 1 2 3; do
  fail_line 192.0.2.7 $n; fail_line 2001:db8:5:6::77 $n; fail_line 198.51.100.9 $n
done >>"$WORK/nft.log"
check "a banned IPv4 client is an element with its timeout" wait_for 5 bash -c 'ip netns exec "$1" nft list set inet smtpguard v4 | grep -Eq "192\.0\.2\.7 timeout [1-5]s"' _ "$NS"
check "a banned IPv6 client is its /64" wait_for 5 bash -c 'ip netns exec "$1" nft list set inet smtpguard v6 | grep -q "2001:db8:5:6::/64 timeout"' _ "$NS"
check "a trusted network is never banned" bash -c '! ip netns exec "$1" nft list ruleset | grep -q "198.51.100"' _ "$NS"
check "the drop rule covers the mail ports" bash -c 'ip netns exec "$1" nft list chain inet smtpguard input | grep -q "ip saddr @v4 tcp dport { 25, 465, 587 } drop"' _ "$NS"
check "the element is gone when the ban runs out" wait_for 10 bash -c '! ip netns exec "$1" nft list set inet smtpguard v4 | grep -q "192.0.2.7"' _ "$NS"
wait_for 10 grep -q '"event":"unban".*"key":"192.0.2.7"' "$WORK/nft-events.jsonl"
fail_line 192.0.2.7 9 >>"$WORK/nft.log"; fail_line 192.0.2.7 10 >>"$WORK/nft.log"
check "a second ban escalates and is put in again" wait_for 5 bash -c 'ip netns exec "$1" nft list set inet smtpguard v4 | grep -Eq "192\.0\.2\.7 timeout [0-9]+s"' _ "$NS"

stop_watch

# 100,000 bans: 100,000 addresses in distinct /24s, two failures each (the second bans), bans
# of an hour; the time from the lines being written to the last element in the set.
sed -e "s|$WORK/nft.log|$WORK/nft100k.log|" -e "s|ip: 4s|ip: 1h|" "$WORK/nft.yaml" >"$WORK/nft100k.yaml"
: >"$WORK/nft100k.log"
ip netns exec "$NS" "$BIN" watch --config "$WORK/nft100k.yaml" --log-level debug >"$WORK/nft100k-watch.log" 2>&1 &
WATCH_PID=$!
wait_for 10 grep -q "firewall nftables: ready" "$WORK/nft100k-watch.log"
python3 - "$WORK/nft100k.lines" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    n = 0
    for a in range(10, 250):
        for b in range(0, 256):
            for c in range(0, 2):
                if n >= 100000: break
                addr = f"{a}.{b}.{c * 128}.1"
                for k in range(2):
                    f.write(f"Nov 23 01:00:00 mx postfix/smtpd[1]: warning: unknown[{addr}]: SASL LOGIN authentication failed: x, sasl_username=u{k}\n")
                n += 1
PY
export NS
last=$(tail -1 "$WORK/nft100k.lines" | sed -e 's/.*unknown\[//' -e 's/\].*//')
start=$(date +%s.%N)
cat "$WORK/nft100k.lines" >>"$WORK/nft100k.log"
wait_for 120 ip netns exec "$NS" nft get element inet smtpguard v4 "{ $last }" >/dev/null 2>&1
end=$(date +%s.%N)
count=$(ip netns exec "$NS" nft -j list set inet smtpguard v4 | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["nftables"][1]["set"].get("elem", [])))')
check "100,000 bans reach the nftables set" [ "$count" -ge 100000 ]
batches=$(grep -c "changes applied in one batch" "$WORK/nft100k-watch.log")
echo "watch: 100,000 bans in the set $(python3 -c "print(round($end - $start, 1))") s after the lines were written, in $batches nft batches"
check "they were applied in a few batches, not one by one" bash -c '[ "$1" -ge 1 ] && [ "$1" -le 100 ]' _ "$batches"
stop_watch

# ---------------------------------------------------------------------------------------
# 3. journald.
if [ -S /run/systemd/journal/socket ] && command -v systemd-cat >/dev/null; then
  cat >"$WORK/journal.yaml" <<EOF
admin:
  listen: ""
watch:
  sources: ["postfix journald:identifier=postfix/smtpd"]
  positions: ""
state:
  path: ""
events:
  path: $WORK/journal-events.jsonl
EOF
  "$BIN" watch --config "$WORK/journal.yaml" >"$WORK/journal-watch.log" 2>&1 &
  WATCH_PID=$!
  sleep 2
  echo "warning: unknown[192.0.2.99]: SASL PLAIN authentication failed: x, sasl_username=jj" | systemd-cat -t postfix/smtpd
  check "a line written with systemd-cat is picked up from journald" wait_for 10 grep -q '"client_ip":"192.0.2.99"' "$WORK/journal-events.jsonl"
  stop_watch
else
  echo "SKIP journald through systemd-cat: no journald runs here (the Swift tests cover journald with a stand-in journalctl)"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
