#!/usr/bin/env bash
# The guess budget, attacked as attackers do, against the real Postfix + Dovecot of the lab
# (tests/integration/lab.sh): at most guard.limits.ip_failures_short (5) password checks of
# one attacking address reach Dovecot, whatever the attacker's parallelism (hydra -t 16, -t 64)
# and whatever the backend answers, with Dovecot's failure delays and auth penalty off and on.
# The guard runs with backend.identity none (the hard case: Dovecot sees every client as the
# guard) and AUTH allowed in clear text. Checks are counted in Dovecot's own log (one
# "Password mismatch" or "unknown user" line per password check).
#
# Also: one persistent address never gets its /24 banned (a neighbour still logs in), while
# five addresses of a /24 do get it banned (the control); a backend that answers 454 after the
# credentials (scripts/smtp-stub.py) gets the address banned after the budget, with no more
# credentials than the budget reaching it; a backend that is down bans nobody; the guard
# raises one backend_penalty alert when Dovecot's penalty hits its own address, and none
# without the penalty.
#
#   tests/integration/budget.sh    (needs root: installs and runs Postfix, Dovecot and hydra)
#
# Environment: SMTPGUARD_BIN; BUDGET_TASKS (hydra task counts without the penalty, default
# "16 64") and BUDGET_PENALTY_TASKS (with it, default "16"); BUDGET_FIGURES=FILE also writes
# the figures table there (scripts/bench-budget.sh). Prints PASS/FAIL lines, the figures, and
# "N passed, N failed".
set -uo pipefail
. "$(dirname "$0")/lib.sh"
suite_begin budget
TASKS="${BUDGET_TASKS:-16 64}"
PENALTY_TASKS="${BUDGET_PENALTY_TASKS:-16}"

export LAB_DIR="$WORK/lab"
PORT=12725
STUB_PORT=12799
GUARD_PID=""
FIGURES="$WORK/figures.md"

# 40 credentials a bot might try; none is a default password, so each failure weighs 1 and
# only the budget (not the default-credential weight) stops the guessing.
for i in $(seq 1 40); do echo "user$i:Guess-$i-xyz"; done >"$WORK/credentials.txt"

lab() {  # lab fast|penalty: (re)start Postfix + Dovecot, Dovecot's failure delays off or on
  local mode=yes
  [ "$1" = penalty ] && mode=no
  LAB_FAST_FAILURES=$mode start_lab "$WORK/lab-$1.log"
}

guard() {  # guard NAME BACKEND: a guard with fresh state in front of BACKEND
  stop_pid "$GUARD_PID"
  GUARD_PID=""
  local dir="$WORK/$1"
  mkdir -p "$dir"
  cat >"$dir/smtpguard.yaml" <<EOF
listen: ["127.0.0.1:$PORT"]
admin:
  listen: ""
auth:
  require_tls: false
backend:
  address: $2
  identity: none
  connect_timeout: 2s
events:
  path: $dir/events.jsonl
state:
  path: $dir/state.db
EOF
  start_guard -p "$PORT" "$1/guard" "$dir/smtpguard.yaml" --log-level debug
  GUARD_PID=$STARTED_PID
  EVENTS="$dir/events.jsonl"
  GUARD_DIR="$dir"
}

dovecot_checks() { grep -cE 'passwd-file\([^)]*\): (Password mismatch|unknown user)' "$LAB_DOVECOT_LOG"; }

hydra_at() {  # hydra_at PORT TASKS OUT [CREDENTIALS]: hydra's smtp module (AUTH LOGIN), bounded
  (cd "$WORK" && timeout 240 hydra -I -C "${4:-$WORK/credentials.txt}" -t "$2" -s "$1" 127.0.0.1 smtp >"$3" 2>&1)
}

echo "| Dovecot | hydra tasks | attempts hydra made | password checks in Dovecot's log | refused as parallel_attempts | client banned |" >"$FIGURES"
echo "|---|---|---|---|---|---|" >>"$FIGURES"

# hydra_run LABEL TASKS SETTLE: a fresh guard, hydra through it, then the checks Dovecot logged.
hydra_run() {
  local label=$1 tasks=$2 settle=$3
  guard "hydra-$label-$tasks" "$LAB_SMTP"
  local before after checks made parallel banned
  before=$(dovecot_checks)
  hydra_at "$PORT" "$tasks" "$GUARD_DIR/hydra.out"
  sleep "$settle"  # deliberately: answers still on their way inside Postfix/Dovecot are logged (a late one would break the budget)
  after=$(dovecot_checks)
  checks=$((after - before))
  made=$(grep -c '"event":"auth"' "$EVENTS")
  parallel=$(grep -c '"parallel_attempts"' "$EVENTS")
  banned=no
  grep -q '"event":"ban","scope":"ip","key":"127.0.0.1"' "$EVENTS" && banned=yes
  echo "| $label | $tasks | $made | $checks | $parallel | $banned |" >>"$FIGURES"
  check "$label: hydra -t $tasks through the guard made $made attempts and landed $checks password checks (at most 5, at least 1)" \
    test "$checks" -le 5 -a "$checks" -ge 1 -a "$made" -gt "$checks"
  # hydra asks for more checks than the budget (454 for the rest) and stops when its list is
  # through: the landing failure that spends the budget bans it.
  check "$label: hydra -t $tasks is banned (it asked for more checks than its budget)" test "$banned" = yes
  HYDRA_CHECKS=$checks
}

