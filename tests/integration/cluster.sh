#!/usr/bin/env bash
# Several guards on one PostgreSQL database (tests/integration/pg.sh, a throw-away cluster on
# loopback), in front of scripts/smtp-stub.py (every password is wrong), driven by swaks:
# a ban decided by one guard is enforced by the other within a second; a guessing run split
# over both is banned at the same total as on one; the database stopped and started again
# mid-attack loses nothing; a network trusted or no longer trusted on one guard is so on the
# other at its next poll (checked within 2 s, swaks included); a database that stops answering (SIGSTOP) holds nothing up past
# state.timeout and loses nothing; a restarted guard lists the alerts raised before (from the
# database); `smtpguard db status` and `db migrate` for PostgreSQL.
#
#   tests/integration/cluster.sh          (root; prints "N passed, N failed")
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BIN="${SMTPGUARD_BIN:-$ROOT/.build/debug/smtpguard}"
[ -x "$BIN" ] || swift build --product smtpguard >/dev/null || { echo "cluster: build failed"; exit 1; }
WORK=$(mktemp -d /tmp/smtpguard-cluster.XXXXXX)
chmod 755 "$WORK"
export PG_DIR="$WORK/pg" PG_PORT=15433
PIDS=()
PG_STOPPED=""
. tests/integration/checks.sh
cleanup() {
  [ -n "$PG_STOPPED" ] && kill -CONT $PG_STOPPED 2>/dev/null
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  wait 2>/dev/null
  bash tests/integration/pg.sh stop >/dev/null 2>&1
  if [ "$failed" -gt 0 ] || [ -n "${KEEP_WORK:-}" ]; then echo "cluster: logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

bash tests/integration/pg.sh start >"$WORK/pg-start.log" 2>&1 || { cat "$WORK/pg-start.log"; echo "0 passed, 1 failed"; exit 1; }
eval "$(bash tests/integration/pg.sh env)"
python3 scripts/smtp-stub.py 127.0.0.1:12529 >"$WORK/stub.log" 2>&1 &
PIDS+=($!)
wait_port 12529

echo "sgt_cluster_$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')" >"$WORK/admin-token"
chmod 600 "$WORK/admin-token"
for n in 1 2; do
  cat >"$WORK/guard$n.yaml" <<YAML
admin:
  listen: 127.0.0.1:1285$n
  token_file: $WORK/admin-token
listen: ["127.0.0.1:1284$n"]
auth:
  require_tls: false
backend:
  address: 127.0.0.1:12529
smtp:
  hostname: guard$n.test
events:
  path: $WORK/events$n.jsonl
state:
  url: $PG_URL
  timeout: 3s
alerts:
  volume_threshold: 5
guard:
  tarpit:
    initial: 0s
    min_refusal_delay: 0s
YAML
done
out=$("$BIN" db migrate --config "$WORK/guard1.yaml" 2>&1)
check "db migrate creates the schema in PostgreSQL" grep -q "schema version 0 → 2" <<<"$out"
for n in 1 2; do
  "$BIN" run --config "$WORK/guard$n.yaml" >"$WORK/guard$n.log" 2>&1 &
  PIDS+=($!)
done
GUARD1=${PIDS[1]}
wait_port 12841 && wait_port 12842 && wait_port 12851 && wait_port 12852

guess() {  # guess PORT FROM USER
  timeout 20 swaks --server "127.0.0.1:$1" --local-interface "$2" --auth PLAIN --auth-user "$3" --auth-password wrong \
    --quit-after AUTH --timeout 10 2>&1
}
refused_at_connect() {  # refused_at_connect PORT FROM (swaks exits non-zero on a 554 greeting)
  local out
  out=$(timeout 10 swaks --server "127.0.0.1:$1" --local-interface "$2" --quit-after CONNECT 2>&1)
  grep -q "554 5.7.1" <<<"$out"
}
written_attempts() {  # written_attempts CLIENT N: sets count to the attempts of CLIENT in the database, waiting up to 10 s for N
  for _ in $(seq 1 50); do
    count=$(psql "$PG_URL" -Atc "SELECT count(*) FROM attempts WHERE client = '$1'" 2>/dev/null || echo 0)
    [ "$count" -ge "$2" ] && return
    sleep 0.2
  done
}
let_in() {  # let_in PORT FROM: greeted with 220
  local out
  out=$(timeout 10 swaks --server "127.0.0.1:$1" --local-interface "$2" --quit-after CONNECT 2>&1)
  grep -q "220 guard" <<<"$out"
}
within() {  # within MS COMMAND…: polls COMMAND until it succeeds; true when that took at most MS (swaks' start-up included)
  local limit=$1 began=$(date +%s%N)
  shift
  for _ in $(seq 1 100); do
    "$@" && [ $(( ($(date +%s%N) - began) / 1000000 )) -le "$limit" ] && return 0
    [ $(( ($(date +%s%N) - began) / 1000000 )) -gt "$limit" ] && return 1
    sleep 0.05
  done
  return 1
}

# 1. A run of guesses split over both guards: 3 on the first, 3 on the second: banned at the
# 6th failure in all, as on one guard (the limit is 5).
for i in 1 2 3; do guess 12841 127.0.30.1 "u$i" >/dev/null; done
sleep 1.5
for i in 4 5; do guess 12842 127.0.30.1 "u$i" >/dev/null; done
check "after 5 failures spread over two guards, no ban yet" bash -c '! grep -q "\"event\":\"ban\"" "$1" "$2"' _ "$WORK/events1.jsonl" "$WORK/events2.jsonl"
guess 12842 127.0.30.1 u6 >/dev/null
began=$(date +%s%N)
check "the 6th failure, on the second guard, bans the client there" refused_at_connect 12842 127.0.30.1
# 2. The first guard enforces it within a second.
enforced=1
for _ in $(seq 1 20); do refused_at_connect 12841 127.0.30.1 && { enforced=0; break; }; sleep 0.05; done
took_ms=$(( ($(date +%s%N) - began) / 1000000 ))
check "the other guard enforces the ban within a second (${took_ms} ms)" bash -c '[ "$1" -eq 0 ] && [ "$2" -le 1000 ]' _ "$enforced" "$took_ms"

# 3. The database goes away mid-attack: both guards go on deciding; nothing is lost.
bash tests/integration/pg.sh stop >/dev/null 2>&1
for i in 1 2 3; do guess 12841 127.0.31.1 "v$i" >/dev/null; done
for i in 1 2 3 4 5 6; do guess 12842 127.0.31.1 "w$i" >/dev/null; done
check "with the database down, a guard bans on its own count" refused_at_connect 12842 127.0.31.1
sleep 1
check "the outage is logged once, not once per attempt" bash -c '[ "$(grep -c "state store: .*decisions go on from memory" "$1")" -eq 1 ]' _ "$WORK/guard1.log"
as_postgres() { runuser -u postgres -- "$@"; }
as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
  -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR" start >/dev/null
written_attempts 127.0.31.1 9
check "after the database is back, every attempt decided during the outage is written ($count of 9)" [ "$count" -eq 9 ]
bans=$(psql "$PG_URL" -Atc "SELECT count(*) FROM bans WHERE key = '127.0.31.1'" 2>/dev/null)
check "and the ban decided during the outage too" [ "${bans:-0}" -ge 1 ]

# 4. A restarted guard gets its bans, and the alerts it raised, back from the database.
kill "$GUARD1"; wait "$GUARD1" 2>/dev/null
restarted_ms=$(( $(date +%s%N) / 1000000 ))
"$BIN" run --config "$WORK/guard1.yaml" >>"$WORK/guard1.log" 2>&1 &
PIDS+=($!)
wait_port 12841
check "a restarted guard enforces the cluster's bans at once" refused_at_connect 12841 127.0.31.1
wait_port 12851
alerts=$(curl -s -H "Authorization: Bearer $(cat "$WORK/admin-token")" http://127.0.0.1:12851/api/alerts)
check "and lists the attack-volume alert it raised before the restart (read from PostgreSQL)" python3 -c '
import json, sys, datetime
alerts = json.loads(sys.argv[1])["alerts"]
before = [a for a in alerts if a["kind"] == "attack_volume"
          and datetime.datetime.fromisoformat(a["time"].replace("Z", "+00:00")).timestamp() * 1000 < int(sys.argv[2])]
sys.exit(0 if before else 1)' "$alerts" "$restarted_ms"
# 5. Trusted networks are the cluster's too: one added on the first guard lets the banned
# client in on the second within a second; removed on the second, the first bans it again.
check "before: the second guard refuses the banned client" refused_at_connect 12842 127.0.31.1
"$BIN" trusted add 127.0.31.0/24 --comment "branch office" --config "$WORK/guard1.yaml" >"$WORK/trusted-add.txt" 2>&1
check "trusted add on the first guard lets the banned client in on the second within 2 s" within 2000 let_in 12842 127.0.31.1
out=$("$BIN" trusted list --config "$WORK/guard2.yaml" 2>&1)
check "the second guard lists it, with its comment" bash -c 'grep -Eq "^127\.0\.31\.0/24 +api .*branch office" <<<"$1"' _ "$out"
check "the second guard logs the change" grep -q "cluster: trusted network added.*: 127.0.31.0/24" "$WORK/guard2.log"
"$BIN" trusted remove 127.0.31.0/24 --config "$WORK/guard2.yaml" >"$WORK/trusted-remove.txt" 2>&1
check "trusted remove on the second guard: the first refuses the banned client again within 2 s" within 2000 refused_at_connect 12841 127.0.31.1
# 6. The database stops answering: every PostgreSQL process is stopped (SIGSTOP), so the
# connections stay open and nothing comes back. Decisions go on; a request that needs the
# database fails after state.timeout (3 s here) instead of hanging; nothing is lost.
postmaster=$(head -1 "$PG_DIR/data/postmaster.pid")
PG_STOPPED="$postmaster $(pgrep -P "$postmaster" | tr '\n' ' ')"
kill -STOP $PG_STOPPED
for i in 1 2 3 4 5 6; do guess 12841 127.0.33.1 "h$i" >/dev/null; done
check "with the database not answering, a guard still bans on its own count" refused_at_connect 12841 127.0.33.1
out=$("$BIN" trusted add 127.0.34.0/24 --config "$WORK/guard1.yaml" 2>&1); status=$?
check "trusted add then fails with the reason (503, state.timeout) instead of hanging" \
  bash -c '[ "$1" -ne 0 ] && grep -q "503" <<<"$2" && grep -q "no answer within 3s (state.timeout)" <<<"$2"' _ "$status" "$out"
check "the stalled database is logged, naming state.timeout" grep -q "no answer within 3s (state.timeout)" "$WORK/guard1.log"
kill -CONT $PG_STOPPED
PG_STOPPED=""
written_attempts 127.0.33.1 6
check "once it answers again, every attempt decided meanwhile is written ($count of 6)" [ "$count" -eq 6 ]
out=$("$BIN" trusted list --config "$WORK/guard1.yaml" 2>&1)
check "and the failed trusted add changed nothing" bash -c '! grep -q "127.0.34.0/24" <<<"$1"' _ "$out"
out=$("$BIN" db status --config "$WORK/guard1.yaml" 2>&1)
check "db status reads the PostgreSQL state" bash -c 'grep -q "schema version: 2 of 2" <<<"$1" && grep -Eq "bans in force: +[2-9]" <<<"$1"' _ "$out"
psql "$PG_URL" -Atc "SELECT * FROM attempts" -c "SELECT * FROM bans" -c "SELECT * FROM alerts" >"$WORK/database.txt" 2>&1
check "no password in any log, event or database row" bash -c '[ -s "$1" ] && ! grep -q "wrong\|d3Jvbmc" "$@"' _ "$WORK/database.txt" "$WORK"/guard*.log "$WORK"/events*.jsonl
check "no admin token in any log, event or database row" bash -c '! grep -qF "$1" "${@:2}"' _ "$(cat "$WORK/admin-token")" "$WORK/database.txt" "$WORK"/guard*.log "$WORK"/events*.jsonl

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
