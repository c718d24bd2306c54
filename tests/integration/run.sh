#!/usr/bin/env bash
# SMTPGuard against the real thing: Postfix with Dovecot SASL (tests/integration/lab.sh),
# the guard in front of it forwarding client identity with XCLIENT, swaks as the client.
# Everything on loopback; many 127.x.y.z addresses stand in for many hosts. The lab and the
# guard are started here and stopped at the end, whatever happens. The guard logs at debug
# level; at the end every login the script made (AUTH PLAIN, LOGIN and CRAM-MD5, good
# passwords and guesses) is swept for: its clear password, its PLAIN payload (base64 of
# \0user\0password) and its LOGIN lines (base64 of the username, of the password), in the
# events, the guards' logs, the admin API's event feed and the state (the SQLite file and its
# write-ahead log raw, and `sqlite3 .dump`). None may be there; the same sweep over what the
# clients sent (swaks' transcripts, the clients' command lines) must find every one.
#
#   tests/integration/run.sh            (needs root: installs and runs Postfix and Dovecot)
#
# Environment: SMTPGUARD_BIN (default: .build/debug/smtpguard, built if missing).
# Prints one PASS/FAIL line per check and closes with "N passed, N failed".
set -uo pipefail

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
bash scripts/install-deps.sh || { echo "integration: cannot install the peers"; exit 1; }

BIN="${SMTPGUARD_BIN:-$ROOT/.build/debug/smtpguard}"
if [ ! -x "$BIN" ]; then
  swift build --product smtpguard >/dev/null || { echo "integration: build failed"; exit 1; }
fi

WORK=$(mktemp -d /tmp/smtpguard-it.XXXXXX)
chmod 755 "$WORK"  # the Postfix and Dovecot users must reach the lab inside
export LAB_DIR="$WORK/lab"
GUARD_PORT=12625
GUARD="127.0.0.1:$GUARD_PORT"
GUARD_TLS_PORT=12465
GUARD_TLS="127.0.0.1:$GUARD_TLS_PORT"
EVENTS="$WORK/events.jsonl"
GUARD_LOG="$WORK/guard.log"
GUARD_PID=""
. tests/integration/checks.sh

