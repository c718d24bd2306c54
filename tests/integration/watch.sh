#!/usr/bin/env bash
# The log watcher against the real thing:
#   1. Postfix + Dovecot SASL of the lab (tests/integration/lab.sh) write their logs; swaks
#      guesses passwords straight at Postfix; `smtpguard watch` follows both logs and bans the
#      attacker after the configured failures (each guess is in both logs: counted once), in
#      the shared state and the ban list. That each log is really read is shown by an event
#      only it can yield: a guess that doveadm sends straight to Dovecot's auth socket (in
#      Dovecot's log only) and a login that Postfix logs as a success (in Postfix's log only).
#      A restart resumes where it stopped.
#   2. In a network namespace created here, the watcher drives nftables: bans become set
#      elements with their timeouts, IPv6 clients as /64s, trusted networks never (while an
#      address written after them is banned), elements go when the ban runs out (while one
#      banned later is still there); 100,000 bans are applied in a handful of nft commands.
#   3. journald for real: a systemd-journald of our own in a private mount namespace (its /run
#      and /var/log/journal are directories of this run); lines written with systemd-cat and
#      logger --journald are read by the watcher's journald source (the real journalctl
#      --follow --output=json, inside that namespace), and a restart resumes after the saved
#      cursor. Never skipped: a journald that cannot be started is a failure.
# Every check that says something does not happen is paired with one that shows, in the same
# run and at that moment, that the thing it watches works (a no-ban with the failures counted,
# a trusted network with an address banned after it …).
#
# Environment: SMTPGUARD_BIN (default .build/debug/smtpguard). Prints PASS/FAIL lines and
# "N passed, N failed"; exits non-zero when a check failed.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
suite_begin watch

export LAB_DIR="$WORK/lab"
export LAB_SMTP_PORT=10035
NS="sgwatch$$"
WATCH_PID=""
at_exit 'ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null; ip netns del "$NS" 2>/dev/null'

stop_watch() {
  [ -n "$WATCH_PID" ] || return 0
  stop_pid "$WATCH_PID" INT 30
  WATCH_PID=""
}

events_are() {  # events_are N FILE FIELD=VALUE...: exactly N such events
  local n=$1
  shift
  [ "$(events "$@")" -eq "$n" ]
}
export -f events events_are wait_for  # for the checks run with bash -c

# ---------------------------------------------------------------------------------------
# 1. Real Postfix + Dovecot logs.
start_lab || suite_abort "the lab (Postfix + Dovecot) started"
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
start_guard -s watch -p 12680 -r 'grep -qs "following $DC_LOG" "$WORK/watch.log"' watch "$WORK/watch.yaml"
WATCH_PID=$STARTED_PID

guess() {  # guess FROM USER PASSWORD
  local out
  out=$(timeout 30 swaks --server "$LAB_SMTP" --local-interface "$1" --helo bot.test --auth PLAIN \
    --auth-user "$2" --auth-password "$3" --quit-after AUTH --timeout 20 2>&1)
  grep -q " 535 " <<<"$out"
}
failures_seen() { [ "$(grep -c '"event":"auth"' "$WORK/events.jsonl" 2>/dev/null)" -ge "$1" ]; }

for i in 1 2 3 4; do guess 127.0.5.1 bob "guess-$i" || echo "watch: swaks guess $i was not refused"; done
wait_for 10 failures_seen 4
sleep 0.5  # time for a wrong ban (the lines counted twice) to show before "no ban yet" is checked
# "No ban yet" holds only together with its control: at this moment the watcher has counted
# the four (a watcher that reads nothing bans nobody either).
check "four guesses, each in Postfix's and Dovecot's log, count as four failures (no ban yet)" \
  bash -c '[ "$(grep -c "unknown\[127.0.5.1\]: SASL PLAIN authentication failed" "$1")" -eq 4 ] &&
    [ "$(grep -c "passwd-file(bob,127.0.5.1[,)].*Password mismatch" "$2")" -eq 4 ] &&
    events_are 4 "$3" event=auth client_ip=127.0.5.1 outcome=failure && ! grep -q "\"event\":\"ban\"" "$3"' \
  _ "$PF_LOG" "$DC_LOG" "$WORK/events.jsonl"
