#!/usr/bin/env bash
# The audit commands on real inputs:
#   1. `smtpguard audit-passwords` on a Dovecot passwd-file whose hashes Dovecot itself made
#      (`doveadm pw`, every scheme the audit reads), with weak accounts of each kind and strong
#      ones, and on a shadow file (yescrypt, SHA-512, locked, blank): the right accounts, the
#      right rules, never a password unless asked, the exit statuses.
#   2. `smtpguard check-password` as a password-change hook: standard input, pam_exec's
#      NUL-terminated password with PAM_USER, JSON, exit statuses.
#   3. `smtpguard dnsbl` against a small DNS server on loopback (dnsbl_server.py): listed with
#      codes and reasons, not listed, IPv6 nibbles, refusals, rewritten answers, SERVFAIL, timeouts.
#   4. `smtpguard audit` against the lab's real Postfix + Dovecot configured badly on purpose
#      (leaking banner, AUTH before TLS, admin/admin, open relay, no failure delay), configured
#      well, and with SMTPGuard in front of the bad one: the audit tells them apart. Through
#      the guard, admin/admin (which the bad server accepts: the same audit straight at it
#      says so, the positive control) is really tried: the guard's event log has the backend's
#      yes turned into a refusal by the weak-credential firewall, Postfix's log the accepted
#      AUTH from the audit's address (XCLIENT), and the audit reports no default login accepted.
#
# Environment: SMTPGUARD_BIN (default .build/debug/smtpguard). Prints PASS/FAIL lines and
# "N passed, N failed"; exits non-zero when a check failed.
set -uo pipefail

. "$(dirname "$0")/lib.sh"
suite_begin audit --private  # WORK stays 0700: the labs, which Postfix and Dovecot must reach, live outside it

