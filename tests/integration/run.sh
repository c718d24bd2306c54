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
. "$(dirname "$0")/lib.sh"
suite_begin integration  # WORK is 0755: the Postfix and Dovecot users must reach the lab inside

export LAB_DIR="$WORK/lab"
GUARD_PORT=12625
GUARD="127.0.0.1:$GUARD_PORT"
GUARD_TLS_PORT=12465
GUARD_TLS="127.0.0.1:$GUARD_TLS_PORT"
EVENTS="$WORK/events.jsonl"
GUARD_LOG="$WORK/guard.log"

start_lab || suite_abort "the lab (Postfix + Dovecot) started"

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
    eval '! grep -v -e ": valid$" -e ": warning: " -e "is still the example.s placeholder" -e "^[^:]*: tls\.\(certificate\|key\) [^ ]*: no such file" -e ": [0-9]* errors\?$" "$WORK/check-$name.out"'
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
clash=$(cat "$WORK/clash.out")
check "config check refuses a planted listener clash and placeholder secret, naming each key (and not 0.0.0.0:587 beside [::]:587)" \
  eval '[ "$clash_rc" = 1 ] && has "$clash" "listen_tls: \[::\]:587 and listen \[::\]:587 are the same address" \
    && has "$clash" "dovecot_policy.listen: 127.0.0.1:8025 and admin.listen 127.0.0.1:8025" \
    && has "$clash" "dovecot_policy.api_header: is still the example.s placeholder" && lacks "$clash" "0.0.0.0:587 and"'
sed "s#$WORK/cert.pem#$WORK/no-such-cert.pem#" "$WORK/smtpguard.yaml" >"$WORK/nocert.yaml"
check "config check accepts the test configuration with its certificate (the control for the next check)" "$BIN" config check "$WORK/smtpguard.yaml"
"$BIN" config check "$WORK/nocert.yaml" >"$WORK/nocert.out" 2>&1 && nocert_rc=0 || nocert_rc=$?
check "config check refuses a certificate file that does not exist, naming tls.certificate" \
  eval '[ "$nocert_rc" -ne 0 ] && has "$(cat "$WORK/nocert.out")" "tls.certificate .*no-such-cert.pem: no such file"'
# The key readable by root only, the rest by everyone: the check as another user (systemd runs
# ExecStartPre as the unit's User=) must name the key it cannot read.
mkdir -p "$WORK/perm" && chmod 711 "$WORK" && chmod 755 "$WORK/perm"
install -m 0755 "$BIN" "$WORK/perm/smtpguard" && install -m 0644 "$WORK/cert.pem" "$WORK/perm/cert.pem" && install -m 0600 "$WORK/key.pem" "$WORK/perm/key.pem"
sed -e "s#$WORK/cert.pem#$WORK/perm/cert.pem#" -e "s#$WORK/key.pem#$WORK/perm/key.pem#" "$WORK/smtpguard.yaml" >"$WORK/perm/smtpguard.yaml"
chmod 644 "$WORK/perm/smtpguard.yaml"
check "config check as root accepts it (the control)" "$BIN" config check "$WORK/perm/smtpguard.yaml"
setpriv --reuid nobody --regid nogroup --clear-groups "$WORK/perm/smtpguard" config check "$WORK/perm/smtpguard.yaml" >"$WORK/nokey.out" 2>&1 && nokey_rc=0 || nokey_rc=$?
check "config check run as another user refuses a key it cannot read, naming tls.key" \
  eval '[ "$nokey_rc" -ne 0 ] && has "$(cat "$WORK/nokey.out")" "tls.key .*perm/key.pem"'
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
  check "$(basename "$unit") is hardened: systemd-analyze security exposure at most 2.5" eval 'systemd-analyze security --offline=yes --threshold=25 "$unit" >/dev/null'
