#!/usr/bin/env bash
# The policy servers against the real thing: the lab's Postfix with Dovecot SASL
# (tests/integration/lab.sh), Dovecot's auth_policy_server_url and Postfix's
# check_policy_service both pointing at `smtpguard policy`.
#   1. A legitimate login, then a password-guessing run with swaks against Postfix: Dovecot
#      tarpits it on the guard's word (status N), then rejects it (status -1); the guard's
#      events show Dovecot's reports.
#   2. admin/admin: Dovecot accepts the password, the guard recognises the default password
#      in pwhash (nonce, 32 bits) at Dovecot's after-authentication check and fails the login.
#   3. Postfix's policy: the banned guesser is refused at connect; an authenticated user who
#      sends to more recipients than the limit is deferred past it, and an alert is raised.
#   4. Protocol edge cases against the running servers.
#
# Environment: SMTPGUARD_BIN (default .build/debug/smtpguard). Prints PASS/FAIL lines and
# "N passed, N failed"; exits non-zero when a check failed.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
suite_begin policy

export LAB_DIR="$WORK/lab"
export LAB_SMTP_PORT=10045
DOVECOT_PORT=18125
POSTFIX_PORT=18126
API_KEY="policy-test-key-$$"
NONCE="policy-test-nonce-$$"

cat >"$WORK/policy.yaml" <<EOF
admin:
  listen: ""
dovecot_policy:
  listen: 127.0.0.1:$DOVECOT_PORT
  api_header: "X-API-Key: $API_KEY"
  hash_nonce: "$NONCE"
  hash_truncate: 32
postfix_policy:
  listen:
    - 127.0.0.1:$POSTFIX_PORT
    - unix:$WORK/policy.sock
state:
  path: $WORK/state.db
  flush_interval: 100ms
events:
  path: $WORK/events.jsonl
guard:
  limits:
    pair_failures: 3
    ip_failures_short: 5
  tarpit:
    after_failures: 1
    initial: 2s
    factor: 1
    max: 2s
    min_refusal_delay: 0s
sending:
  recipients_per_minute: 5
EOF
check "config check accepts the policy configuration" "$BIN" config check "$WORK/policy.yaml"
start_guard -s policy -p "$DOVECOT_PORT" -p "$POSTFIX_PORT" -r 'grep -q "postfix policy on unix:" "$WORK/guard.log"' guard "$WORK/policy.yaml" || suite_end
GUARD_PID=$STARTED_PID

export LAB_DOVECOT_EXTRA="auth_policy_server_url = http://127.0.0.1:$DOVECOT_PORT/
auth_policy_server_api_header = X-API-Key: $API_KEY
auth_policy_hash_nonce = $NONCE
auth_policy_hash_truncate = 32
auth_policy_reject_on_fail = no"
export LAB_POSTFIX_EXTRA="smtpd_delay_reject = no
smtpd_client_restrictions = check_policy_service inet:127.0.0.1:$POSTFIX_PORT
smtpd_recipient_restrictions = check_policy_service unix:$WORK/policy.sock"
start_lab || suite_abort "the lab (Postfix + Dovecot) started"
DC_LOG="$LAB_DIR/dovecot.log"
EVENTS="$WORK/events.jsonl"

# swaks_auth FROM USER PASSWORD [more swaks options]: the transcript; 0 when AUTH got 235.
swaks_auth() {
  local from=$1 user=$2 pass=$3
  shift 3
  timeout 60 swaks --server "$LAB_SMTP" --local-interface "$from" --helo client.test --auth PLAIN \
    --auth-user "$user" --auth-password "$pass" --timeout 40 "$@" 2>&1
}

# ---------------------------------------------------------------------------------------
# 1. A legitimate login; then guessing: tarpitted, then rejected on the guard's word. The
#    guesser is in another /24 than alice's own login (a known place covers its prefix).
out=$(swaks_auth 127.0.6.1 alice "$LAB_PASS_ALICE" --quit-after AUTH)
expect_match "a legitimate user logs in through Dovecot's policy check" "$out" "<-  235 "
check "the guard's events show Dovecot's report of the success" \
  wait_for 5 grep -q '"source":"dovecot_policy","client_ip":"127.0.6.1".*"username":"alice","outcome":"success"' "$EVENTS"

took=()
codes=()
for i in 1 2 3 4; do
  start=$(date +%s%N)
  out=$(swaks_auth 127.0.7.2 alice "guess-$i" --quit-after AUTH)
  took+=($((($(date +%s%N) - start) / 1000000)))
  codes+=("$(grep -o '<~*\*\* [0-9]\{3\}' <<<"$out" | grep -o '[0-9]\{3\}' | head -1)")
done
echo "policy: guesses took ${took[*]} ms, answered ${codes[*]}"
check "every guess is refused (535)" [ "${codes[*]}" = "535 535 535 535" ]
check "the first guess is not delayed" [ "${took[0]}" -lt 1500 ]
check "the second guess is tarpitted by Dovecot on the guard's word (status 2: at least 2 s)" [ "${took[1]}" -ge 1900 ]
expect_count "Dovecot's reports of the failures are in the events" ">=4" "$(cat "$EVENTS")" \
  '"source":"dovecot_policy","client_ip":"127.0.7.2".*"outcome":"failure"'
check "the fourth guess is rejected by the guard (pair limit), not by the password check" \
  grep -q '"client_ip":"127.0.7.2".*"outcome":"failure".*"decision":"refuse","reasons":\[[^]]*"pair_limit"' "$EVENTS"
check "Dovecot logs the policy server's rejection" grep -q "policy(alice,127.0.7.2): Authentication failure due to policy server refusal" "$DC_LOG"