# 1. Dovecot's failure delays and penalty off.
lab fast || { echo "0 passed, 1 failed"; exit 1; }
guard warn "$LAB_SMTP"
out=$("$BIN" config check "$GUARD_DIR/smtpguard.yaml" 2>&1)
check "config check warns that backend.identity is none, and still passes the file" \
  eval 'has "$out" "warning: backend.identity: is none" && has "$out" ": valid$"'
check "the guard says so at start" wait_for 5 grep -q "backend.identity: is none" "$GUARD_DIR/guard.log"

# The control: hydra straight at Postfix lands every credential it tries.
before=$(dovecot_checks)
head -n 20 "$WORK/credentials.txt" >"$WORK/credentials-20.txt"
hydra_at "$LAB_SMTP_PORT" 4 "$WORK/hydra-direct.out" "$WORK/credentials-20.txt"
wait_for 5 eval '[ $(($(dovecot_checks) - before)) -ge 20 ]'  # Dovecot's log has the last of them
direct=$(($(dovecot_checks) - before))
echo "| off, no guard (control) | 4 | 20 | $direct | - | - |" >>"$FIGURES"
check "control: hydra -t 4 straight at Postfix lands all 20 of its guesses in Dovecot's log ($direct)" test "$direct" -eq 20

for tasks in $TASKS; do hydra_run off "$tasks" 2; done

# One address, however persistent, does not get its /24 banned: a neighbour logs in.
out=$(timeout 30 swaks --server "127.0.0.1:$PORT" --local-interface 127.0.0.2 --auth PLAIN --auth-user alice \
  --auth-password "$LAB_PASS_ALICE" --quit-after AUTH --timeout 20 2>&1)
expect_match "after hydra from 127.0.0.1, alice from 127.0.0.2 still logs in (235)" "$out" "235 2.7.0"
check "and no prefix was banned" eval '! grep -q "\"scope\":\"prefix\"" "$EVENTS"'
# The control: five addresses of one /24 guessing do get it banned.
for host in 1 2 3 4 5; do python3 tests/integration/guess.py "127.0.5.$host" "127.0.0.1:$PORT" 7 >"$WORK/prefix-$host.out" & done
wait $(jobs -p | grep -v "^$GUARD_PID$") 2>/dev/null
check "control: five guessing addresses of 127.0.5.0/24 get the /24 banned" \
  grep -q '"event":"ban","scope":"prefix","key":"127.0.5.0/24"' "$EVENTS"
expect_match "and a sixth address of it is refused at connect (554)" "$(connect_from 127.0.5.77 "$PORT")" "554 5.7.1 .*Access denied"
check "without Dovecot's penalty no backend_penalty alert was raised" eval '! grep -q "backend_penalty" "$WORK"/*/events.jsonl'

# 2. Dovecot as it ships: failure delays and the auth penalty on. Every attempt comes from
# the guard's address, so Dovecot slows them all and Postfix answers 454 after 10 s.
lab penalty || { echo "$passed passed, $((failed + 1)) failed"; exit 1; }
for tasks in $PENALTY_TASKS; do hydra_run "on (penalty)" "$tasks" 12; done
# Four attackers at once through one guard: the penalty builds up on the guard's address.
guard penalty "$LAB_SMTP"
before=$(dovecot_checks)
for host in 1 2 3 4; do python3 tests/integration/guess.py "127.0.9.$host" "127.0.0.1:$PORT" 8 >"$WORK/penalty-$host.out" & done
wait $(jobs -p | grep -v "^$GUARD_PID$") 2>/dev/null
sleep 12  # deliberately: under the penalty Dovecot answers late (Postfix gives up after 10 s); the late checks are logged too
checks=$(($(dovecot_checks) - before))
echo "| on (penalty), 4 attackers at once | 1 each | $(grep -c '"event":"auth"' "$EVENTS") | $checks (4 attackers) | $(grep -c '"parallel_attempts"' "$EVENTS") | $(grep -c '"event":"ban","scope":"ip"' "$EVENTS") of 4 |" >>"$FIGURES"
check "four attackers under the penalty land at most 4 x 5 checks ($checks)" test "$checks" -le 20
unverified=$(grep -c '"outcome":"unverified","reply":454' "$EVENTS")
check "Postfix's 454 after the credentials are recorded as unverified guesses ($unverified)" test "$unverified" -ge 1
check "every one of the four is banned (454s count against the budget)" \
  bash -c 'for h in 1 2 3 4; do grep -q "\"event\":\"ban\",\"scope\":\"ip\",\"key\":\"127.0.9.$h\"" "$1" || exit 1; done' _ "$EVENTS"
