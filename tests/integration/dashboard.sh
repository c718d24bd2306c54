#!/usr/bin/env bash
# The dashboard in headless Chromium (Debian's chromium package) against a running guard in
# front of the lab's Postfix + Dovecot (tests/integration/lab.sh): tests/integration/dashboard.py
# plays a scripted attack through the guard, opens /dashboard, checks what it shows against the
# admin API, watches it update live, lifts a ban with the page's button and saves a screenshot.
#
#   tests/integration/dashboard.sh      (needs root: installs and runs Postfix, Dovecot, Chromium)
#
# Environment: SMTPGUARD_BIN (default .build/debug/smtpguard); DASHBOARD_SCREENSHOT (default
# .build/test-artifacts/dashboard.png). Prints PASS/FAIL lines and "N passed, N failed".
set -uo pipefail
. "$(dirname "$0")/lib.sh"
suite_begin dashboard
SCREENSHOT="${DASHBOARD_SCREENSHOT:-$ROOT/.build/test-artifacts/dashboard.png}"
mkdir -p "$(dirname "$SCREENSHOT")"

export LAB_DIR="$WORK/lab"
GUARD="127.0.0.1:12725"
ADMIN="127.0.0.1:12780"

start_lab || suite_abort "the lab (Postfix + Dovecot) started"

cat >"$WORK/smtpguard.yaml" <<YAML
admin:
  listen: $ADMIN
listen: ["$GUARD"]
tls:
  certificate: $LAB_TLS_DIR/guard.pem
  key: $LAB_TLS_DIR/guard.key
backend:
  address: $LAB_SMTP
  identity: xclient
smtp:
  hostname: mx.guard.test
state:
  path: $WORK/state.db
  flush_interval: 200ms
guard:
  tarpit:
    initial: 50ms
    min_refusal_delay: 50ms
    max: 500ms
YAML
start_bg "$WORK/guard.log" "$BIN" run --config "$WORK/smtpguard.yaml" --log-level info
check "the guard and its admin server are up, the token written" \
  await_start "$STARTED_PID" "$WORK/guard.log" 10 eval 'sg_ports_open 12725 12780 && [ -s "$WORK/smtpguard-admin.token" ]'

python3 tests/integration/dashboard.py --guard "$GUARD" --admin "$ADMIN" \
  --token-file "$WORK/smtpguard-admin.token" --password "$LAB_PASS_ALICE" \
  --screenshot "$SCREENSHOT" --work "$WORK" | tee "$WORK/dashboard.out"
status=${PIPESTATUS[0]}
passed=$((passed + $(grep -c '^PASS ' "$WORK/dashboard.out")))
failed=$((failed + $(grep -c '^FAIL ' "$WORK/dashboard.out")))
[ "$status" -eq 0 ] || [ "$failed" -gt 0 ] || { echo "FAIL the browser test ended early (exit $status)"; failed=$((failed + 1)); }
check "the admin token is in no log or state" bash -c '! grep -qaF "$(cat "$1")" "${@:2}"' _ "$WORK/smtpguard-admin.token" "$WORK/guard.log" "$WORK/state.db" "$WORK"/chromium.log
check "alice's password is in no log or state" bash -c '! grep -qaF "$1" "$2" "$3"' _ "$LAB_PASS_ALICE" "$WORK/guard.log" "$WORK/state.db"
echo "screenshot: $SCREENSHOT"
suite_end