done
start_guard -p "$GUARD_PORT" guard "$WORK/smtpguard.yaml" --log-level debug
GUARD_PID=$STARTED_PID

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
expect_match "legitimate PLAIN login and message pass through" "$out" "250 2.0.0 Ok: queued"
check "the greeting is the guard's, not Postfix's" eval 'lacks "$out" Postfix && has "$out" "220 mx.guard.test ESMTP"'
check "AUTH is offered in EHLO, XCLIENT is not" eval 'has "$out" "250-AUTH PLAIN LOGIN CRAM-MD5" && lacks "$out" XCLIENT'
out=$(smtp 127.0.0.1 alice "$LAB_PASS_ALICE" LOGIN --from alice@example.test --to "$LAB_RCPT"); attempts=$((attempts + 1))
expect_match "legitimate LOGIN login and message pass through" "$out" "250 2.0.0 Ok: queued"
out=$(smtp 127.0.0.1 bob "$LAB_PASS_BOB" CRAM-MD5 --quit-after AUTH); attempts=$((attempts + 1))
expect_match "CRAM-MD5 login passes through" "$out" "235 2.7.0"
# The sending limits after AUTH: bob may add 3 recipients a minute.
out=$(smtp 127.0.0.1 bob "$LAB_PASS_BOB" PLAIN --from bob@example.test --to "r1@x.test,r2@x.test,r3@x.test,r4@x.test,r5@x.test"); attempts=$((attempts + 1))
check "past bob's limit the guard answers 452 4.5.3 and the message goes to the first 3" \
  eval 'count_is 2 "$out" "<~\?\*\{1,2\} 452 4.5.3 Sending limit reached for this account (3 recipients per minute)" && has "$out" "250 2.0.0 Ok: queued"'
check "an alert names the account" grep -q '"event":"alert","kind":"possible_compromise".*"message":"possible compromised account: bob sent 3 recipients in 1 minute' "$EVENTS"

# 2. A wrong password gets the one configured failure reply.
out=$(smtp 127.0.2.3 alice "not-her-password" PLAIN --quit-after AUTH); attempts=$((attempts + 1))
expect_match "a wrong password gets 535 5.7.8 Authentication credentials invalid" "$out" "535 5.7.8 Authentication credentials invalid"

# 3. An attacker in another network guesses: banned after 5 failures; the 6th ends in a ban.
for i in 1 2 3 4 5 6; do
  smtp 127.0.1.9 alice "guess-$i" LOGIN --quit-after AUTH >"$WORK/attack-$i.log"; attempts=$((attempts + 1))
done
expect_match "the attacker is refused at connect once banned" "$(connect_from 127.0.1.9 "$GUARD_PORT")" "554 5.7.1 mx.guard.test Access denied"
check "the ban is in the event log" grep -q '"event":"ban","scope":"ip","key":"127.0.1.9"' "$EVENTS"
check "the attacker was tarpitted before the ban" grep -q '"client_ip":"127.0.1.9".*"reasons":\[[^]]*"tarpit"' "$EVENTS"
out=$(smtp 127.0.2.7 alice "$LAB_PASS_ALICE" PLAIN --quit-after AUTH); attempts=$((attempts + 1))
expect_match "another loopback address still logs in" "$out" "235 2.7.0 Authentication successful"
check "Postfix saw the real client address through XCLIENT" grep -q "client=unknown\[127.0.2.7\]\|unknown\[127.0.2.7\]" "$LAB_POSTFIX_LOG"

# 3b. SIGKILL mid-attack: what was decided more than state.flush_interval (200ms) before the
# kill survives. The ban of 127.0.1.9 holds from the first connection after the restart, and
# an attacker 3 failures in is banned at the 6th, three of them after the restart.
for i in 1 2 3; do
  smtp 127.0.11.11 "user$i" "guess-$i" LOGIN --quit-after AUTH >/dev/null; attempts=$((attempts + 1))