cleanup() {
  [ -n "$GUARD_PID" ] && kill "$GUARD_PID" 2>/dev/null && wait "$GUARD_PID" 2>/dev/null
  bash tests/integration/lab.sh stop >/dev/null 2>&1
  if [ "$failed" -gt 0 ] || [ -n "${KEEP_WORK:-}" ]; then
    echo "integration: logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

bash tests/integration/lab.sh start >"$WORK/lab-start.log" 2>&1 || { cat "$WORK/lab-start.log"; echo "0 passed, 1 failed"; exit 1; }
eval "$(bash tests/integration/lab.sh env)"

# The guard's certificate is a copy, so that a renewal can be played later.
cp "$LAB_TLS_DIR/guard.pem" "$WORK/cert.pem"
cp "$LAB_TLS_DIR/guard.key" "$WORK/key.pem"
cat >"$WORK/smtpguard.yaml" <<EOF
admin:
  listen: 127.0.0.1:12680
listen: ["$GUARD"]
listen_tls: ["$GUARD_TLS"]
tls:
  certificate: $WORK/cert.pem
  key: $WORK/key.pem
backend:
  address: $LAB_SMTP
  identity: xclient
smtp:
  hostname: mx.guard.test
  haproxy_trusted_networks: [127.0.0.99/32]
events:
  path: $EVENTS
state:
  path: $WORK/state.db
  flush_interval: 200ms
guard:
  tarpit:
    initial: 100ms
    min_refusal_delay: 100ms
    max: 1s
sending:
  overrides: ["bob: recipients_per_minute=3"]
EOF

check "config check accepts the test configuration" "$BIN" config check "$WORK/smtpguard.yaml"
# Each example as shipped is refused only for what the administrator must fill in (its
# placeholder secrets, its certificate files, named by key); filled in as the administrator
# would (a random secret, the lab's certificate), it is valid.
for example in "$ROOT"/examples/*.yaml; do
  name=$(basename "$example")
  "$BIN" config check "$example" >"$WORK/check-$name.out" 2>&1 || true
  check "config check of the example $name as shipped names nothing but placeholders and certificate files" \
    bash -c '! grep -v -e ": valid$" -e ": warning: " -e "is still the example.s placeholder" -e "^[^:]*: tls\.\(certificate\|key\) [^ ]*: no such file" -e ": [0-9]* errors\?$" "$1"' _ "$WORK/check-$name.out"
  sed -E -e "s/change-me[-a-z]*/$(openssl rand -hex 16)/g" \
    -e "s#^(  certificate:).*#\1 $WORK/cert.pem#" -e "s#^(  key:).*#\1 $WORK/key.pem#" "$example" >"$WORK/filled-$name"
  check "config check accepts the example $name once its placeholders and certificate are filled in" "$BIN" config check "$WORK/filled-$name"
done
# The control: a planted clash, placeholder and missing certificate are each named by key.
cat >"$WORK/clash.yaml" <<EOF
listen: ["0.0.0.0:587", "[::]:587"]
listen_tls: ["[::]:587"]
tls: {certificate: $WORK/cert.pem, key: $WORK/key.pem}
dovecot_policy: {listen: "127.0.0.1:8025", api_header: "X-API-Key: change-me-please"}
EOF
"$BIN" config check "$WORK/clash.yaml" >"$WORK/clash.out" 2>&1 && clash_rc=0 || clash_rc=$?
check "config check refuses a planted listener clash and placeholder secret, naming each key (and not 0.0.0.0:587 beside [::]:587)" \
  bash -c '[ "$1" = 1 ] && grep -q "listen_tls: \[::\]:587 and listen \[::\]:587 are the same address" "$2" \
    && grep -q "dovecot_policy.listen: 127.0.0.1:8025 and admin.listen 127.0.0.1:8025" "$2" \
    && grep -q "dovecot_policy.api_header: is still the example.s placeholder" "$2" && ! grep -q "0.0.0.0:587 and" "$2"' _ "$clash_rc" "$WORK/clash.out"
sed "s#$WORK/cert.pem#$WORK/no-such-cert.pem#" "$WORK/smtpguard.yaml" >"$WORK/nocert.yaml"
check "config check accepts the test configuration with its certificate (the control for the next check)" "$BIN" config check "$WORK/smtpguard.yaml"
check "config check refuses a certificate file that does not exist, naming tls.certificate" \
  bash -c '! "$1" config check "$2" >"$3" 2>&1 && grep -q "tls.certificate .*no-such-cert.pem: no such file" "$3"' _ "$BIN" "$WORK/nocert.yaml" "$WORK/nocert.out"
# The key readable by root only, the rest by everyone: the check as another user (systemd runs
# ExecStartPre as the unit's User=) must name the key it cannot read.
mkdir -p "$WORK/perm" && chmod 711 "$WORK" && chmod 755 "$WORK/perm"
install -m 0755 "$BIN" "$WORK/perm/smtpguard" && install -m 0644 "$WORK/cert.pem" "$WORK/perm/cert.pem" && install -m 0600 "$WORK/key.pem" "$WORK/perm/key.pem"
sed -e "s#$WORK/cert.pem#$WORK/perm/cert.pem#" -e "s#$WORK/key.pem#$WORK/perm/key.pem#" "$WORK/smtpguard.yaml" >"$WORK/perm/smtpguard.yaml"
chmod 644 "$WORK/perm/smtpguard.yaml"
check "config check as root accepts it (the control)" "$BIN" config check "$WORK/perm/smtpguard.yaml"
check "config check run as another user refuses a key it cannot read, naming tls.key" \
  bash -c '! setpriv --reuid nobody --regid nogroup --clear-groups "$1" config check "$2" >"$3" 2>&1 && grep -q "tls.key .*perm/key.pem" "$3"' _ "$WORK/perm/smtpguard" "$WORK/perm/smtpguard.yaml" "$WORK/nokey.out"
# Units that share one new state file and start together (the examples' /var/lib/smtpguard/
# smtpguard.db): eight processes open and migrate it at once, five times; every one succeeds.
race_opens() {
  local round i bad=0
  for round in 1 2 3 4 5; do
    rm -f "$WORK/race.db" "$WORK/race.db-wal" "$WORK/race.db-shm"
    for i in 1 2 3 4 5 6 7 8; do "$BIN" db migrate --state "$WORK/race.db" >"$WORK/race-$i.out" 2>&1 & done
    wait
    for i in 1 2 3 4 5 6 7 8; do grep -q "^state file .*: schema version" "$WORK/race-$i.out" && ! grep -q "Error" "$WORK/race-$i.out" || { bad=1; sed "s/^/  /" "$WORK/race-$i.out"; }; done
  done
  [ "$bad" -eq 0 ]
}
check "eight guards opening one new state file at the same moment all start (one migrates, the others wait)" race_opens
# The systemd units (deploy/), with ExecStart pointing at the binary under test.
mkdir -p "$WORK/units"
for unit in "$ROOT"/deploy/*.service; do sed "s#/usr/local/bin/smtpguard#$BIN#g" "$unit" >"$WORK/units/$(basename "$unit")"; done
check "the systemd units pass systemd-analyze verify" systemd-analyze verify "$WORK"/units/*.service
for unit in "$WORK"/units/*.service; do
  check "$(basename "$unit") is hardened: systemd-analyze security exposure at most 2.5" bash -c 'systemd-analyze security --offline=yes --threshold=25 "$1" >/dev/null' _ "$unit"
done
"$BIN" run --config "$WORK/smtpguard.yaml" --log-level debug >"$GUARD_LOG" 2>&1 &
GUARD_PID=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$GUARD_PORT") 2>/dev/null && break
  sleep 0.1
done

# Every login a client is given: what it sends goes to secrets.tsv (auth_secrets, for the
# sweep of section 10), its command line to clients.log, where swaks' transcripts go too.
sent() {  # sent MECH USER PASSWORD
  auth_secrets "$1" "$2" "$3" >>"$WORK/secrets.tsv"
  echo "client: --auth $1 --auth-user $2 --auth-password $3" >>"$WORK/clients.log"
}
# swaks with the guard as server, STARTTLS first (auth.require_tls is on, as by default);
# FROM=address to connect from.
smtp() {  # smtp FROM USER PASSWORD MECH [extra swaks args]
  local from=$1 user=$2 password=$3 mech=$4
  shift 4
  sent "$mech" "$user" "$password"
  timeout 60 swaks --server "$GUARD" --tls --local-interface "$from" --helo client.test \
    --auth "$mech" --auth-user "$user" --auth-password "$password" --timeout 30 "$@" 2>&1 | tee -a "$WORK/clients.log"
}

attempts=0
# 1. A legitimate user logs in and sends a message, through the guard, from her usual place.
out=$(smtp 127.0.0.1 alice "$LAB_PASS_ALICE" PLAIN --from alice@example.test --to "$LAB_RCPT"); attempts=$((attempts + 1))
check "legitimate PLAIN login and message pass through" grep -q "250 2.0.0 Ok: queued" <<<"$out"
check "the greeting is the guard's, not Postfix's" bash -c '! grep -q "Postfix" <<<"$1" && grep -q "220 mx.guard.test ESMTP" <<<"$1"' _ "$out"
check "AUTH is offered in EHLO, XCLIENT is not" bash -c 'grep -q "250-AUTH PLAIN LOGIN CRAM-MD5" <<<"$1" && ! grep -q XCLIENT <<<"$1"' _ "$out"
out=$(smtp 127.0.0.1 alice "$LAB_PASS_ALICE" LOGIN --from alice@example.test --to "$LAB_RCPT"); attempts=$((attempts + 1))
check "legitimate LOGIN login and message pass through" grep -q "250 2.0.0 Ok: queued" <<<"$out"
out=$(smtp 127.0.0.1 bob "$LAB_PASS_BOB" CRAM-MD5 --quit-after AUTH); attempts=$((attempts + 1))
check "CRAM-MD5 login passes through" grep -q "235 2.7.0" <<<"$out"
# The sending limits after AUTH: bob may add 3 recipients a minute.
out=$(smtp 127.0.0.1 bob "$LAB_PASS_BOB" PLAIN --from bob@example.test --to "r1@x.test,r2@x.test,r3@x.test,r4@x.test,r5@x.test"); attempts=$((attempts + 1))
check "past bob's limit the guard answers 452 4.5.3 and the message goes to the first 3" \
  bash -c '[ "$(grep -c "<~\?\*\{1,2\} 452 4.5.3 Sending limit reached for this account (3 recipients per minute)" <<<"$1")" -eq 2 ] && grep -q "250 2.0.0 Ok: queued" <<<"$1"' _ "$out"
check "an alert names the account" grep -q '"event":"alert","kind":"possible_compromise".*"message":"possible compromised account: bob sent 3 recipients in 1 minute' "$EVENTS"

# 2. A wrong password gets the one configured failure reply.
out=$(smtp 127.0.2.3 alice "not-her-password" PLAIN --quit-after AUTH); attempts=$((attempts + 1))
check "a wrong password gets 535 5.7.8 Authentication credentials invalid" grep -q "535 5.7.8 Authentication credentials invalid" <<<"$out"

# 3. An attacker in another network guesses: banned after 5 failures; the 6th ends in a ban.
for i in 1 2 3 4 5 6; do
  smtp 127.0.1.9 alice "guess-$i" LOGIN --quit-after AUTH >"$WORK/attack-$i.log"; attempts=$((attempts + 1))
done
out=$(timeout 30 swaks --server "$GUARD" --local-interface 127.0.1.9 --quit-after CONNECT 2>&1)
check "the attacker is refused at connect once banned" grep -q "554 5.7.1 mx.guard.test Access denied" <<<"$out"
check "the ban is in the event log" grep -q '"event":"ban","scope":"ip","key":"127.0.1.9"' "$EVENTS"
check "the attacker was tarpitted before the ban" grep -q '"client_ip":"127.0.1.9".*"reasons":\[[^]]*"tarpit"' "$EVENTS"
out=$(smtp 127.0.2.7 alice "$LAB_PASS_ALICE" PLAIN --quit-after AUTH); attempts=$((attempts + 1))
check "another loopback address still logs in" grep -q "235 2.7.0 Authentication successful" <<<"$out"
check "Postfix saw the real client address through XCLIENT" grep -q "client=unknown\[127.0.2.7\]\|unknown\[127.0.2.7\]" "$LAB_POSTFIX_LOG"

# 3b. SIGKILL mid-attack: what was decided more than state.flush_interval (200ms) before the
# kill survives. The ban of 127.0.1.9 holds from the first connection after the restart, and
# an attacker 3 failures in is banned at the 6th, three of them after the restart.
for i in 1 2 3; do
  smtp 127.0.11.11 "user$i" "guess-$i" LOGIN --quit-after AUTH >/dev/null; attempts=$((attempts + 1))
done
sleep 1
kill -KILL "$GUARD_PID"; wait "$GUARD_PID" 2>/dev/null
"$BIN" run --config "$WORK/smtpguard.yaml" --log-level debug >>"$GUARD_LOG" 2>&1 &
GUARD_PID=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$GUARD_PORT") 2>/dev/null && break; sleep 0.1; done
check "after SIGKILL and restart the state is restored" grep -q "bans=[1-9].*state restored" "$GUARD_LOG"
out=$(timeout 30 swaks --server "$GUARD" --local-interface 127.0.1.9 --quit-after CONNECT 2>&1)
check "a ban from before SIGKILL is enforced at the first connection after it" grep -q "554 5.7.1 mx.guard.test Access denied" <<<"$out"
for i in 4 5 6; do
  smtp 127.0.11.11 "user$i" "guess-$i" LOGIN --quit-after AUTH >/dev/null; attempts=$((attempts + 1))
done
out=$(timeout 30 swaks --server "$GUARD" --local-interface 127.0.11.11 --quit-after CONNECT 2>&1)
check "failures from before SIGKILL still count: banned at the 6th" grep -q "554 5.7.1 mx.guard.test Access denied" <<<"$out"
sleep 0.5
out=$("$BIN" db status --config "$WORK/smtpguard.yaml" 2>&1)
check "smtpguard db status shows the state file and its bans" bash -c 'grep -q "schema version: 2 of 2" <<<"$1" && grep -Eq "bans in force: +[2-9]" <<<"$1"' _ "$out"

# 3c. The admin API (127.0.0.1:12680) and its command line, against the running guard; the
# address and the token (created on the first start, beside the state) come from the file.
ADMIN=(--config "$WORK/smtpguard.yaml")
wait_port 12680
check "the admin token file was created with mode 0600" bash -c '[ "$(stat -c %a "$1")" = 600 ]' _ "$WORK/smtpguard-admin.token"
out=$("$BIN" bans list "${ADMIN[@]}" 2>&1)
check "smtpguard bans list shows the attacker's ban" bash -c 'grep -Eq "^ip +127\.0\.1\.9 +" <<<"$1"' _ "$out"
out=$("$BIN" bans list --json --scope ip "${ADMIN[@]}" 2>&1)
check "bans list --json is the API's JSON" bash -c 'python3 -c "import json,sys; d=json.load(sys.stdin); assert any(b[\"key\"]==\"127.0.1.9\" for b in d[\"bans\"])" <<<"$1"' _ "$out"
timeout 20 "$BIN" events --follow --kind ban,unban "${ADMIN[@]}" >"$WORK/follow.txt" 2>&1 &
FOLLOW_PID=$!
sleep 1
"$BIN" bans add ip 127.0.9.9 --duration 1h "${ADMIN[@]}" >/dev/null
out=$(timeout 30 swaks --server "$GUARD" --local-interface 127.0.9.9 --quit-after CONNECT 2>&1)
check "a ban added with smtpguard bans add is enforced at connect" grep -q "554 5.7.1" <<<"$out"
"$BIN" bans remove ip 127.0.1.9 "${ADMIN[@]}" >/dev/null
out=$(timeout 30 swaks --server "$GUARD" --local-interface 127.0.1.9 --quit-after CONNECT 2>&1)
check "a ban lifted with smtpguard bans remove no longer refuses the client" grep -q "220 mx.guard.test" <<<"$out"
wait_for 5 grep -q "unban   ip 127.0.1.9 (lifted)" "$WORK/follow.txt"
check "smtpguard events --follow prints the ban and the lift as they happen" \
  bash -c 'grep -q "ban     ip 127.0.9.9 until" "$1" && grep -q "unban   ip 127.0.1.9 (lifted)" "$1"' _ "$WORK/follow.txt"
kill "$FOLLOW_PID" 2>/dev/null; wait "$FOLLOW_PID" 2>/dev/null
out=$("$BIN" events --kind auth --client 127.0.11.11 "${ADMIN[@]}" 2>&1)
check "smtpguard events filters by kind and client" bash -c '[ "$(grep -c "auth    127.0.11.11" <<<"$1")" -ge 3 ] && ! grep -q "127.0.2.7" <<<"$1"' _ "$out"
out=$("$BIN" stats "${ADMIN[@]}" 2>&1)
check "smtpguard stats counts the failures (from the state too) and names the top attacker" \
  bash -c 'grep -Eq "^1h +[0-9]+ +[0-9]+ +([6-9]|[1-9][0-9])" <<<"$1" && grep -q "127.0.11.11" <<<"$1"' _ "$out"
"$BIN" trusted add 127.0.9.0/24 --comment "test office" "${ADMIN[@]}" >/dev/null
out=$("$BIN" trusted list "${ADMIN[@]}" 2>&1)
check "smtpguard trusted add, then list" bash -c 'grep -Eq "^127\.0\.9\.0/24 +api .*test office" <<<"$1"' _ "$out"
out=$(timeout 30 swaks --server "$GUARD" --local-interface 127.0.9.9 --quit-after CONNECT 2>&1)
check "a network trusted at run time is let in despite its ban" grep -q "220 mx.guard.test" <<<"$out"
"$BIN" trusted remove 127.0.9.0/24 "${ADMIN[@]}" >/dev/null
out=$(timeout 30 swaks --server "$GUARD" --local-interface 127.0.9.9 --quit-after CONNECT 2>&1)
check "once no longer trusted, the ban holds again" grep -q "554 5.7.1" <<<"$out"
out=$(SMTPGUARD_ADMIN_TOKEN=sgt_wrong_wrong_wrong_wrong "$BIN" bans list "${ADMIN[@]}" 2>&1); status=$?
check "a wrong token: exit 1 and a clear error" bash -c '[ "$1" -ne 0 ] && grep -q "refused the token (401)" <<<"$2"' _ "$status" "$out"
check "the refused request is logged, without the token" bash -c 'grep -q "admin API: wrong bearer token from 127.0.0.1 for GET /api/bans" "$1" && ! grep -q "sgt_wrong" "$1"' _ "$GUARD_LOG"
out=$("$BIN" bans list --admin 127.0.0.1:12689 "${ADMIN[@]}" 2>&1); status=$?
check "no guard at the address: exit 1 and a clear error" bash -c '[ "$1" -ne 0 ] && grep -q "no answer from the guard.s admin API at http://127.0.0.1:12689/" <<<"$2"' _ "$status" "$out"
out=$(curl -s -H "Authorization: Bearer $(cat "$WORK/smtpguard-admin.token")" http://127.0.0.1:12680/metrics)
check "/metrics counts the AUTH failures since the restart" grep -Eq 'smtpguard_auth_attempts_total\{outcome="failure",mechanism="LOGIN",source="proxy"\} [3-9]' <<<"$out"
check "the admin token is in no log, event or state" bash -c '! grep -qaF "$(cat "$1")" "$2" "$3" "$4"' _ "$WORK/smtpguard-admin.token" "$GUARD_LOG" "$EVENTS" "$WORK/state.db"

# 4. admin/admin is valid on the backend: refused by the guard, account locked, alert raised.
out=$(smtp 127.0.3.5 admin admin PLAIN --quit-after AUTH); attempts=$((attempts + 1))
check "admin/admin accepted by Postfix is refused to the client" grep -q "535 5.7.8 Authentication credentials invalid" <<<"$out"
check "the backend really accepted admin/admin" grep -q "disconnect from unknown\[127.0.3.5\].* auth=1 " "$LAB_POSTFIX_LOG"
check "a critical weak-credential alert names the account" grep -q '"event":"alert","kind":"weak_credential_accepted","severity":"critical","username":"admin"' "$EVENTS"
check "the guard's log has the critical line" grep -q "critical.*weak_credential_accepted" "$GUARD_LOG"
out=$(smtp 127.0.4.4 admin admin PLAIN --quit-after AUTH); attempts=$((attempts + 1))
check "the locked account is refused everywhere untrusted" grep -q '"client_ip":"127.0.4.4".*"reasons":\["username_locked"' "$EVENTS"

# 5. A denied username never reaches the backend.
before=$(grep -c "sasl_username=guest\|guest" "$LAB_DOVECOT_LOG" || true)
out=$(smtp 127.0.5.5 guest guest PLAIN --quit-after AUTH); attempts=$((attempts + 1))
after=$(grep -c "sasl_username=guest\|guest" "$LAB_DOVECOT_LOG" || true)
check "guest is refused by the guard itself" bash -c 'grep -q "535 5.7.8" <<<"$1" && [ "$2" = "$3" ]' _ "$out" "$before" "$after"

# 5a. Idle clients cost Postfix nothing: the guard greets and answers EHLO, NOOP and RSET
# itself. Ten clients that connect, say EHLO and wait hold no connection to Postfix (ss, and no
# new "connect from" in its log); the positive control in the same run: one of them says MAIL,
# and Postfix has one connection and one new "connect from" at once.
out=$(python3 - "$GUARD_PORT" "$LAB_SMTP_PORT" "$LAB_POSTFIX_LOG" <<'PY'
import socket, subprocess, sys, time
guard, postfix, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def reply(s):
    data = b""
    while not any(l[3:4] == b" " for l in data.split(b"\r\n") if len(l) >= 4):
        chunk = s.recv(4096)
        if not chunk: raise SystemExit("closed")
        data += chunk
    return data
def to_postfix():
    out = subprocess.run(["ss", "-Htn", "state", "established", "( dport = :%s )" % postfix], capture_output=True, text=True).stdout
    return len([l for l in out.splitlines() if l.strip()])
def connects():
    return open(log, errors="replace").read().count(": connect from ")
before = connects()
clients = []
for i in range(10):
    s = socket.create_connection(("127.0.0.1", guard), timeout=10, source_address=("127.0.5.%d" % (20 + i), 0))
    reply(s)
    for command in (b"EHLO idle.example", b"NOOP", b"RSET"):
        s.sendall(command + b"\r\n"); reply(s)
    clients.append(s)
time.sleep(1)
print("idle", to_postfix(), connects() - before)
clients[0].sendall(b"MAIL FROM:<idle@example.org>\r\n")
code = reply(clients[0])[:3].decode()
time.sleep(0.5)
print("mail", code, to_postfix(), connects() - before)
for s in clients: s.close()
PY
)
check "ten idle clients through the guard hold no connection to Postfix" grep -qx "idle 0 0" <<<"$out"
check "positive control: MAIL from one of them opens exactly one, at once" grep -qx "mail 250 1 1" <<<"$out"

# 5b. TLS: AUTH only inside it, with real clients (swaks STARTTLS and implicit TLS, Python).
out=$(timeout 30 swaks --server "$GUARD" --local-interface 127.0.8.1 --quit-after EHLO 2>&1)
check "before TLS, EHLO offers STARTTLS and no AUTH" bash -c 'grep -q "250-STARTTLS" <<<"$1" && ! grep -q "AUTH" <<<"$1"' _ "$out"
sent PLAIN alice "$LAB_PASS_ALICE"
out=$(timeout 60 swaks --server "$GUARD_TLS" --tlsc --local-interface 127.0.8.2 --helo client.test \
  --auth PLAIN --auth-user alice --auth-password "$LAB_PASS_ALICE" --from alice@example.test --to "$LAB_RCPT" --timeout 30 2>&1 | tee -a "$WORK/clients.log"); attempts=$((attempts + 1))
check "swaks --tlsc (implicit TLS, port 465 style): login and message pass" bash -c 'grep -q "235 2.7.0" <<<"$1" && grep -q "250 2.0.0 Ok: queued" <<<"$1"' _ "$out"
sent PLAIN alice "$LAB_PASS_ALICE"; sent CRAM-MD5 alice "$LAB_PASS_ALICE"  # AUTH PLAIN before TLS, then login() (CRAM-MD5, offered first)
py_out=$(timeout 60 python3 - "$GUARD_PORT" "$GUARD_TLS_PORT" "$LAB_TLS_DIR/ca.pem" "$LAB_PASS_ALICE" "$LAB_RCPT" <<'PY' 2>&1
import smtplib, ssl, sys, base64
port, tls_port, ca, password, rcpt = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
context = ssl.create_default_context(cafile=ca)
with smtplib.SMTP("127.0.0.1", port, source_address=("127.0.8.3", 0), timeout=30) as s:
    s.ehlo("python.test")
    code, text = s.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0alice\0" + password.encode()).decode())
    print("before-tls", code, text.decode())
    s.starttls(context=context)
    s.ehlo("python.test")
    print("has-starttls-after", s.has_extn("starttls"))
    s.login("alice", password)
    print("login ok")
    s.sendmail("alice@example.test", [rcpt], b"Subject: smtplib through the guard\r\n\r\nHello.\r\n")
    print("sent ok")
with smtplib.SMTP_SSL("127.0.0.1", tls_port, context=context, source_address=("127.0.8.4", 0), timeout=30) as s:
    s.login("alice", password)
    print("implicit login ok", s.sock.version())
PY
); attempts=$((attempts + 2))
check "Python smtplib: AUTH before TLS gets 538 5.7.11" grep -q "before-tls 538 5.7.11" <<<"$py_out"
check "Python smtplib: starttls() with the CA checked, then login and sendmail" bash -c 'grep -q "login ok" <<<"$1" && grep -q "sent ok" <<<"$1" && grep -q "has-starttls-after False" <<<"$1"' _ "$py_out"
check "Python smtplib: SMTP_SSL on the implicit TLS port" grep -q "implicit login ok TLSv1.3" <<<"$py_out"
check "AUTH events say TLS and its version" grep -q '"client_ip":"127.0.8.3".*"tls":true,"tls_version":"TLSv1.3"' "$EVENTS"

# 5c. Certificate renewal: SIGHUP serves the new certificate to new sessions; a broken file
# on reload leaves the old one in use and says so.
peer_cn() {
  timeout 20 python3 -c 'import ssl,socket,sys
c=ssl.create_default_context(cafile=sys.argv[2])
s=c.wrap_socket(socket.create_connection(("127.0.0.1",int(sys.argv[1])),timeout=10),server_hostname="mx.guard.test")
print(dict(x[0] for x in s.getpeercert()["subject"])["commonName"])' "$GUARD_TLS_PORT" "$LAB_TLS_DIR/ca.pem" 2>&1
}
check "the guard serves its certificate" [ "$(peer_cn)" = "guard.mx.guard.test" ]
echo "broken" >"$WORK/key.pem"
kill -HUP "$GUARD_PID"; sleep 1
check "a broken key on SIGHUP is logged and the old certificate stays" bash -c 'grep -q "SIGHUP: tls.key .*key.pem.*previous certificate stays in use" "$1" && [ "$2" = "guard.mx.guard.test" ]' _ "$GUARD_LOG" "$(peer_cn)"
cp "$LAB_TLS_DIR/guard-renewed.pem" "$WORK/cert.pem"
cp "$LAB_TLS_DIR/guard-renewed.key" "$WORK/key.pem"
kill -HUP "$GUARD_PID"; sleep 1
check "after SIGHUP new sessions get the renewed certificate" [ "$(peer_cn)" = "guard-renewed.mx.guard.test" ]

# 5d. A second guard speaks STARTTLS to Postfix and verifies its certificate with the lab CA.
cat >"$WORK/backend-tls.yaml" <<YAML
admin:
  listen: ""
listen: ["127.0.0.1:12626"]
auth:
  require_tls: false
backend:
  address: $LAB_SMTP
  identity: xclient
  tls: starttls
  tls_ca: $LAB_TLS_DIR/ca.pem
  tls_server_name: mx.guard.test
smtp:
  hostname: mx2.guard.test
events:
  path: ""
state:
  path: ""
YAML
"$BIN" run --config "$WORK/backend-tls.yaml" --log-level debug >"$WORK/guard2.log" 2>&1 &
GUARD2_PID=$!
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/12626) 2>/dev/null && break; sleep 0.1; done
sent PLAIN alice "$LAB_PASS_ALICE"
out=$(timeout 60 swaks --server 127.0.0.1:12626 --local-interface 127.0.9.9 --helo client.test --auth PLAIN \
  --auth-user alice --auth-password "$LAB_PASS_ALICE" --quit-after AUTH --timeout 30 2>&1 | tee -a "$WORK/clients.log")
check "backend.tls starttls: login through a verified TLS link to Postfix" grep -q "235 2.7.0" <<<"$out"
check "Postfix saw TLS from the guard" grep -q "TLS connection established from unknown\[127.0.0.1\]: TLSv1.3" "$LAB_POSTFIX_LOG"
kill "$GUARD2_PID" 2>/dev/null; wait "$GUARD2_PID" 2>/dev/null

# 5e. A certificate that cannot be read stops the start with the file's name.
sed -e "s#$WORK/cert.pem#$WORK/missing.pem#" -e 's#^listen: .*#listen: ["127.0.0.1:12627"]#' -e 's#^listen_tls: .*#listen_tls: []#' \
  "$WORK/smtpguard.yaml" >"$WORK/bad-cert.yaml"
out=$(timeout 20 "$BIN" run --config "$WORK/bad-cert.yaml" 2>&1); status=$?
check "a missing certificate is a start-up error naming the file (exit $status)" bash -c '[ "$2" -eq 1 ] && grep -q "tls.certificate .*missing.pem: no such file" <<<"$1"' _ "$out" "$status"
printf 'this is not a database at all, but it is long enough to have a header of sorts.%.0s' $(seq 1 100) >"$WORK/damaged.db"
out=$(timeout 20 "$BIN" run --config "$WORK/smtpguard.yaml" --listen 127.0.0.1:12628 --state "$WORK/damaged.db" 2>&1); status=$?
check "a damaged state file stops the start rather than forgetting the bans (exit $status)" bash -c '[ "$2" -eq 1 ] && grep -q "state file .*damaged.db: not an SQLite database" <<<"$1"' _ "$out" "$status"

# 5f. Behind HAProxy (mode tcp, send-proxy-v2 from 127.0.0.99, a trusted balancer): the guard
# takes the real client from the PROXY header and hands it on to Postfix with XCLIENT.
cat >"$WORK/haproxy.cfg" <<HAP
global
  maxconn 100
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend smtp_in
  bind 127.0.0.1:12640
  default_backend guard
backend guard
  server guard $GUARD send-proxy-v2 source 127.0.0.99
HAP
haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
HAPROXY_PID=$!
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/12640) 2>/dev/null && break; sleep 0.1; done
sent PLAIN alice "$LAB_PASS_ALICE"
out=$(timeout 60 swaks --server 127.0.0.1:12640 --tls --local-interface 127.0.10.10 --helo client.test --auth PLAIN \
  --auth-user alice --auth-password "$LAB_PASS_ALICE" --quit-after AUTH --timeout 30 2>&1 | tee -a "$WORK/clients.log"); attempts=$((attempts + 1))
check "through HAProxy (PROXY v2): login passes" grep -q "235 2.7.0" <<<"$out"
check "the guard saw the client behind HAProxy, not HAProxy" grep -q '"client_ip":"127.0.10.10"' "$EVENTS"
check "Postfix saw the client behind HAProxy" grep -q "unknown\[127.0.10.10\]" "$LAB_POSTFIX_LOG"
kill "$HAPROXY_PID" 2>/dev/null; wait "$HAPROXY_PID" 2>/dev/null

# 6. logrotate moves the event log away and sends SIGHUP: the guard goes on in a new file.
mv "$EVENTS" "$EVENTS.1"
kill -HUP "$GUARD_PID"
for _ in $(seq 1 50); do [ -e "$EVENTS" ] && break; sleep 0.1; done
out=$(smtp 127.0.0.1 alice "$LAB_PASS_ALICE" PLAIN --quit-after AUTH); attempts=$((attempts + 1))
check "after SIGHUP the event log is reopened by name" grep -q '"event":"auth"' "$EVENTS"
check "SIGHUP does not stop the guard" kill -0 "$GUARD_PID"

# 7. Visibility: one event line per AUTH attempt (no password anywhere: section 10).
cat "$EVENTS.1" "$EVENTS" >"$WORK/all-events.jsonl"
auth_lines=$(grep -c '"event":"auth"' "$WORK/all-events.jsonl")
check "one event line per AUTH attempt ($attempts attempts, $auth_lines lines)" [ "$auth_lines" -eq "$attempts" ]
check "every event line is valid JSON" python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$WORK/all-events.jsonl"

# 8. The backend goes away: the guard still greets (it connects to the backend only at MAIL or
# an AUTH it lets through); MAIL gets 421 4.3.0, the guard keeps running and says why.
bash tests/integration/lab.sh stop >/dev/null 2>&1
out=$(timeout 30 swaks --server "$GUARD" --local-interface 127.0.6.6 --quit-after FROM 2>&1)
check "a dead backend: the guard's own greeting and EHLO, then 421 4.3.0 at MAIL" \
  bash -c 'grep -q "<-  220 " <<<"$1" && grep -q "<-  250" <<<"$1" && grep -q "<\*\* 421 4.3.0" <<<"$1"' _ "$out"
check "the guard logs why" grep -q "error.*cannot connect to the backend" "$GUARD_LOG"
check "the guard is still running" kill -0 "$GUARD_PID"

# 9. Graceful stop on SIGTERM.
kill -TERM "$GUARD_PID"
stopped=1
for _ in $(seq 1 100); do kill -0 "$GUARD_PID" 2>/dev/null || { stopped=0; break; }; sleep 0.1; done
wait "$GUARD_PID"; status=$?
GUARD_PID=""
check "SIGTERM stops the guard cleanly (exit $status)" [ "$stopped" -eq 0 -a "$status" -eq 0 ]

# 10. No secret anywhere, now that the guard has stopped and written everything: no login's
# clear password, PLAIN payload or LOGIN line in the events (both files of the rotation), the
# guards' debug logs, the admin API's event feed (events --follow) or the state, raw (the file
# and its write-ahead log) and dumped. The same sweep over what the clients sent finds them all.
sqlite3 "$WORK/state.db" .dump >"$WORK/state.sql" 2>&1
sort -u "$WORK/secrets.tsv" -o "$WORK/secrets.tsv"
swept=("$WORK"/events.jsonl "$WORK"/events.jsonl.1 "$GUARD_LOG" "$WORK/guard2.log" "$WORK/follow.txt" "$WORK/state.sql")
for f in "$WORK"/state.db*; do [ -s "$f" ] && swept+=("$f"); done
check "the guards logged at debug level" bash -c 'grep -q " debug smtpguard: .*guard decided" "$1" && grep -q " debug smtpguard: " "$2"' _ "$GUARD_LOG" "$WORK/guard2.log"
check "the state dump has the attempts of every username the clients sent" every_username_in "$WORK/secrets.tsv" "$WORK/state.sql" ",'%s','"
check "positive control: the sweep finds every PLAIN payload and LOGIN line in swaks' transcripts" all_found "$WORK/secrets.tsv" wire "$WORK/clients.log"
check "positive control: and every clear password in the clients' command lines" all_found "$WORK/secrets.tsv" clear "$WORK/clients.log"
check "no clear password, PLAIN payload or LOGIN line in the events, the guards' debug logs, the event feed or the state" \
  leak_sweep "$WORK/secrets.tsv" "${swept[@]}"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
