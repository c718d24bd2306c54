#!/usr/bin/env bash
# Several guards on one PostgreSQL database (tests/integration/pg.sh, a throw-away cluster on
# loopback), in front of scripts/smtp-stub.py (every password is wrong), driven by swaks:
# a ban decided by one guard is enforced by the other within a second; a guessing run split
# over both is banned at the same total as on one; the database stopped and started again
# mid-attack loses nothing; a network trusted or no longer trusted on one guard is so on the
# other at its next poll (checked within 2 s, swaks included); a database that stops answering (SIGSTOP) holds nothing up past
# state.timeout and loses nothing; a restarted guard lists the alerts raised before (from the
# database); `smtpguard db status` and `db migrate` for PostgreSQL. The guesses go in as AUTH
# PLAIN and AUTH LOGIN through both guards (logging at debug level), each with its own
# password, and none of them leaks: no clear password, PLAIN payload or LOGIN line (base64 of
# the username, of the password) in the events, the guards' logs or the database rows
# (pg_dump --data-only) — and the same sweep over what the clients sent (swaks' transcripts)
# finds every one of them, so a sweep that looks for the wrong strings fails.
#
#   tests/integration/cluster.sh          (root; prints "N passed, N failed")
set -uo pipefail
. "$(dirname "$0")/lib.sh"
suite_begin cluster --no-deps
export PG_DIR="$WORK/pg" PG_PORT=15433
PG_STOPPED=""
at_exit --first '[ -z "$PG_STOPPED" ] || kill -CONT $PG_STOPPED 2>/dev/null'
at_exit 'bash tests/integration/pg.sh stop >/dev/null 2>&1'

bash tests/integration/pg.sh start >"$WORK/pg-start.log" 2>&1 || { cat "$WORK/pg-start.log"; suite_abort "the PostgreSQL cluster started"; }
eval "$(bash tests/integration/pg.sh env)"
start_bg "$WORK/stub.log" python3 scripts/smtp-stub.py 127.0.0.1:12529
require "the SMTP stub started" await_start "$STARTED_PID" "$WORK/stub.log" 10 port_open 127.0.0.1 12529

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
start_guard -p 12841 -p 12851 guard1 "$WORK/guard1.yaml" --log-level debug
GUARD1=$STARTED_PID
start_guard -p 12842 -p 12852 guard2 "$WORK/guard2.yaml" --log-level debug

guess() {  # guess PORT FROM USER [MECH]: one wrong password, by AUTH PLAIN (the default) or LOGIN; what it
  # sends goes to secrets.tsv (auth_secrets), the command line and swaks' transcript to clients.log
  local mech=${4:-PLAIN} password="Wr0ng-for-$3"
  auth_secrets "$mech" "$3" "$password" >>"$WORK/secrets.tsv"
  echo "swaks --auth $mech --auth-user $3 --auth-password $password" >>"$WORK/clients.log"
  timeout 20 swaks --server "127.0.0.1:$1" --local-interface "$2" --auth "$mech" --auth-user "$3" --auth-password "$password" \
    --quit-after AUTH --timeout 10 2>&1 | tee -a "$WORK/clients.log"
}
refused_at_connect() {  # refused_at_connect PORT FROM (swaks exits non-zero on a 554 greeting)
  has "$(connect_from "$2" "$1")" "554 5.7.1"
}
attempts_written() {  # attempts_written CLIENT N: sets count to the attempts of CLIENT in the database; true when N or more
  count=$(psql "$PG_URL" -Atc "SELECT count(*) FROM attempts WHERE client = '$1'" 2>/dev/null || echo 0)
  [ "$count" -ge "$2" ]
}
written_attempts() {  # written_attempts CLIENT N: sets count to the attempts of CLIENT in the database, waiting up to 10 s for N
  wait_for 10 attempts_written "$1" "$2"
}
let_in() {  # let_in PORT FROM: greeted with 220
  has "$(connect_from "$2" "$1")" "220 guard"
}
within() {  # within MS COMMAND…: polls COMMAND until it succeeds; true when that took at most MS (swaks' start-up included)
  local limit=$1 began=$(date +%s%N)
  shift
  for _ in $(seq 1 100); do
    SG_QUIET=1 "$@" && [ $(( ($(date +%s%N) - began) / 1000000 )) -le "$limit" ] && return 0
    [ $(( ($(date +%s%N) - began) / 1000000 )) -gt "$limit" ] && return 1
    sleep 0.05
  done
  return 1
}

