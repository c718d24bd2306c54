#!/usr/bin/env bash
# AUTH sessions per second against the real Postfix + Dovecot of tests/integration/lab.sh,
# straight to Postfix and through the guard (without and with XCLIENT), in the same run, with the project's
# load generator (smtp-load). Each session: greeting, EHLO, AUTH PLAIN (a valid user), QUIT.
# Sources are spread over many loopback addresses (127.9.x.y) as real clients would be.
#
#   scripts/bench-auth.sh              (root: starts and stops the lab)
#
# Environment: AUTH_SESSIONS (default 3000), AUTH_CONCURRENCY (default 20), AUTH_RUNS (3),
# SMTPGUARD_BIN / SMTP_LOAD_BIN (default .build/release/…, built when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

SESSIONS="${AUTH_SESSIONS:-3000}"
CONCURRENCY="${AUTH_CONCURRENCY:-20}"
RUNS="${AUTH_RUNS:-3}"
BIN="${SMTPGUARD_BIN:-.build/release/smtpguard}"
LOAD="${SMTP_LOAD_BIN:-.build/release/smtp-load}"
bash scripts/install-deps.sh
[ -x "$BIN" ] || swift build -c release --product smtpguard >/dev/null
[ -x "$LOAD" ] || swift build -c release --product smtp-load >/dev/null

WORK=$(mktemp -d /tmp/smtpguard-bench-auth.XXXXXX)
chmod 755 "$WORK"
export LAB_DIR="$WORK/lab" LAB_SMTP_PORT=10125
GUARD_PID=""
cleanup() {
  [ -n "$GUARD_PID" ] && kill $GUARD_PID 2>/dev/null && wait $GUARD_PID 2>/dev/null
  bash tests/integration/lab.sh stop >/dev/null 2>&1 || true
  PG_DIR="$WORK/pg" PG_PORT=15435 bash tests/integration/pg.sh stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

bash tests/integration/lab.sh start >"$WORK/lab.log" 2>&1 || { cat "$WORK/lab.log"; exit 1; }
eval "$(bash tests/integration/lab.sh env)"
printf '%s\n' "$LAB_PASS_ALICE" >"$WORK/password"
chmod 600 "$WORK/password"

cat >"$WORK/guard.yaml" <<EOF
admin:
  listen: ""
listen: ["127.0.0.1:12725"]
auth:
  require_tls: false   # plain-text AUTH: this measures the guard, not TLS (see bench-tls.sh)
backend:
  address: $LAB_SMTP
  identity: xclient
smtp:
  max_connections: 10000
  max_connections_per_ip: 10000
events:
  path: ""
state:
  path: ""
EOF
"$BIN" run --config "$WORK/guard.yaml" --log-level warning >"$WORK/guard.log" 2>&1 &
GUARD_PID=$!
# A second guard that does not introduce the client (identity none): what XCLIENT costs.
sed -e 's/12725/12726/' -e 's/identity: xclient/identity: none/' "$WORK/guard.yaml" >"$WORK/guard-plain.yaml"
"$BIN" run --config "$WORK/guard-plain.yaml" --log-level warning >"$WORK/guard-plain.log" 2>&1 &
GUARD_PID="$GUARD_PID $!"
# A third with its state in SQLite (every attempt written, flushed each second).
sed -e 's/12725/12727/' -e "s#^  path: \"\"\$#  path: \"\"#" "$WORK/guard.yaml" | sed -e "/^state:/,\$ s#  path: \"\"#  path: $WORK/state.db#" >"$WORK/guard-state.yaml"
"$BIN" run --config "$WORK/guard-state.yaml" --log-level warning >"$WORK/guard-state.log" 2>&1 &
GUARD_PID="$GUARD_PID $!"
# A fourth with its state in PostgreSQL (a throw-away cluster on loopback).
PG_DIR="$WORK/pg" PG_PORT=15435 bash tests/integration/pg.sh start >/dev/null
sed -e 's/12725/12728/' "$WORK/guard.yaml" | sed -e "/^state:/,\$ s#  path: \"\"#  url: postgres://smtpguard@127.0.0.1:15435/smtpguard#" >"$WORK/guard-pg.yaml"
"$BIN" run --config "$WORK/guard-pg.yaml" --log-level warning >"$WORK/guard-pg.log" 2>&1 &
GUARD_PID="$GUARD_PID $!"
for port in 12725 12726 12727 12728; do
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done

run() {  # run NAME TARGET SOURCEPREFIX
  "$LOAD" --target "$2" --sessions "$SESSIONS" --concurrency "$CONCURRENCY" --auth-user alice \
    --auth-password-file "$WORK/password" --auth-only --sources "$3" --json
}

echo "## AUTH sessions per second: Postfix + Dovecot, direct and through the guard"
echo
echo "- $(date -u +%FT%TZ), nproc $(nproc), Postfix $(postconf -c "$LAB_POSTFIX_CONFIG_DIR" -h mail_version), $(dovecot --version | head -1 | sed 's/^/Dovecot /')"
echo "- each session: greeting, EHLO, AUTH PLAIN alice (valid), QUIT; $SESSIONS sessions, $CONCURRENCY in flight, $RUNS interleaved runs; sources 127.9-11.x.y"
echo
echo "| set-up | run | sessions/s | p50 ms | p99 ms | errors |"
echo "|---|---|---:|---:|---:|---:|"
for i in $(seq 1 "$RUNS"); do
  for setup in direct "guard, identity none" "guard, XCLIENT" "guard, XCLIENT, SQLite state" "guard, XCLIENT, PostgreSQL state"; do
    case "$setup" in
      direct) out=$(run direct "$LAB_SMTP" 127.9) ;;
      "guard, identity none") out=$(run guard 127.0.0.1:12726 127.11) ;;
      "guard, XCLIENT, SQLite state") out=$(run guard 127.0.0.1:12727 127.12) ;;
      "guard, XCLIENT, PostgreSQL state") out=$(run guard 127.0.0.1:12728 127.13) ;;
      *) out=$(run guard 127.0.0.1:12725 127.10) ;;
    esac
    rate=$(sed -n 's/.*"sessions_per_second":\([0-9.]*\).*/\1/p' <<<"$out")
    p50=$(sed -n 's/.*"p50_ms":\([0-9.]*\).*/\1/p' <<<"$out")
    p99=$(sed -n 's/.*"p99_ms":\([0-9.]*\).*/\1/p' <<<"$out")
    errors=$(sed -n 's/.*"errors":\([0-9]*\).*/\1/p' <<<"$out")
    echo "| $setup | $i | $rate | $p50 | $p99 | $errors |"
  done
done