done
sleep 1  # deliberately more than state.flush_interval (200ms): the claim is about what that long before a SIGKILL survives
stop_pid "$GUARD_PID" KILL
start_guard -p "$GUARD_PORT" guard "$WORK/smtpguard.yaml" --log-level debug
GUARD_PID=$STARTED_PID
check "after SIGKILL and restart the state is restored" grep -q "bans=[1-9].*state restored" "$GUARD_LOG"
expect_match "a ban from before SIGKILL is enforced at the first connection after it" "$(connect_from 127.0.1.9 "$GUARD_PORT")" "554 5.7.1 mx.guard.test Access denied"
for i in 4 5 6; do
  smtp 127.0.11.11 "user$i" "guess-$i" LOGIN --quit-after AUTH >/dev/null; attempts=$((attempts + 1))
done
expect_match "failures from before SIGKILL still count: banned at the 6th" "$(connect_from 127.0.11.11 "$GUARD_PORT")" "554 5.7.1 mx.guard.test Access denied"
# The new ban reaches the file within state.flush_interval: db status is asked until it shows it (5 s at most).
db_status_shows_bans() { out=$("$BIN" db status --config "$WORK/smtpguard.yaml" 2>&1); has "$out" "schema version: 2 of 2" && has -E "$out" "bans in force: +[2-9]"; }
check "smtpguard db status shows the state file and its bans" wait_for 5 db_status_shows_bans

# 3c. The admin API (127.0.0.1:12680) and its command line, against the running guard; the
# address and the token (created on the first start, beside the state) come from the file.
ADMIN=(--config "$WORK/smtpguard.yaml")
wait_port 12680
check "the admin token file was created with mode 0600" [ "$(stat -c %a "$WORK/smtpguard-admin.token")" = 600 ]
expect_match -E "smtpguard bans list shows the attacker's ban" "$("$BIN" bans list "${ADMIN[@]}" 2>&1)" "^ip +127\.0\.1\.9 +"
out=$("$BIN" bans list --json --scope ip "${ADMIN[@]}" 2>&1)
check "bans list --json is the API's JSON" python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert any(b["key"]=="127.0.1.9" for b in d["bans"])' "$out"
start_bg "$WORK/follow.txt" timeout 20 "$BIN" events --follow --kind ban,unban "${ADMIN[@]}"
FOLLOW_PID=$STARTED_PID
# Following, once its connection to the admin API is up (the feed is followed before the first byte is sent back).
wait_for 5 eval 'ss -Htnp state established "( dport = :12680 )" | grep -q "pid=$(pgrep -P "$FOLLOW_PID" | head -1),"'
"$BIN" bans add ip 127.0.9.9 --duration 1h "${ADMIN[@]}" >/dev/null
expect_match "a ban added with smtpguard bans add is enforced at connect" "$(connect_from 127.0.9.9 "$GUARD_PORT")" "554 5.7.1"
"$BIN" bans remove ip 127.0.1.9 "${ADMIN[@]}" >/dev/null
expect_match "a ban lifted with smtpguard bans remove no longer refuses the client" "$(connect_from 127.0.1.9 "$GUARD_PORT")" "220 mx.guard.test"
wait_for 5 grep -q "unban   ip 127.0.1.9 (lifted)" "$WORK/follow.txt"
check "smtpguard events --follow prints the ban and the lift as they happen" \
  eval 'grep -q "ban     ip 127.0.9.9 until" "$WORK/follow.txt" && grep -q "unban   ip 127.0.1.9 (lifted)" "$WORK/follow.txt"'
stop_pid "$FOLLOW_PID"
out=$("$BIN" events --kind auth --client 127.0.11.11 "${ADMIN[@]}" 2>&1)
check "smtpguard events filters by kind and client" eval 'count_is ">=3" "$out" "auth    127.0.11.11" && lacks "$out" "127.0.2.7"'
out=$("$BIN" stats "${ADMIN[@]}" 2>&1)
check "smtpguard stats counts the failures (from the state too) and names the top attacker" \
  eval 'has -E "$out" "^1h +[0-9]+ +[0-9]+ +([6-9]|[1-9][0-9])" && has "$out" "127.0.11.11"'