# 1. A run of guesses split over both guards: 3 on the first, 3 on the second: banned at the
# 6th failure in all, as on one guard (the limit is 5). AUTH PLAIN on the first, LOGIN on the second.
for i in 1 2 3; do guess 12841 127.0.30.1 "u$i" >/dev/null; done
# The second guard counts the first's attempts once they are in the database, at its next read
# of them (every 200 ms): the three written, then two such reads' time.
written_attempts 127.0.30.1 3
sleep 0.4
for i in 4 5; do guess 12842 127.0.30.1 "login$i" LOGIN >/dev/null; done
expect_no_match "after 5 failures spread over two guards, no ban yet" "$(cat "$WORK/events1.jsonl" "$WORK/events2.jsonl")" '"event":"ban"'
guess 12842 127.0.30.1 u6 >/dev/null
began=$(date +%s%N)
check "the 6th failure, on the second guard, bans the client there" refused_at_connect 12842 127.0.30.1
# 2. The first guard enforces it within a second.
enforced=1
wait_for 2 refused_at_connect 12841 127.0.30.1 && enforced=0
took_ms=$(( ($(date +%s%N) - began) / 1000000 ))
check "the other guard enforces the ban within a second (${took_ms} ms)" [ "$enforced" -eq 0 -a "$took_ms" -le 1000 ]

# 3. The database goes away mid-attack: both guards go on deciding; nothing is lost.
bash tests/integration/pg.sh stop >/dev/null 2>&1
for i in 1 2 3; do guess 12841 127.0.31.1 "v$i" >/dev/null; done
for i in 1 2 3 4 5 6; do
  if [ $((i % 2)) -eq 0 ]; then guess 12842 127.0.31.1 "login-w$i" LOGIN; else guess 12842 127.0.31.1 "w$i"; fi >/dev/null
done
check "with the database down, a guard bans on its own count" refused_at_connect 12842 127.0.31.1
# "Once": the line is there, and a second lets a per-attempt repeat (or the writer's retries) show.
wait_for 5 grep -q "state store: .*decisions go on from memory" "$WORK/guard1.log"
sleep 1
expect_count "the outage is logged once, not once per attempt" 1 "$(cat "$WORK/guard1.log")" "state store: .*decisions go on from memory"
as_postgres() { runuser -u postgres -- "$@"; }
as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
  -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR" start >/dev/null
written_attempts 127.0.31.1 9
check "after the database is back, every attempt decided during the outage is written ($count of 9)" [ "$count" -eq 9 ]
bans=$(psql "$PG_URL" -Atc "SELECT count(*) FROM bans WHERE key = '127.0.31.1'" 2>/dev/null)
check "and the ban decided during the outage too" [ "${bans:-0}" -ge 1 ]

# 4. A restarted guard gets its bans, and the alerts it raised, back from the database.
stop_pid "$GUARD1"
restarted_ms=$(( $(date +%s%N) / 1000000 ))
start_guard -p 12841 guard1 "$WORK/guard1.yaml" --log-level debug
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
expect_match -E "the second guard lists it, with its comment" "$("$BIN" trusted list --config "$WORK/guard2.yaml" 2>&1)" "^127\.0\.31\.0/24 +api .*branch office"
check "the second guard logs the change" grep -q "cluster: trusted network added.*: 127.0.31.0/24" "$WORK/guard2.log"
"$BIN" trusted remove 127.0.31.0/24 --config "$WORK/guard2.yaml" >"$WORK/trusted-remove.txt" 2>&1
check "trusted remove on the second guard: the first refuses the banned client again within 2 s" within 2000 refused_at_connect 12841 127.0.31.1
# 6. The database stops answering: every PostgreSQL process is stopped (SIGSTOP), so the
# connections stay open and nothing comes back. Decisions go on; a request that needs the
# database fails after state.timeout (3 s here) instead of hanging; nothing is lost.
postmaster=$(head -1 "$PG_DIR/data/postmaster.pid")
PG_STOPPED="$postmaster $(pgrep -P "$postmaster" | tr '\n' ' ')"
kill -STOP $PG_STOPPED
for i in 1 2 3 4 5 6; do
  if [ $((i % 2)) -eq 0 ]; then guess 12841 127.0.33.1 "login-h$i" LOGIN; else guess 12841 127.0.33.1 "h$i"; fi >/dev/null
