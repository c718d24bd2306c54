#!/usr/bin/env bash
# SMTPGuard against the real thing: Postfix with Dovecot SASL (tests/integration/lab.sh),
# the guard in front of it forwarding client identity with XCLIENT, swaks as the client.
# Everything on loopback; many 127.x.y.z addresses stand in for many hosts. The lab and the
# guard are started here and stopped at the end, whatever happens.
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
EVENTS="$WORK/events.jsonl"
GUARD_LOG="$WORK/guard.log"
GUARD_PID=""
passed=0
failed=0

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

check() {  # check NAME CONDITION-COMMAND...
  local name=$1
  shift
  if "$@"; then
    echo "PASS $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name"
    failed=$((failed + 1))
  fi
}

bash tests/integration/lab.sh start >"$WORK/lab-start.log" 2>&1 || { cat "$WORK/lab-start.log"; echo "0 passed, 1 failed"; exit 1; }
eval "$(bash tests/integration/lab.sh env)"

cat >"$WORK/smtpguard.yaml" <<EOF
listen: ["$GUARD"]
backend:
  address: $LAB_SMTP
  identity: xclient
smtp:
  hostname: mx.guard.test
events:
  path: $EVENTS
guard:
  tarpit:
    initial: 100ms
    min_refusal_delay: 100ms
    max: 1s
EOF

check "config check accepts the test configuration" "$BIN" config check "$WORK/smtpguard.yaml"
"$BIN" run --config "$WORK/smtpguard.yaml" --log-level info >"$GUARD_LOG" 2>&1 &
GUARD_PID=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$GUARD_PORT") 2>/dev/null && break
  sleep 0.1
done

# swaks with the guard as server; FROM=address to connect from.
smtp() {  # smtp FROM USER PASSWORD MECH [extra swaks args]
  local from=$1 user=$2 password=$3 mech=$4
  shift 4
  timeout 60 swaks --server "$GUARD" --local-interface "$from" --helo client.test \
    --auth "$mech" --auth-user "$user" --auth-password "$password" --timeout 30 "$@" 2>&1
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

# 6. logrotate moves the event log away and sends SIGHUP: the guard goes on in a new file.
mv "$EVENTS" "$EVENTS.1"
kill -HUP "$GUARD_PID"
for _ in $(seq 1 50); do [ -e "$EVENTS" ] && break; sleep 0.1; done
out=$(smtp 127.0.0.1 alice "$LAB_PASS_ALICE" PLAIN --quit-after AUTH); attempts=$((attempts + 1))
check "after SIGHUP the event log is reopened by name" grep -q '"event":"auth"' "$EVENTS"
check "SIGHUP does not stop the guard" kill -0 "$GUARD_PID"

# 7. Visibility: one event line per AUTH attempt; no password anywhere.
cat "$EVENTS.1" "$EVENTS" >"$WORK/all-events.jsonl"
EVENTS="$WORK/all-events.jsonl"
auth_lines=$(grep -c '"event":"auth"' "$EVENTS")
check "one event line per AUTH attempt ($attempts attempts, $auth_lines lines)" [ "$auth_lines" -eq "$attempts" ]
leaks=0
for secret in "$LAB_PASS_ALICE" "$LAB_PASS_BOB" not-her-password guess-1 guess-6 \
  "$(printf '\0alice\0%s' "$LAB_PASS_ALICE" | base64)" "$(printf '%s' "$LAB_PASS_ALICE" | base64)"; do
  if grep -qF -- "$secret" "$EVENTS" "$GUARD_LOG"; then leaks=$((leaks + 1)); echo "  leaked: a test secret in the guard's output"; fi
done
check "no test password or AUTH payload in the event log or the guard's log" [ "$leaks" -eq 0 ]
check "every event line is valid JSON" python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$EVENTS"

# 8. The backend goes away: clients get 421 4.3.0, the guard keeps running and says why.
bash tests/integration/lab.sh stop >/dev/null 2>&1
out=$(timeout 30 swaks --server "$GUARD" --local-interface 127.0.6.6 --quit-after CONNECT 2>&1)
check "a dead backend gives the client 421 4.3.0" grep -q "421 4.3.0" <<<"$out"
check "the guard logs why" grep -q "error.*cannot connect to the backend" "$GUARD_LOG"
check "the guard is still running" kill -0 "$GUARD_PID"

# 9. Graceful stop on SIGTERM.
kill -TERM "$GUARD_PID"
stopped=1
for _ in $(seq 1 100); do kill -0 "$GUARD_PID" 2>/dev/null || { stopped=0; break; }; sleep 0.1; done
wait "$GUARD_PID"; status=$?
GUARD_PID=""
check "SIGTERM stops the guard cleanly (exit $status)" [ "$stopped" -eq 0 -a "$status" -eq 0 ]

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