# A guess that only Dovecot's log holds: doveadm asks the auth socket Postfix uses, for a client
# Postfix never saw, so its event can only come from the Dovecot source.
doveadm -c "$LAB_DOVECOT_CONF" auth test -a "$LAB_DIR/dovecot/run/auth-postfix" -x service=smtp -x rip=127.0.5.9 \
  bob dovecot-only-guess >"$WORK/doveadm.log" 2>&1
check "a guess only Dovecot's log holds is counted: the Dovecot log is read" \
  bash -c 'grep -q "passwd-file(bob,127.0.5.9[,)].*Password mismatch" "$1" && ! grep -q "127\.0\.5\.9" "$2" &&
    wait_for 10 events_are 1 "$3" event=auth session=dovecot/password_mismatch client_ip=127.0.5.9 outcome=failure' \
  _ "$DC_LOG" "$PF_LOG" "$WORK/events.jsonl"
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
check "a legitimate login is seen as a success (only Postfix's log has it: the Postfix log is read)" \
  wait_for 10 events_are 1 "$WORK/events.jsonl" event=auth session=postfix/sasl_success client_ip=127.0.5.2 username=alice outcome=success
# No password, with its control: the events that were written for those very attempts are there.
check "no password reaches the events (that hold the attempts it was sent with)" \
  bash -c 'events_are 1 "$3" event=auth username=alice outcome=success && [ "$(events "$3" event=auth username=bob)" -ge 6 ] &&
    ! grep -q "guess-\|$1\|$2" "$3"' _ "$LAB_PASS_ALICE" dovecot-only-guess "$WORK/events.jsonl"

# Restart: positions resume; lines written while it was down are read once.
stop_watch
check "positions were saved at shutdown" grep -q "^file	$PF_LOG	" "$WORK/positions"
before=$(grep -c '"event":"auth"' "$WORK/events.jsonl")
guess 127.0.5.3 carol "while-down" || true
start_guard -s watch -p 12680 watch2 "$WORK/watch.yaml"
WATCH_PID=$STARTED_PID
wait_for 10 failures_seen $((before + 1))
sleep 1  # time for lines read a second time (the restart's failure) to show before the count is checked
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
start_bg "$WORK/nft-watch.log" ip netns exec "$NS" "$BIN" watch --config "$WORK/nft.yaml" --log-level debug
WATCH_PID=$STARTED_PID
check "the watcher creates its nftables table" wait_for 10 bash -c 'ip netns exec "$1" nft list table inet smtpguard >/dev/null 2>&1' _ "$NS"
for n in 1 2 3; do
  fail_line 192.0.2.7 $n; fail_line 2001:db8:5:6::77 $n; fail_line 198.51.100.9 $n
done >>"$WORK/nft.log"
# Written after the trusted address's lines: once it is banned, those were read and judged.
fail_line 192.0.2.8 1 >>"$WORK/nft.log"; fail_line 192.0.2.8 2 >>"$WORK/nft.log"
check "a banned IPv4 client is an element with its timeout" wait_for 5 bash -c 'ip netns exec "$1" nft list set inet smtpguard v4 | grep -Eq "192\.0\.2\.7 timeout [1-5]s"' _ "$NS"
check "a banned IPv6 client is its /64" wait_for 5 bash -c 'ip netns exec "$1" nft list set inet smtpguard v6 | grep -q "2001:db8:5:6::/64 timeout"' _ "$NS"
check "a trusted network is never banned (while 192.0.2.8, written after it, is; its failures were counted)" \
  wait_for 5 bash -c 'rules=$(ip netns exec "$1" nft list ruleset) && grep -Eq "192\.0\.2\.8 timeout" <<<"$rules" &&
    ! grep -q "198.51.100" <<<"$rules" && events_are 3 "$2" event=auth client_ip=198.51.100.9 outcome=failure reasons=trusted_network &&
    events_are 0 "$2" event=ban key=198.51.100.9' _ "$NS" "$WORK/nft-events.jsonl"