done
check "with the database not answering, a guard still bans on its own count" refused_at_connect 12841 127.0.33.1
out=$("$BIN" trusted add 127.0.34.0/24 --config "$WORK/guard1.yaml" 2>&1); status=$?
check "trusted add then fails with a 503 instead of hanging" eval '[ "$status" -ne 0 ] && has "$out" 503'
ref=$(grep -o "ref [0-9a-f]*" <<<"$out" | head -1 | cut -d" " -f2)
check "the 503 says only a fixed message and a reference, not the database's text" \
  eval '[ -n "$ref" ] && has "$out" "the state cannot be written, nothing changed" && lacks -i "$out" "state.timeout\|postgres\|select\|insert\|no answer"'
check "the guard's log has the detail under that reference" \
  bash -c 'grep "error.ref=$1" "$2" | grep -q "no answer within 3s (state.timeout)"' _ "$ref" "$WORK/guard1.log"
check "the stalled database is logged, naming state.timeout" grep -q "no answer within 3s (state.timeout)" "$WORK/guard1.log"
kill -CONT $PG_STOPPED
PG_STOPPED=""
written_attempts 127.0.33.1 6
check "once it answers again, every attempt decided meanwhile is written ($count of 6)" [ "$count" -eq 6 ]
expect_no_match "and the failed trusted add changed nothing" "$("$BIN" trusted list --config "$WORK/guard1.yaml" 2>&1)" "127.0.34.0/24"
out=$("$BIN" db status --config "$WORK/guard1.yaml" 2>&1)
check "db status reads the PostgreSQL state" eval 'has "$out" "schema version: 2 of 2" && has -E "$out" "bans in force: +[2-9]"'
# 7. No secret anywhere: every guess's clear password, PLAIN payload and LOGIN lines, swept
# through the events, the guards' debug logs and every table's rows; the same sweep over what
# the clients sent finds them all (its positive control).
"$PG_BIN/pg_dump" --data-only "$PG_URL" >"$WORK/database.sql" 2>&1
sort -u "$WORK/secrets.tsv" -o "$WORK/secrets.tsv"
check "the guesses went through both guards as AUTH PLAIN and as AUTH LOGIN" bash -c \
  'for f in "$@"; do grep -q "\"event\":\"auth\".*\"mechanism\":\"PLAIN\"" "$f" && grep -q "\"event\":\"auth\".*\"mechanism\":\"LOGIN\"" "$f" || exit 1; done' _ "$WORK"/events1.jsonl "$WORK"/events2.jsonl
check "the guards logged at debug level" bash -c 'grep -q " debug smtpguard: .*guard decided" "$1" && grep -q " debug smtpguard: .*guard decided" "$2"' _ "$WORK/guard1.log" "$WORK/guard2.log"
check "the database dump has the attempts of every username the clients sent" every_username_in "$WORK/secrets.tsv" "$WORK/database.sql" '\t%s\t'
check "positive control: the sweep finds every PLAIN payload and LOGIN line in swaks' transcripts" all_found "$WORK/secrets.tsv" wire "$WORK/clients.log"
check "positive control: and every clear password in the clients' command lines" all_found "$WORK/secrets.tsv" clear "$WORK/clients.log"
check "no clear password, PLAIN payload or LOGIN line in any event, debug log or database row" \
  leak_sweep "$WORK/secrets.tsv" "$WORK/database.sql" "$WORK"/guard*.log "$WORK"/events*.jsonl
printf 'token\tthe admin token\t%s\n' "$(cat "$WORK/admin-token")" >"$WORK/token.tsv"
check "no admin token in any debug log, event or database row" leak_sweep "$WORK/token.tsv" "$WORK/database.sql" "$WORK"/guard*.log "$WORK"/events*.jsonl

suite_end