# ---------------------------------------------------------------------------------------
# 2. The weak-credential firewall through Dovecot: admin/admin is accepted by the passdb and
#    refused by the guard at the after-authentication check.
out=$(swaks_auth 127.0.6.3 admin admin --quit-after AUTH)
expect_match "admin/admin is refused although Dovecot's passdb accepts it" "$out" "<~*\*\* 535 "
check "the guard recognised the default password in pwhash (nonce, 32 bits)" \
  wait_for 5 grep -q '"client_ip":"127.0.6.3".*"username":"admin","outcome":"success".*"decision":"refuse".*"default_credential":true' "$EVENTS"
check "an alert names the weak credential" wait_for 5 grep -q '"event":"alert","kind":"weak_credential_accepted".*"username":"admin"' "$EVENTS"

# ---------------------------------------------------------------------------------------
# 3. Postfix's policy: the banned guesser is refused at connect; sending limits.
for i in 5 6 7; do swaks_auth 127.0.7.2 alice "guess-$i" --quit-after AUTH >/dev/null; done
check "the guesser is banned" wait_for 5 grep -q '"event":"ban","scope":"ip","key":"127.0.7.2"' "$EVENTS"
out=$(timeout 30 swaks --server "$LAB_SMTP" --local-interface 127.0.7.2 --quit-after EHLO --timeout 20 2>&1)
expect_match "Postfix refuses the banned client at connect (421 from the policy service)" "$out" "<\*\* 421 4.7.0 .*Too many failed logins from your address"
out=$(timeout 30 swaks --server "$LAB_SMTP" --local-interface 127.0.6.4 --quit-after EHLO --timeout 20 2>&1)
expect_match "another client is served" "$out" "<-  250"

rcpts="r1@x.test,r2@x.test,r3@x.test,r4@x.test,r5@x.test,r6@x.test,r7@x.test"
out=$(swaks_auth 127.0.6.1 alice "$LAB_PASS_ALICE" --from alice@smtpguard.test --to "$rcpts")
accepted=$(grep -c "<-  250 2.1.5" <<<"$out")
deferred=$(grep -c "<\*\* 450 4.7.1.*Sending limit reached for this account (5 recipients per minute)" <<<"$out")
echo "policy: $accepted recipients accepted, $deferred deferred"
check "an authenticated user gets 5 recipients accepted, the rest deferred (DEFER_IF_PERMIT)" [ "$accepted" -eq 5 -a "$deferred" -eq 2 ]
check "an alert names the possible compromised account" \
  wait_for 5 grep -q '"event":"alert","kind":"possible_compromise".*"message":"possible compromised account: alice sent 5 recipients in 1 minute from 1 address' "$EVENTS"
check "the deferrals are events" grep -q '"event":"sending","source":"postfix_policy","username":"alice"' "$EVENTS"

# ---------------------------------------------------------------------------------------
# 4. Edge cases against the running servers.
policy_url="http://127.0.0.1:$DOVECOT_PORT/?command=allow"
check "HTTP without credentials gets 401" [ "$(curl -s -o /dev/null -w "%{http_code}" -X POST "$policy_url" -d "{}")" = 401 ]
expect_match "JSON with a wrong type gets 400 naming the attribute" \
  "$(curl -s -X POST "$policy_url" -H "X-API-Key: $API_KEY" -d '{"login":[1],"remote":"127.0.0.1"}')" "login.*must be a string"
head -c 40000 /dev/zero | tr "\0" "a" >"$WORK/big"
check "an oversized body gets 413" [ "$(curl -s -o /dev/null -w "%{http_code}" -X POST "$policy_url" -H "X-API-Key: $API_KEY" --data-binary @"$WORK/big")" = 413 ]
check "the Postfix protocol edge cases (unknown attributes, no request=, oversize, a client gone mid-request)" python3 - "$POSTFIX_PORT" <<'PY'
import socket, sys
port = int(sys.argv[1])
def ask(payload, expect_answer=True):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(payload)
    data = b""
    try:
        while not data.endswith(b"\n\n"):
            chunk = s.recv(4096)
            if not chunk: break
            data += chunk
    except socket.timeout:
        pass
    s.close()
    return data
ok = True
# Unknown attributes are ignored.
r = ask(b"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=127.0.6.9\nfuture_attribute=x\nccert_subject=\n\n")
ok &= r == b"action=DUNNO\n\n"
# No request=: no answer, closed.
ok &= ask(b"protocol_state=RCPT\nclient_address=127.0.6.9\n\n") == b""
# Over the size limit: no answer, closed.
ok &= ask(b"request=smtpd_access_policy\nhelo_name=" + b"h" * 20000 + b"\n\n") == b""
# A client that goes away mid-request, then the server still answers.
s = socket.create_connection(("127.0.0.1", port)); s.sendall(b"request=smtpd_access_policy\nprotocol_"); s.close()
ok &= ask(b"request=smtpd_access_policy\nprotocol_state=CONNECT\nclient_address=127.0.7.2\n\n").startswith(b"action=421 ")
sys.exit(0 if ok else 1)
PY
log=$(cat "$WORK/guard.log")
check "the refusals are logged with their reasons" eval 'has "$log" "401 to" && has "$log" "request without request=" && has "$log" "request over"'
check "no password, guess or secret reaches the events or the guard's log" \
  eval '! grep -q "guess-\|$LAB_PASS_ALICE\|$API_KEY\|$NONCE" "$EVENTS" "$WORK/guard.log"'

stop_pid "$GUARD_PID" INT 30
rc=$?
check "the guard stops gracefully on SIGINT" [ "$rc" -eq 0 -a ! -e "$WORK/policy.sock" ]

suite_end