"$BIN" trusted add 127.0.9.0/24 --comment "test office" "${ADMIN[@]}" >/dev/null
expect_match -E "smtpguard trusted add, then list" "$("$BIN" trusted list "${ADMIN[@]}" 2>&1)" "^127\.0\.9\.0/24 +api .*test office"
expect_match "a network trusted at run time is let in despite its ban" "$(connect_from 127.0.9.9 "$GUARD_PORT")" "220 mx.guard.test"
"$BIN" trusted remove 127.0.9.0/24 "${ADMIN[@]}" >/dev/null
expect_match "once no longer trusted, the ban holds again" "$(connect_from 127.0.9.9 "$GUARD_PORT")" "554 5.7.1"
out=$(SMTPGUARD_ADMIN_TOKEN=sgt_wrong_wrong_wrong_wrong "$BIN" bans list "${ADMIN[@]}" 2>&1); status=$?
check "a wrong token: exit 1 and a clear error" eval '[ "$status" -ne 0 ] && has "$out" "refused the token (401)"'
check "the refused request is logged, without the token" \
  eval 'grep -q "admin API: wrong bearer token from 127.0.0.1 for GET /api/bans" "$GUARD_LOG" && ! grep -q "sgt_wrong" "$GUARD_LOG"'
out=$("$BIN" bans list --admin 127.0.0.1:12689 "${ADMIN[@]}" 2>&1); status=$?
check "no guard at the address: exit 1 and a clear error" eval '[ "$status" -ne 0 ] && has "$out" "no answer from the guard.s admin API at http://127.0.0.1:12689/"'
out=$(curl -s -H "Authorization: Bearer $(cat "$WORK/smtpguard-admin.token")" http://127.0.0.1:12680/metrics)
expect_match -E "/metrics counts the AUTH failures since the restart" "$out" 'smtpguard_auth_attempts_total\{outcome="failure",mechanism="LOGIN",source="proxy"\} [3-9]'
check "the admin token is in no log, event or state" eval '! grep -qaF "$(cat "$WORK/smtpguard-admin.token")" "$GUARD_LOG" "$EVENTS" "$WORK/state.db"'

# 4. admin/admin is valid on the backend: refused by the guard, account locked, alert raised.
out=$(smtp 127.0.3.5 admin admin PLAIN --quit-after AUTH); attempts=$((attempts + 1))
expect_match "admin/admin accepted by Postfix is refused to the client" "$out" "535 5.7.8 Authentication credentials invalid"
check "the backend really accepted admin/admin" grep -q "disconnect from unknown\[127.0.3.5\].* auth=1 " "$LAB_POSTFIX_LOG"
check "a critical weak-credential alert names the account" grep -q '"event":"alert","kind":"weak_credential_accepted","severity":"critical","username":"admin"' "$EVENTS"
check "the guard's log has the critical line" grep -q "critical.*weak_credential_accepted" "$GUARD_LOG"
out=$(smtp 127.0.4.4 admin admin PLAIN --quit-after AUTH); attempts=$((attempts + 1))
check "the locked account is refused everywhere untrusted" grep -q '"client_ip":"127.0.4.4".*"reasons":\["username_locked"' "$EVENTS"

# 5. A denied username never reaches the backend.
before=$(grep -c "sasl_username=guest\|guest" "$LAB_DOVECOT_LOG" || true)
out=$(smtp 127.0.5.5 guest guest PLAIN --quit-after AUTH); attempts=$((attempts + 1))
after=$(grep -c "sasl_username=guest\|guest" "$LAB_DOVECOT_LOG" || true)
check "guest is refused by the guard itself" eval 'has "$out" "535 5.7.8" && [ "$before" = "$after" ]'

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
time.sleep(1)  # time for a guard that wrongly connects idle clients to the backend to show it
print("idle", to_postfix(), connects() - before)
clients[0].sendall(b"MAIL FROM:<idle@example.org>\r\n")
code = reply(clients[0])[:3].decode()
time.sleep(0.5)  # "exactly one": time for a second connection, or a late one, to show
print("mail", code, to_postfix(), connects() - before)
for s in clients: s.close()
PY
)
expect_match -x "ten idle clients through the guard hold no connection to Postfix" "$out" "idle 0 0"
expect_match -x "positive control: MAIL from one of them opens exactly one, at once" "$out" "mail 250 1 1"