check "no username was locked by the 454s" bash -c '! grep -q "\"scope\":\"username\"" "$1"' _ "$EVENTS"
check "one backend_penalty alert names the cause and the fixes" \
  bash -c '[ "$(grep -c "\"kind\":\"backend_penalty\"" "$1")" -eq 1 ] && grep "\"kind\":\"backend_penalty\"" "$1" | grep -q "rate-limiting the guard.s own address.*xclient.*proxy-v2"' _ "$EVENTS"

# 3. A scripted backend: first down (nothing listens), then answering 454 to every password.
guard stub "127.0.0.1:$STUB_PORT"
python3 tests/integration/guess.py 127.0.10.1 "127.0.0.1:$PORT" 8 >"$WORK/down.out"
# The guard greets and takes EHLO itself; the AUTH it lets through cannot reach the backend.
expect_count "with the backend down every AUTH is told 421 (the backend link cannot open)" 8 "$(cat "$WORK/down.out")" "^421$"
check "and the events record them as abandoned, not as failures" \
  bash -c '[ "$(grep "\"client_ip\":\"127.0.10.1\"" "$1" | grep -c "\"outcome\":\"abandoned\"")" -eq 8 ] && ! grep "\"client_ip\":\"127.0.10.1\"" "$1" | grep -q "\"outcome\":\"failure\""' _ "$EVENTS"
start_bg "$WORK/stub.log" python3 scripts/smtp-stub.py "127.0.0.1:$STUB_PORT" --auth-reply "454 4.7.0 Temporary authentication failure" --count "$WORK/stub-checks"
require "the SMTP stub started" await_start "$STARTED_PID" "$WORK/stub.log" 10 port_open 127.0.0.1 "$STUB_PORT"
python3 tests/integration/guess.py 127.0.10.2 "127.0.0.1:$PORT" 10 >"$WORK/stub.out"
stub_checks=$(wc -l <"$WORK/stub-checks" 2>/dev/null || echo 0)
check "a backend answering 454 after AUTH got exactly 5 sets of credentials ($stub_checks)" test "$stub_checks" -eq 5
check "and the address is banned after the budget" grep -q '"event":"ban","scope":"ip","key":"127.0.10.2"' "$EVENTS"
check "its later connections are refused at connect (554)" grep -q "^connect-554$" "$WORK/stub.out"
check "the outage banned nobody: 127.0.10.1 has no ban" eval '! grep -q "\"key\":\"127.0.10.1\"" "$EVENTS"'
out=$(python3 tests/integration/guess.py 127.0.10.1 "127.0.0.1:$PORT" 1)
check "and, the backend back, 127.0.10.1 reaches AUTH again (454 from the backend, not a ban)" test "$out" = 454

# Nothing secret in any log (at debug level) or event: hydra's LOGIN halves (the username and
# the password, each base64) and the clear password, guess.py's PLAIN payloads, base64 and clear.
leak=0
for i in 1 7 16 40; do
  for secret in "Guess-$i-xyz" "$(printf 'Guess-%s-xyz' "$i" | base64)" "$(printf 'user%s' "$i" | base64)"; do
    grep -rqF -- "$secret" "$WORK"/*/events.jsonl "$WORK"/*/guard.log && leak=1
  done
done
for secret in "Guess-3-127-0-9-1" "$(printf '\0127-0-9-1-user3\0Guess-3-127-0-9-1' | base64)"; do
  grep -rqF -- "$secret" "$WORK"/*/events.jsonl "$WORK"/*/guard.log && leak=1
done
check "no password or AUTH payload in any event or guard log" test "$leak" -eq 0
check "control for that sweep: the same files hold those attempts (their usernames) and debug lines" \
  bash -c 'grep -qF "\"username\":\"user16\"" "$1"/hydra-off-*/events.jsonl && grep -q "debug" "$1"/hydra-off-*/guard.log' _ "$WORK"

echo
echo "Guess budget figures (guard.limits.ip_failures_short 5, backend.identity none):"
cat "$FIGURES"
[ -n "${BUDGET_FIGURES:-}" ] && cp "$FIGURES" "$BUDGET_FIGURES"
suite_end