# jq-free JSON reading: json FILE EXPRESSION (Python, the value of EXPRESSION on `r`).
json() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# ---------------------------------------------------------------------------------------
# 1. audit-passwords
SCHEMES="SHA512-CRYPT SHA256-CRYPT BLF-CRYPT MD5-CRYPT DES-CRYPT SSHA256 SSHA512 PLAIN"
: >"$WORK/users"
: >"$WORK/secrets"
for scheme in $SCHEMES; do
  s=$(tr 'A-Z-' 'a-z_' <<<"$scheme")
  strong="Strong-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
  # name password: made from the username, on the bots' list, in password.lst, strong.
  for entry in "u_$s u_${s}123" "d_$s 123456" "w_$s dragon" "s_$s $strong"; do
    name=${entry%% *}; password=${entry#* }
    echo "$name:$(doveadm pw -s "$scheme" -p "$password"):1000:1000::/home/$name::" >>"$WORK/users"
    [ "$password" = 123456 ] || echo "$password" >>"$WORK/secrets"  # (123456 could be a figure in the report)
  done
done
echo "guest:::::::nopassword=y" >>"$WORK/users"
echo "this line is not an account" >>"$WORK/users"

"$BIN" audit-passwords "$WORK/users" --json >"$WORK/report.json" 2>"$WORK/report.err"
status=$?
check "audit-passwords: exit status 2 (guessable accounts)" [ "$status" -eq 2 ]
check "every scheme's hash is read (no account unreadable)" [ "$(json "$WORK/report.json" 'r["summary"]["unreadable"]')" = 0 ]
result() { json "$WORK/report.json" "next(a['result'] + ' ' + a.get('rule', '') for a in r['accounts'] if a['username'] == '$1')"; }
for scheme in $SCHEMES; do
  s=$(tr 'A-Z-' 'a-z_' <<<"$scheme")
  check "$scheme: \${username}123, 123456 and dragon found by their rules, the strong one not" \
    bash -c '[ "$1" = "guessable derived_from_username" ] && [ "$2" = "guessable default_list" ] && [ "$3" = "guessable wordlist" ] && [ "$4" = "not_guessed " ]' _ \
    "$(result "u_$s")" "$(result "d_$s")" "$(result "w_$s")" "$(result "s_$s")"
done
check "nopassword is guessable; the broken line is named by its number" \
  bash -c '[ "$1" = "guessable no_password_needed" ] && [ "$2" = "[34]" ]' _ "$(result guest)" "$(json "$WORK/report.json" '[p["line"] for p in r["problems"]]')"
check "no password in the report" bash -c '! grep -qFf "$1" "$2" "$3"' _ "$WORK/secrets" "$WORK/report.json" "$WORK/report.err"
"$BIN" audit-passwords "$WORK/users" --show-passwords >"$WORK/shown.txt"
check "--show-passwords shows the guessed ones (and still not the strong ones)" \
  bash -c 'grep -q "u_sha512_crypt.*password: u_sha512_crypt123" "$1" && ! grep -q "Strong-" "$1"' _ "$WORK/shown.txt"
text=$("$BIN" audit-passwords "$WORK/users" 2>/dev/null)
expect_match "the table names the scheme, the line and the rule" "$text" "FAIL  w_blf_crypt *[0-9]* *BLF-CRYPT *guessable: in the common-password list password.lst"

grep '^s_' "$WORK/users" >"$WORK/strong"
"$BIN" audit-passwords "$WORK/strong" >/dev/null 2>&1
check "only strong accounts: exit status 0" [ $? -eq 0 ]
"$BIN" audit-passwords "$WORK/strong" --time-per-account 1ms --json >"$WORK/slow.json" 2>/dev/null
status=$?
check "an account not finished in time: exit status 1 and it says how far it got" \
  bash -c '[ "$1" -eq 1 ] && [ "$2" -gt 0 ]' _ "$status" "$(json "$WORK/slow.json" 'r["summary"]["unfinished"]')"

# A shadow file: crypt(3) strings as passwd(1) writes them (yescrypt, Debian's default, and SHA-512).
python3 -W ignore - "$WORK/shadow" <<'PY'
import crypt, sys
lines = [
    "root:!:19000:0:99999:7:::",
    "daemon:*:19000:0:99999:7:::",
    "anna:" + crypt.crypt("anna12", "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$") + ":19000:0:99999:7:::",
    "ben:" + crypt.crypt("password", crypt.mksalt(crypt.METHOD_SHA512)) + ":19000:0:99999:7:::",
    "carl:" + crypt.crypt("Tall-Lighthouse-47-Orbit", crypt.mksalt(crypt.METHOD_SHA512)) + ":19000:0:99999:7:::",
    "dora::19000:0:99999:7:::",
]
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY
"$BIN" audit-passwords "$WORK/shadow" --json >"$WORK/report.json" 2>/dev/null
check "shadow: yescrypt anna12 and SHA-512 'password' found, locked skipped, blank guessable, the strong one not" \
  bash -c '[ "$1" = "guessable derived_from_username" ] && [ "$2" = "guessable default_list" ] && [ "$3" = "skipped " ] && [ "$4" = "guessable blank" ] && [ "$5" = "not_guessed " ]' _ \
  "$(result anna)" "$(result ben)" "$(result root)" "$(result dora)" "$(result carl)"
check "shadow: the schemes are named" [ "$(json "$WORK/report.json" '[a.get("scheme") for a in r["accounts"]][2:5]')" = "['YESCRYPT', 'SHA512-CRYPT', 'SHA512-CRYPT']" ]

out=$("$BIN" audit-passwords "$WORK/no-such-file" 2>&1); status=$?
check "a file that cannot be read: exit status 3, and the file named" eval '[ "$status" -eq 3 ] && has "$out" "cannot read .*no-such-file"'

# ---------------------------------------------------------------------------------------
# 2. check-password
verdict() { local input=$1; shift; out=$(printf '%b' "$input" | "$BIN" check-password "$@" 2>&1); status=$?; }
verdict 'alice123\n' --user alice
check "check-password: \${username}123 refused (exit 2), and why" bash -c '[ "$1" -eq 2 ] && [ "$2" = "refused: made from the username (\${username}123)" ]' _ "$status" "$out"
out=$(printf 'Correct-Horse-9-Battery\0' | PAM_USER=admin "$BIN" check-password 2>&1); status=$?
check "pam_exec's NUL-terminated password for PAM_USER=admin: accepted (exit 0)" eval '[ "$status" -eq 0 ] && has "$out" "^accepted: .*at least 15 characters"'
verdict 'Short-Pass-12\n' --user root
check "an administrator's 13-character password refused as too short" bash -c '[ "$1" -eq 2 ] && [ "$2" = "refused: shorter than 15 characters" ]' _ "$status" "$out"
verdict 'Sunshine\n' --json
check "a word of password.lst refused, in JSON" eval '[ "$status" -eq 2 ] && has "$out" "\"rule\":\"wordlist\"" && lacks "$out" Sunshine'
verdict '\n'
check "a blank password refused" bash -c '[ "$1" -eq 2 ] && [ "$2" = "refused: the password is blank" ]' _ "$status" "$out"
out=$("$BIN" check-password </dev/null 2>&1); status=$?
check "no password at all: exit 3 and a clear error" eval '[ "$status" -eq 3 ] && has "$out" "no password on standard input"'
out=$(echo "x" | "$BIN" check-password --wordlist "$WORK/nope.lst" 2>&1); status=$?
check "a wordlist that cannot be read: exit 3, named" eval '[ "$status" -eq 3 ] && has "$out" "cannot read the wordlist .*nope.lst"'

# ---------------------------------------------------------------------------------------
# 3. dnsbl, against the test suite's DNS server on loopback
DNS_PORT=12953
# The server opens its log once its socket is bound: from then on a question is answered.
start_bg "$WORK/dns.out" python3 tests/integration/dnsbl_server.py "$DNS_PORT" "$WORK/dns.log"
require "the DNS server on 127.0.0.1:$DNS_PORT started" await_start "$STARTED_PID" "$WORK/dns.out" 5 test -f "$WORK/dns.log"
dnsbl() { "$BIN" dnsbl --resolver "127.0.0.1:$DNS_PORT" --timeout 300ms "$@"; }
dnsbl 192.0.2.2 192.0.2.3 2001:db8::5 --zone bl.test --json >"$WORK/dnsbl.json" 2>&1; status=$?
check "dnsbl: a listed address: exit status 2" [ "$status" -eq 2 ]
entry() { json "$WORK/dnsbl.json" "next(x for x in r['results'] if x['address'] == '$1' and x['zone'] == '$2')"; }
check "192.0.2.2 listed in bl.test with code 127.0.0.2 and the TXT reason" \
  [ "$(entry 192.0.2.2 bl.test)" = "{'address': '192.0.2.2', 'zone': 'bl.test', 'result': 'listed', 'codes': ['127.0.0.2'], 'reason': '192.0.2.2 is listed for testing'}" ]
check "192.0.2.3 not listed" [ "$(json "$WORK/dnsbl.json" "next(x['result'] for x in r['results'] if x['address'] == '192.0.2.3')")" = not_listed ]
check "2001:db8::5 looked up by its 32 reversed nibbles, and listed (127.0.0.4)" \
  bash -c 'grep -qx "A 5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test" "$1" && [ "$2" = "127.0.0.4" ]' _ \
  "$WORK/dns.log" "$(json "$WORK/dnsbl.json" "','.join(next(x['codes'] for x in r['results'] if x['address'] == '2001:db8::5'))")"
out=$(dnsbl 192.0.2.3 --zone bl.test 2>&1); status=$?
check "not listed anywhere: exit status 0, and the table says so" \
  eval '[ "$status" -eq 0 ] && has "$out" "192.0.2.3 .*bl.test .*not listed" && has "$out" "1 lookups through 127.0.0.1:$DNS_PORT: 0 listed, 1 not listed, 0 errors"'
dnsbl 192.0.2.3 --zone refuse.test --zone hijack.test --zone fail.test --zone silent.test --json >"$WORK/dnsbl-errors.json" 2>&1; status=$?
err() { json "$WORK/dnsbl-errors.json" "next(x['result'] + ': ' + x.get('error', '') for x in r['results'] if x['zone'] == '$1')"; }
check "dnsbl: lookup errors only: exit status 1" [ "$status" -eq 1 ]
expect_match "127.255.255.254 is a refusal (public resolver), not a listing" "$(err refuse.test)" "^error: .*public or open resolver"
expect_match "an answer outside 127/8 is an error, not a listing" "$(err hijack.test)" "^error: the answer 198.51.100.7 is not a blocklist code"
expect_match "SERVFAIL is an error" "$(err fail.test)" "^error: .*SERVFAIL"
check "no answer is an error after the timeout (asked twice)" \
  eval 'has "$(err silent.test)" "^error: no answer from 127.0.0.1:$DNS_PORT within" && count_is 2 "$(cat "$WORK/dns.log")" silent.test'
out=$("$BIN" dnsbl 192.0.2.300 2>&1); status=$?
check "a malformed address is refused before any lookup, and named" eval '[ "$status" -ne 0 ] && has "$out" "192.0.2.300: not an IPv4 or IPv6 address"'

# ---------------------------------------------------------------------------------------
# 4. audit HOST, against the real Postfix + Dovecot, configured badly and well. The bad one
# relays for everyone (mynetworks = 0.0.0.0/0, the classic mistake; Postfix refuses a bare
# "permit").
BAD_PORT=12925; GOOD_PORT=12926; GUARD_PORT=12927; GUARD_TLS_PORT=12928
# The labs live outside $WORK (mode 0700): Postfix and Dovecot run as their own users.
LAB_BAD=/tmp/smtpguard-audit-lab-bad; LAB_GOOD=/tmp/smtpguard-audit-lab-good
at_exit "LAB_DIR=$LAB_BAD bash tests/integration/lab.sh stop >/dev/null 2>&1"
at_exit "LAB_DIR=$LAB_GOOD bash tests/integration/lab.sh stop >/dev/null 2>&1"
LAB_DIR="$LAB_BAD" LAB_SMTP_PORT=$BAD_PORT \
  LAB_POSTFIX_EXTRA=$'smtpd_banner = $myhostname ESMTP $mail_name $mail_version\nmynetworks = 0.0.0.0/0\nsmtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination' \
  bash tests/integration/lab.sh start >"$WORK/lab-bad.out" 2>&1 || { cat "$WORK/lab-bad.out"; echo "audit: the bad lab did not start"; }
LAB_DIR="$LAB_GOOD" LAB_SMTP_PORT=$GOOD_PORT LAB_WEAK_ADMIN=no LAB_FAST_FAILURES=no \
  LAB_POSTFIX_EXTRA=$'smtpd_banner = $myhostname ESMTP\nsmtpd_tls_auth_only = yes' \
  bash tests/integration/lab.sh start >"$WORK/lab-good.out" 2>&1 || { cat "$WORK/lab-good.out"; echo "audit: the good lab did not start"; }

finding() { json "$1" "next(f['status'] + ' ' + f['detail'] for f in r['findings'] if f['check'] == '$2')"; }
"$BIN" audit "127.0.0.1:$BAD_PORT" --try-default-credentials --attempt-interval 100ms --json >"$WORK/bad.json" 2>"$WORK/bad.err"; status=$?
check "audit, badly configured server: exit status 2" [ "$status" -eq 2 ]
expect_match -E "the banner's product and version are a failure" "$(finding "$WORK/bad.json" banner)" "^fail the banner reveals Postfix [0-9]+\.[0-9]+"
expect_match "AUTH PLAIN LOGIN before TLS is a failure" "$(finding "$WORK/bad.json" auth-before-tls)" "^fail AUTH PLAIN LOGIN CRAM-MD5 is offered before TLS"
expect_match "the open relay is found" "$(finding "$WORK/bad.json" open-relay)" "^fail an outside recipient .* is accepted .* open relay"
check "the relay test sent no message (no DATA, a RSET)" bash -c '[ -s "$1" ] && ! grep -q "smtpguard-relay-test@example.net.*status=" "$1" && ! grep -q "queued as\|message-id=" "$1"' _ "$LAB_BAD/postfix.log"
expect_match "admin/admin is found by --try-default-credentials, named by its rule only" \
  "$(finding "$WORK/bad.json" default-credentials)" "^fail the login admin with the username as password is accepted"
expect_match "failed logins at full speed are a failure" "$(finding "$WORK/bad.json" lockout)" "^fail 6 failed logins were answered in .* none slowed or blocked"
check "the self-signed lab CA is reported untrusted; with --ca-file trusted" \
  eval 'has "$(finding "$WORK/bad.json" certificate-trust)" "^warn .*not trusted" &&
    has "$("$BIN" audit "127.0.0.1:$BAD_PORT" --ca-file "$LAB_BAD/tls/ca.pem" --lockout-probes 2 --json)" "\"check\":\"certificate-trust\",\"status\":\"pass\""'
check "no password or AUTH payload in the report" bash -c '! grep -q "AGFkbWluAGFkbWlu\|YWRtaW4=" "$1" "$2"' _ "$WORK/bad.json" "$WORK/bad.err"

"$BIN" audit "127.0.0.1:$GOOD_PORT" --ca-file "$LAB_GOOD/tls/ca.pem" --try-default-credentials --max-attempts 3 --attempt-interval 100ms \
  --lockout-probes 3 >"$WORK/good.txt" 2>&1; status=$?
check "audit, well configured server: exit status 0, nothing failed or warned" \
  bash -c '[ "$1" -eq 0 ] && grep -q "passed, 0 warnings, 0 failed" "$2"' _ "$status" "$WORK/good.txt"
for line in "banner .*names no product or version" "auth-before-tls .*AUTH is not offered before TLS" "certificate-name .*is for 127.0.0.1" \
  "open-relay .*refused without AUTH" "default-credentials .*none of 3 default logins" "lockout .*slowed down \\(tarpit\\)"; do
  check "well configured: PASS $line" grep -Eq "^PASS +$line" "$WORK/good.txt"
done

# The bad server with SMTPGuard in front: AUTH only after TLS, weak logins refused, guessers banned.
cat >"$WORK/guard.yaml" <<YAML
listen: ["127.0.0.1:$GUARD_PORT"]
listen_tls: ["127.0.0.1:$GUARD_TLS_PORT"]
admin:
  listen: ""
backend:
  address: 127.0.0.1:$BAD_PORT
  identity: xclient
smtp:
  hostname: mx.guard.test
tls:
  certificate: $LAB_BAD/tls/guard.pem
  key: $LAB_BAD/tls/guard.key
state:
  path: $WORK/guard-state
events:
  path: $WORK/guard-events.jsonl
guard:
  credentials:
    # The audit's three guest logins count once each, not three times, so that they leave
    # the audit's admin/admin within the guess budget: it reaches the backend, which accepts
    # it, and the weak-credential firewall is what refuses it.
    default_credential_weight: 1
YAML
start_guard -p "$GUARD_PORT" -p "$GUARD_TLS_PORT" guard "$WORK/guard.yaml"
"$BIN" audit "127.0.0.1:$GUARD_TLS_PORT" --tls --source 127.0.40.1 --ca-file "$LAB_BAD/tls/ca.pem" --lockout-probes 2 --json >"$WORK/implicit.json" 2>&1
check "implicit TLS (--tls): the handshake comes first, then the greeting; TLS 1.3 and the guard's certificate name" \
  eval 'has "$(finding "$WORK/implicit.json" tls-version)" "^pass implicit TLS negotiates TLS 1.3" &&
    has "$(finding "$WORK/implicit.json" certificate-name)" "^pass the certificate is for 127.0.0.1" && grep -q "\"greeting\":\"mx.guard.test" "$WORK/implicit.json"'
# The same audit with default logins, through the guard and (the positive control) straight
# at the bad server: admin/admin is valid there.
default_audit() {  # default_audit HOST:PORT SOURCE REPORT
  "$BIN" audit "$1" --source "$2" --ca-file "$LAB_BAD/tls/ca.pem" --try-default-credentials --max-attempts 3 --attempt-interval 100ms \
    --lockout-probes 8 --json >"$3" 2>&1
}
default_audit "127.0.0.1:$BAD_PORT" 127.0.42.1 "$WORK/direct.json"
check "positive control: the same audit straight at the bad server finds admin/admin accepted, and Postfix logged the AUTH" \
  eval 'has "$(finding "$WORK/direct.json" default-credentials)" "^fail the login admin with the username as password is accepted" &&
    grep -q "disconnect from unknown\[127.0.42.1\].* auth=1 " "$LAB_BAD/postfix.log"'
default_audit "127.0.0.1:$GUARD_PORT" 127.0.41.1 "$WORK/guarded.json"
expect_match "audit through SMTPGuard: AUTH not offered before TLS" "$(finding "$WORK/guarded.json" auth-before-tls)" "^pass"
check "audit through SMTPGuard: admin/admin reached the backend, which accepted it (Postfix, through XCLIENT)" \
  grep -q "disconnect from unknown\[127.0.41.1\] .*xclient=.* auth=1 " "$LAB_BAD/postfix.log"
check "audit through SMTPGuard: the guard's event log has the audit's admin/admin, accepted by the backend, refused by the weak-credential firewall" \
  python3 -c '
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
tried = [e for e in events if e["event"] == "auth" and e["client_ip"] == "127.0.41.1" and e["username"] == "admin"]
refused = [e for e in tried if e["outcome"] == "success" and e["reply"] == 535 and e["decision"] == "refuse"
           and "weak_credential_accepted" in e["reasons"] and e.get("default_credential")]
alerts = [e for e in events if e["event"] == "alert" and e["kind"] == "weak_credential_accepted" and e["severity"] == "critical"
          and e["username"] == "admin" and e.get("client_ip") == "127.0.41.1"]
sys.exit(0 if len(tried) == 1 and refused and alerts else 1)' "$WORK/guard-events.jsonl"
check "audit through SMTPGuard: the report says no default login was accepted (admin/admin among the 3 tried)" \
  [ "$(finding "$WORK/guarded.json" default-credentials)" = "pass none of 3 default logins of the seed lists is accepted" ]
expect_match -E "audit through SMTPGuard: failed logins slowed or blocked" "$(finding "$WORK/guarded.json" lockout)" "^pass failed logins are (slowed|blocked)"
expect_match "audit through SMTPGuard: the open relay behind it is still reported" "$(finding "$WORK/guarded.json" open-relay)" "^fail"

suite_end