check "the drop rule covers the mail ports" bash -c 'ip netns exec "$1" nft list chain inet smtpguard input | grep -q "ip saddr @v4 tcp dport { 25, 465, 587 } drop"' _ "$NS"
# 192.0.2.9, banned 2 s after 192.0.2.7, is still in the set when 192.0.2.7's element has gone:
# the element ran out, the set did not.
sleep 2  # deliberately: 192.0.2.9's ban is to run out 2 s after 192.0.2.7's
fail_line 192.0.2.9 1 >>"$WORK/nft.log"; fail_line 192.0.2.9 2 >>"$WORK/nft.log"
wait_for 5 bash -c 'ip netns exec "$1" nft list set inet smtpguard v4 | grep -q "192\.0\.2\.9 timeout"' _ "$NS"
check "the element is gone when the ban runs out (while 192.0.2.9, banned 2 s later, is still there)" \
  wait_for 10 bash -c 'set=$(ip netns exec "$1" nft list set inet smtpguard v4) && grep -q "192\.0\.2\.9 timeout" <<<"$set" &&
    ! grep -q "192\.0\.2\.7" <<<"$set"' _ "$NS"
wait_for 10 grep -q '"event":"unban".*"key":"192.0.2.7"' "$WORK/nft-events.jsonl"
fail_line 192.0.2.7 9 >>"$WORK/nft.log"; fail_line 192.0.2.7 10 >>"$WORK/nft.log"
check "a second ban escalates (longer than the first's 4 s) and is put in again" \
  wait_for 5 bash -c 'ip netns exec "$1" nft list set inet smtpguard v4 | grep -Eq "192\.0\.2\.7 timeout ([5-9]|[1-9][0-9]+)s"' _ "$NS"

stop_watch

# 100,000 bans: 100,000 addresses in distinct /24s, two failures each (the second bans), bans
# of an hour; the time from the lines being written to the last element in the set.
sed -e "s|$WORK/nft.log|$WORK/nft100k.log|" -e "s|ip: 4s|ip: 1h|" -e "s|  backend: nftables|  backend: nftables\n  check_interval: 2s|" "$WORK/nft.yaml" >"$WORK/nft100k.yaml"
: >"$WORK/nft100k.log"
start_guard -s watch -x "ip netns exec $NS" -r 'grep -q "firewall nftables: ready" "$WORK/nft100k-watch.log"' nft100k-watch "$WORK/nft100k.yaml" --log-level debug
WATCH_PID=$STARTED_PID
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
# The table is put back when something flushes it (`systemctl restart nftables` runs `flush
# ruleset`): within firewall.check_interval (2 s here) the table, its sets and chain are back
# with every ban in force, all 100,000; an element deleted by hand is put back too.
first=$(head -1 "$WORK/nft100k.lines" | sed -e 's/.*unknown\[//' -e 's/\].*//')
check "before the flush, the first and last bans are elements (the control)" \
  bash -c 'ip netns exec "$1" nft get element inet smtpguard v4 "{ $2 }" && ip netns exec "$1" nft get element inet smtpguard v4 "{ $3 }"' _ "$NS" "$first" "$last"