# 5b. TLS: AUTH only inside it, with real clients (swaks STARTTLS and implicit TLS, Python).
out=$(timeout 30 swaks --server "$GUARD" --local-interface 127.0.8.1 --quit-after EHLO 2>&1)
check "before TLS, EHLO offers STARTTLS and no AUTH" eval 'has "$out" "250-STARTTLS" && lacks "$out" AUTH'
sent PLAIN alice "$LAB_PASS_ALICE"
out=$(timeout 60 swaks --server "$GUARD_TLS" --tlsc --local-interface 127.0.8.2 --helo client.test \
  --auth PLAIN --auth-user alice --auth-password "$LAB_PASS_ALICE" --from alice@example.test --to "$LAB_RCPT" --timeout 30 2>&1 | tee -a "$WORK/clients.log"); attempts=$((attempts + 1))
check "swaks --tlsc (implicit TLS, port 465 style): login and message pass" eval 'has "$out" "235 2.7.0" && has "$out" "250 2.0.0 Ok: queued"'
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
expect_match "Python smtplib: AUTH before TLS gets 538 5.7.11" "$py_out" "before-tls 538 5.7.11"
check "Python smtplib: starttls() with the CA checked, then login and sendmail" \
  eval 'has "$py_out" "login ok" && has "$py_out" "sent ok" && has "$py_out" "has-starttls-after False"'
expect_match "Python smtplib: SMTP_SSL on the implicit TLS port" "$py_out" "implicit login ok TLSv1.3"
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
kill -HUP "$GUARD_PID"
check "a broken key on SIGHUP is logged and the old certificate stays" \
  eval 'wait_for 5 grep -q "SIGHUP: tls.key .*key.pem.*previous certificate stays in use" "$GUARD_LOG" && [ "$(peer_cn)" = "guard.mx.guard.test" ]'
cp "$LAB_TLS_DIR/guard-renewed.pem" "$WORK/cert.pem"
cp "$LAB_TLS_DIR/guard-renewed.key" "$WORK/key.pem"
kill -HUP "$GUARD_PID"
check "after SIGHUP new sessions get the renewed certificate" wait_for 5 eval '[ "$(peer_cn)" = "guard-renewed.mx.guard.test" ]'

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
start_guard -p 12626 guard2 "$WORK/backend-tls.yaml" --log-level debug
GUARD2_PID=$STARTED_PID
sent PLAIN alice "$LAB_PASS_ALICE"
out=$(timeout 60 swaks --server 127.0.0.1:12626 --local-interface 127.0.9.9 --helo client.test --auth PLAIN \
  --auth-user alice --auth-password "$LAB_PASS_ALICE" --quit-after AUTH --timeout 30 2>&1 | tee -a "$WORK/clients.log")
expect_match "backend.tls starttls: login through a verified TLS link to Postfix" "$out" "235 2.7.0"
check "Postfix saw TLS from the guard" grep -q "TLS connection established from unknown\[127.0.0.1\]: TLSv1.3" "$LAB_POSTFIX_LOG"
stop_pid "$GUARD2_PID"

# 5e. A certificate that cannot be read stops the start with the file's name.
sed -e "s#$WORK/cert.pem#$WORK/missing.pem#" -e 's#^listen: .*#listen: ["127.0.0.1:12627"]#' -e 's#^listen_tls: .*#listen_tls: []#' \
  "$WORK/smtpguard.yaml" >"$WORK/bad-cert.yaml"