in_ns nft flush ruleset
check "nft flush ruleset leaves no table (the flush worked)" bash -c '! ip netns exec "$1" nft list table inet smtpguard >/dev/null 2>&1' _ "$NS"
# A ban that comes while the table is gone: its batch fails, which sets the table up again at once.
fail_line 203.0.113.50 1 >>"$WORK/nft100k.log"; fail_line 203.0.113.50 2 >>"$WORK/nft100k.log"
check "after nft flush ruleset the watcher creates its table again with the 100,000 bans in force and the one banned meanwhile" \
  wait_for 30 bash -c 'ip netns exec "$1" nft get element inet smtpguard v4 "{ $2 }" >/dev/null 2>&1 &&
    ip netns exec "$1" nft get element inet smtpguard v4 "{ 203.0.113.50 }" >/dev/null 2>&1 &&
    [ "$(ip netns exec "$1" nft -j list set inet smtpguard v4 | python3 -c "import json,sys; d=json.load(sys.stdin); print(len(d[\"nftables\"][1][\"set\"].get(\"elem\", [])))")" -ge 100000 ] &&
    ip netns exec "$1" nft list chain inet smtpguard input | grep -q "tcp dport { 25, 465, 587 } drop"' _ "$NS" "$last"
check "… and says so in its log" grep -q "its table smtpguard was gone .*created it again with the [0-9]* bans in force" "$WORK/nft100k-watch.log"
in_ns nft delete element inet smtpguard v4 "{ $first }"
check "an element deleted by hand is put back" wait_for 10 in_ns nft get element inet smtpguard v4 "{ $first }"
check "… and that is logged" grep -q "1 bans in force were missing from smtpguard; put them back" "$WORK/nft100k-watch.log"
stop_watch

# ---------------------------------------------------------------------------------------
# 2b. A source that reads nothing raises an alert and shows in /metrics; one beside it that
# keeps reading (the control) does not, and its lines are counted by result.
TOKEN=$(openssl rand -hex 20)
cat >"$WORK/silence.yaml" <<EOF
admin:
  listen: 127.0.0.1:12691
  token: $TOKEN
watch:
  sources: ["postfix file:$WORK/busy.log", "postfix file:$WORK/quiet.log"]
  positions: ""
  poll_interval: 50ms
  silence_alert: 2s
state:
  path: ""
events:
  path: $WORK/silence-events.jsonl
EOF
: >"$WORK/busy.log"; : >"$WORK/quiet.log"
start_guard -s watch -p 12691 silence-watch "$WORK/silence.yaml"
WATCH_PID=$STARTED_PID
# Paced on purpose: the busy source keeps being read, a line every 0.1 s, for longer than watch.silence_alert.
for n in $(seq 1 30); do fail_line 192.0.2.$((100 + n)) 1 >>"$WORK/busy.log"; echo "Nov 23 01:00:00 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]" >>"$WORK/busy.log"; sleep 0.1; done
check "a source that read nothing for watch.silence_alert raises a source_silent alert naming it" \
  wait_for 5 bash -c 'grep "\"event\":\"alert\"" "$1" | grep "\"kind\":\"source_silent\"" | grep -q "quiet.log"' _ "$WORK/silence-events.jsonl"
check "… while the source that kept reading raised none" eval '! grep "source_silent" "$WORK/silence-events.jsonl" | grep -q "busy.log"'
curl -s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:12691/metrics >"$WORK/silence-metrics.txt"
check "/metrics shows the quiet source silent and the busy one not" \
  bash -c 'grep -Eq "smtpguard_watch_source_silent\{source=\"postfix file:$2/quiet.log\"\} 1(\.0)?$" "$1" && grep -Eq "smtpguard_watch_source_silent\{source=\"postfix file:$2/busy.log\"\} 0(\.0)?$" "$1"' _ "$WORK/silence-metrics.txt" "$WORK"
check "/metrics counts the busy source's lines: 30 matched, 30 other" \
  bash -c 'grep -q "smtpguard_watch_lines_total{source=\"postfix file:$2/busy.log\",result=\"matched\"} 30" "$1" && grep -q "smtpguard_watch_lines_total{source=\"postfix file:$2/busy.log\",result=\"other\"} 30" "$1"' _ "$WORK/silence-metrics.txt" "$WORK"
echo "Nov 23 01:00:00 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]" >>"$WORK/quiet.log"
check "a line in the quiet source is noticed: it reads again" wait_for 5 grep -q "quiet.log: reading lines again after" "$WORK/silence-watch.log"
stop_watch

# 3. journald, for real: a systemd-journald of our own in a private mount namespace, whose /run
# (the journal's sockets, its volatile files, the configuration below) and /var/log/journal are
# directories of this run, so it needs no journald here and touches none that runs. Lines go in
# through systemd-cat (the stdout stream) and logger --journald (the native socket); the watcher,
# started in that namespace, reads them through its journald source with the real journalctl.
JDIR="$WORK/journal"
mkdir -p "$JDIR/run/systemd/journald.conf.d" "$JDIR/var"
cat >"$JDIR/run/systemd/journald.conf.d/smtpguard-watch-test.conf" <<EOF
[Journal]
Storage=volatile
ReadKMsg=no
Audit=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
RateLimitBurst=0
EOF
JOURNALD=$(ls /usr/lib/systemd/systemd-journald /lib/systemd/systemd-journald 2>/dev/null | head -1)
start_bg "$WORK/journald.log" unshare --mount --propagation private sh -c '
  [ -d "$1/run" ] && [ -d "$1/var" ] || exit 1
  mount --bind "$1/run" /run || exit 1
  [ ! -d /var/log/journal ] || mount --bind "$1/var" /var/log/journal || exit 1
  exec "$2"' _ "$JDIR" "${JOURNALD:-systemd-journald}"
JOURNALD_PID=$STARTED_PID
in_journal() { nsenter --target "$JOURNALD_PID" --mount -- "$@"; }
require "a journald of our own started" await_start "$JOURNALD_PID" "$WORK/journald.log" 10 test -S "$JDIR/run/systemd/journal/stdout"
echo "journal of watch.sh $$" | in_journal systemd-cat -t smtpguard-watch-test
check "a journald of our own runs and keeps what systemd-cat writes to it" \
  wait_for 5 bash -c 'nsenter --target "$1" --mount -- journalctl --no-pager --identifier=smtpguard-watch-test | grep -q "journal of watch.sh $2"' \
  _ "$JOURNALD_PID" $$

JEVENTS="$WORK/journal-events.jsonl"
cat >"$WORK/journal.yaml" <<EOF
admin:
  listen: ""
watch:
  sources: ["postfix,dovecot journald:identifier=postfix/smtpd,identifier=dovecot"]
  positions: $WORK/journal-positions
  poll_interval: 50ms
state:
  path: ""
events:
  path: $JEVENTS
EOF
# nsenter execs the watcher (a function run with & would be a subshell, and WATCH_PID its pid).
start_bg "$WORK/journal-watch.log" nsenter --target "$JOURNALD_PID" --mount -- "$BIN" watch --config "$WORK/journal.yaml"
WATCH_PID=$STARTED_PID
# journalctl starts at the journal's end: a success line (no failure to count) is written until
# the watcher has read one.
wait_for 10 bash -c 'echo "4ABC: client=probe[192.0.2.200], sasl_method=PLAIN, sasl_username=probe" |
  nsenter --target "$1" --mount -- systemd-cat -t postfix/smtpd; sleep 0.3; [ "$(events "$2" client_ip=192.0.2.200)" -ge 1 ]' \
  _ "$JOURNALD_PID" "$JEVENTS"
echo "warning: unknown[192.0.2.99]: SASL PLAIN authentication failed: x, sasl_username=jj" | in_journal systemd-cat -t postfix/smtpd
check "a Postfix line written with systemd-cat is read from journald" \
  wait_for 10 events_are 1 "$JEVENTS" event=auth session=postfix/sasl_failed client_ip=192.0.2.99 username=jj outcome=failure
printf 'SYSLOG_IDENTIFIER=dovecot\nMESSAGE=auth: Info: passwd-file(kk,192.0.2.98): Password mismatch\n' | in_journal logger --journald
check "a Dovecot line written with logger --journald is read from journald" \
  wait_for 10 events_are 1 "$JEVENTS" event=auth session=dovecot/password_mismatch client_ip=192.0.2.98 username=kk outcome=failure
stop_watch
check "the journal's cursor was saved at shutdown" \
  grep -q "^journald	identifier=postfix/smtpd,identifier=dovecot	s=" "$WORK/journal-positions"
# Written while the watcher is down: read after the restart, from the saved cursor; what was
# read before is not read again (it is earlier in the journal, so it would come first).
echo "warning: unknown[192.0.2.97]: SASL LOGIN authentication failed: x, sasl_username=ll" | in_journal systemd-cat -t postfix/smtpd
start_bg "$WORK/journal-watch.log" nsenter --target "$JOURNALD_PID" --mount -- "$BIN" watch --config "$WORK/journal.yaml"
WATCH_PID=$STARTED_PID
check "a restart resumes after the saved cursor: what was written while it was down is read, once" \
  bash -c 'wait_for 10 events_are 1 "$1" event=auth client_ip=192.0.2.97 username=ll outcome=failure &&
    events_are 1 "$1" client_ip=192.0.2.99 && events_are 1 "$1" client_ip=192.0.2.98' _ "$JEVENTS"
stop_watch
# A source naming a unit and an identifier reads the lines of either (`journalctl --unit=…
# --identifier=…` would AND them and read nothing): Postfix's lines by the unit whose processes
# wrote them (Debian's postfix@-.service), whatever syslog_name calls them, Dovecot's by its
# identifier. The unit is a cgroup of our own, which journald names as systemd would. A
# Postfix line from outside the unit is not read: the filter holds (the lines around it are).
CGROOT=$(findmnt -t cgroup2 -n -o TARGET | head -1)
UNITCG="$CGROOT/system.slice/smtpguard-test-postfix@-.service"
mkdir -p "$UNITCG"
# The writer stays a second after its line: journald reads a sender's cgroup from /proc when the
# line comes, and a process already gone would leave the line without its unit.
in_unit() { nsenter --target "$JOURNALD_PID" --mount -- sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' _ "$UNITCG" "$@"; }
held() { cat; sleep 1; }  # held: standard input, then a second more before the end
OREVENTS="$WORK/journal-or-events.jsonl"
sed -e "s#journald:identifier=postfix/smtpd,identifier=dovecot#journald:unit=smtpguard-test-postfix@-,identifier=dovecot#" \
  -e "s#$WORK/journal-positions#$WORK/journal-or-positions#" -e "s#$JEVENTS#$OREVENTS#" "$WORK/journal.yaml" >"$WORK/journal-or.yaml"
start_bg "$WORK/journal-or-watch.log" nsenter --target "$JOURNALD_PID" --mount -- "$BIN" watch --config "$WORK/journal-or.yaml"
WATCH_PID=$STARTED_PID
wait_for 10 bash -c '{ echo "4ABD: client=probe[192.0.2.201], sasl_method=PLAIN, sasl_username=probe"; sleep 1; } |
  nsenter --target "$1" --mount -- sh -c "echo \$\$ >\"$3/cgroup.procs\" && exec systemd-cat -t postfix/submission/smtpd"; sleep 0.3
  [ "$(events "$2" client_ip=192.0.2.201)" -ge 1 ]' _ "$JOURNALD_PID" "$OREVENTS" "$UNITCG"
echo "warning: unknown[192.0.2.81]: SASL PLAIN authentication failed: x, sasl_username=mm" | held | in_unit systemd-cat -t postfix/submission/smtpd
printf 'SYSLOG_IDENTIFIER=dovecot\nMESSAGE=auth: Info: passwd-file(nn,192.0.2.82): Password mismatch\n' | in_journal logger --journald
echo "warning: unknown[192.0.2.83]: SASL PLAIN authentication failed: x, sasl_username=oo" | in_journal systemd-cat -t postfix/smtpd
echo "warning: unknown[192.0.2.84]: SASL PLAIN authentication failed: x, sasl_username=pp" | held | in_unit systemd-cat -t postfix/submission/smtpd
check "journald:unit=…,identifier=… reads a line of the unit (renamed by syslog_name)" \
  wait_for 10 events_are 1 "$OREVENTS" event=auth client_ip=192.0.2.81 username=mm outcome=failure
check "… and, from the same source, a Dovecot line by its identifier (OR, not AND)" \
  wait_for 10 events_are 1 "$OREVENTS" event=auth client_ip=192.0.2.82 username=nn outcome=failure
check "… but not a Postfix line from outside the unit, written before one that was read" \
  bash -c 'wait_for 10 events_are 1 "$1" client_ip=192.0.2.84 && events_are 0 "$1" client_ip=192.0.2.83' _ "$OREVENTS"
stop_watch
rmdir "$UNITCG" 2>/dev/null || true
stop_pid "$JOURNALD_PID"

suite_end