out=$(timeout 20 "$BIN" run --config "$WORK/bad-cert.yaml" 2>&1); status=$?
check "a missing certificate is a start-up error naming the file (exit $status)" eval '[ "$status" -eq 1 ] && has "$out" "tls.certificate .*missing.pem: no such file"'
printf 'this is not a database at all, but it is long enough to have a header of sorts.%.0s' $(seq 1 100) >"$WORK/damaged.db"
out=$(timeout 20 "$BIN" run --config "$WORK/smtpguard.yaml" --listen 127.0.0.1:12628 --state "$WORK/damaged.db" 2>&1); status=$?
check "a damaged state file stops the start rather than forgetting the bans (exit $status)" eval '[ "$status" -eq 1 ] && has "$out" "state file .*damaged.db: not an SQLite database"'

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
start_bg "$WORK/haproxy.log" haproxy -f "$WORK/haproxy.cfg" -db
HAPROXY_PID=$STARTED_PID
require "HAProxy started" await_start "$HAPROXY_PID" "$WORK/haproxy.log" 10 port_open 127.0.0.1 12640
sent PLAIN alice "$LAB_PASS_ALICE"
out=$(timeout 60 swaks --server 127.0.0.1:12640 --tls --local-interface 127.0.10.10 --helo client.test --auth PLAIN \
  --auth-user alice --auth-password "$LAB_PASS_ALICE" --quit-after AUTH --timeout 30 2>&1 | tee -a "$WORK/clients.log"); attempts=$((attempts + 1))
expect_match "through HAProxy (PROXY v2): login passes" "$out" "235 2.7.0"
check "the guard saw the client behind HAProxy, not HAProxy" grep -q '"client_ip":"127.0.10.10"' "$EVENTS"
check "Postfix saw the client behind HAProxy" grep -q "unknown\[127.0.10.10\]" "$LAB_POSTFIX_LOG"
stop_pid "$HAPROXY_PID"

# 6. logrotate moves the event log away and sends SIGHUP: the guard goes on in a new file.
mv "$EVENTS" "$EVENTS.1"
kill -HUP "$GUARD_PID"
wait_for 5 test -e "$EVENTS"
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
  eval 'has "$out" "<-  220 " && has "$out" "<-  250" && has "$out" "<\*\* 421 4.3.0"'
check "the guard logs why" grep -q "error.*cannot connect to the backend" "$GUARD_LOG"
check "the guard is still running" kill -0 "$GUARD_PID"

# 9. Graceful stop on SIGTERM.
# Within 10 s, or stop_pid ends it with SIGKILL (exit 137).
stop_pid "$GUARD_PID" TERM 10; status=$?
check "SIGTERM stops the guard cleanly (exit $status)" [ "$status" -eq 0 ]

# 10. No secret anywhere, now that the guard has stopped and written everything: no login's
# clear password, PLAIN payload or LOGIN line in the events (both files of the rotation), the
# guards' debug logs, the admin API's event feed (events --follow) or the state, raw (the file
# and its write-ahead log) and dumped. The same sweep over what the clients sent finds them all.
sqlite3 "$WORK/state.db" .dump >"$WORK/state.sql" 2>&1
sort -u "$WORK/secrets.tsv" -o "$WORK/secrets.tsv"
swept=("$WORK"/events.jsonl "$WORK"/events.jsonl.1 "$GUARD_LOG" "$WORK/guard2.log" "$WORK/follow.txt" "$WORK/state.sql")
for f in "$WORK"/state.db*; do [ -s "$f" ] && swept+=("$f"); done
check "the guards logged at debug level" eval 'grep -q " debug smtpguard: .*guard decided" "$GUARD_LOG" && grep -q " debug smtpguard: " "$WORK/guard2.log"'
check "the state dump has the attempts of every username the clients sent" every_username_in "$WORK/secrets.tsv" "$WORK/state.sql" ",'%s','"
check "positive control: the sweep finds every PLAIN payload and LOGIN line in swaks' transcripts" all_found "$WORK/secrets.tsv" wire "$WORK/clients.log"
check "positive control: and every clear password in the clients' command lines" all_found "$WORK/secrets.tsv" clear "$WORK/clients.log"
check "no clear password, PLAIN payload or LOGIN line in the events, the guards' debug logs, the event feed or the state" \
  leak_sweep "$WORK/secrets.tsv" "${swept[@]}"

suite_end
