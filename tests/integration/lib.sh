# The integration scripts' shared prologue and assertions. Sourced first:
#   . "$(dirname "$0")/lib.sh"
#   suite_begin NAME [--no-deps] [--private]
#   ... check NAME CMD..., expect_match NAME "$text" REGEX, start_guard ..., wait_for ...
#   suite_end
# A check made of several conditions is one eval'd string of the predicates has, lacks and
# count_is (check NAME eval 'has "$out" X && lacks "$out" Y'), each saying why when it is false.
# Wait for the condition (wait_for, wait_port, start_guard's readiness), not for a time; a
# sleep that stays lets time pass on purpose (a "no ban yet", a ban running out) and says so.
#
# suite_begin goes to the repository root (ROOT), installs the Debian packages
# (scripts/install-deps.sh; --no-deps leaves that out), picks the binary (BIN: SMTPGUARD_BIN,
# else .build/debug/smtpguard, built when missing), makes the run's folder (WORK, a mktemp under
# /tmp, mode 0755 so that Postfix's and Dovecot's users reach a lab inside it; --private leaves
# it 0700) and sets an exit trap that stops every process started with start_bg/start_guard,
# runs what at_exit was given (in order), and removes WORK unless a check failed, the script
# exits non-zero, or KEEP_WORK is set (then it says where the logs are).
# suite_end prints the "N passed, N failed" line CI reads and exits with its status.
passed=0
failed=0
SUITE=${SUITE:-integration}
SG_PIDS=()       # started by start_bg / start_guard; stopped at exit
SG_AT_EXIT=()    # command strings run at exit, after the processes are stopped
SG_BEFORE_STOP=()  # … and before

suite_begin() {  # suite_begin NAME [--no-deps] [--private]: see above
  local deps=yes private=no
  SUITE=$1
  shift
  while [ $# -gt 0 ]; do
    case $1 in
      --no-deps) deps=no ;;
      --private) private=yes ;;
      *) echo "$SUITE: suite_begin: unknown option $1"; exit 2 ;;
    esac
    shift
  done
  cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
  ROOT=$(pwd)
  if [ "$deps" = yes ]; then bash scripts/install-deps.sh || { echo "$SUITE: cannot install the peers"; exit 1; }; fi
  BIN="${SMTPGUARD_BIN:-$ROOT/.build/debug/smtpguard}"
  [ -x "$BIN" ] || swift build --product smtpguard >/dev/null || { echo "$SUITE: build failed"; exit 1; }
  WORK=$(mktemp -d "/tmp/smtpguard-$SUITE.XXXXXX")
  [ "$private" = yes ] || chmod 755 "$WORK"
  trap 'suite_cleanup $?' EXIT
}

at_exit() {  # at_exit [--first] COMMAND-STRING: run (eval'd) at exit, after the started processes are stopped (--first: before); once per string
  local c
  if [ "$1" = --first ]; then SG_BEFORE_STOP+=("$2"); return 0; fi
  for c in "${SG_AT_EXIT[@]}"; do [ "$c" = "$1" ] && return 0; done
  SG_AT_EXIT+=("$1")
}

suite_cleanup() {  # the exit trap: $1 is the script's exit status
  local status=$1 pid c
  [ "$BASHPID" = "$$" ] || return 0  # a subshell that inherited the trap (one just forked by start_bg) leaves it to the script
  for c in "${SG_BEFORE_STOP[@]}"; do eval "$c"; done
  for pid in "${SG_PIDS[@]}"; do stop_pid "$pid" TERM 10 >/dev/null 2>&1; done
  for c in "${SG_AT_EXIT[@]}"; do eval "$c"; done
  [ -n "${WORK:-}" ] || return 0
  if [ "$failed" -gt 0 ] || [ "$status" -ne 0 ] || [ -n "${KEEP_WORK:-}" ]; then
    echo "$SUITE: logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
}

suite_end() {  # the closing line CI reads, and the exit status (0 when nothing failed)
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit $?
}

suite_abort() {  # suite_abort WHAT: a step every later check needs did not happen: FAIL WHAT, then the closing line
  echo "FAIL $1"
  failed=$((failed + 1))
  suite_end
}

# -- checks ------------------------------------------------------------------------------------
check() {  # check NAME CONDITION-COMMAND...: PASS or FAIL, counted; what the condition prints stays in the output
  local name=$1
  shift
  if "$@"; then echo "PASS $name"; passed=$((passed + 1)); else echo "FAIL $name"; failed=$((failed + 1)); fi
}

require() {  # require NAME CONDITION-COMMAND...: a step the checks after it need: silent when it holds, else FAIL NAME (counted)
  local name=$1
  shift
  "$@" && return 0
  echo "FAIL $name"
  failed=$((failed + 1))
  return 1
}

# The predicates behind expect_*, for conditions made of several (check NAME eval '… && …').
# Each says why when it is false, unless SG_QUIET is set (wait_for sets it for all but its last try).
# Options before TEXT go to grep: -E (extended), -F (fixed string), -x (whole line), -i.
sg_grep_options() {  # sets SG_OPTS and SG_SHIFT from the leading grep options of "$@"
  SG_OPTS=()
  SG_SHIFT=0
  while [ $# -gt 2 ]; do
    case $1 in -E | -F | -x | -i | -w) SG_OPTS+=("$1"); SG_SHIFT=$((SG_SHIFT + 1)); shift ;; *) break ;; esac
  done
}
sg_show() {  # sg_show TEXT: its last lines, indented, as the reason's context
  [ -n "${SG_QUIET:-}" ] || tail -n 4 <<<"$1" | sed 's/^/  | /'
}
has() {  # has [GREP-OPTIONS] TEXT REGEX: true when a line of TEXT matches
  sg_grep_options "$@"; shift "$SG_SHIFT"
  grep -q "${SG_OPTS[@]}" -- "$2" <<<"$1" && return 0
  [ -n "${SG_QUIET:-}" ] || { echo "  no line matches: $2"; sg_show "$1"; }
  return 1
}
lacks() {  # lacks [GREP-OPTIONS] TEXT REGEX: true when no line of TEXT matches
  sg_grep_options "$@"; shift "$SG_SHIFT"
  local at
  at=$(grep -n -m1 "${SG_OPTS[@]}" -- "$2" <<<"$1") || return 0
  # Only where: the line (or the pattern) may be a secret that must not reach the output.
  [ -n "${SG_QUIET:-}" ] || echo "  line ${at%%:*} of the text matches what it must not"
  return 1
}
count_is() {  # count_is [GREP-OPTIONS] N TEXT REGEX: true when exactly N lines of TEXT match (N may be ">=K" or "<=K")
  sg_grep_options "$@"; shift "$SG_SHIFT"
  local want=$1 n
  n=$(grep -c "${SG_OPTS[@]}" -- "$3" <<<"$2")
  case $want in
    ">="*) [ "$n" -ge "${want#>=}" ] && return 0 ;;
    "<="*) [ "$n" -le "${want#<=}" ] && return 0 ;;
    *) [ "$n" -eq "$want" ] && return 0 ;;
  esac
  [ -n "${SG_QUIET:-}" ] || { echo "  $n lines match $3, not $want"; sg_show "$2"; }
  return 1
}
expect_match() {  # expect_match [GREP-OPTIONS] NAME TEXT REGEX: PASS when a line of TEXT matches REGEX
  local opts=()
  while [[ $1 == -[EFxiw] ]]; do opts+=("$1"); shift; done
  check "$1" has "${opts[@]}" "$2" "$3"
}
expect_no_match() {  # expect_no_match [GREP-OPTIONS] NAME TEXT REGEX: PASS when no line of TEXT matches REGEX
  local opts=()
  while [[ $1 == -[EFxiw] ]]; do opts+=("$1"); shift; done
  check "$1" lacks "${opts[@]}" "$2" "$3"
}
expect_count() {  # expect_count [GREP-OPTIONS] NAME N TEXT REGEX: PASS when N lines of TEXT match REGEX (N, ">=K", "<=K")
  local opts=()
  while [[ $1 == -[EFxiw] ]]; do opts+=("$1"); shift; done
  check "$1" count_is "${opts[@]}" "$2" "$3" "$4"
}

# -- waiting -----------------------------------------------------------------------------------
events() {  # events FILE FIELD=VALUE...: how many events (JSON lines) of FILE have all these
  # fields (a list field, e.g. reasons, when it holds VALUE)
  python3 -c '
import json, sys
wanted = [a.split("=", 1) for a in sys.argv[2:]]
def has(event, key, value):
    field = event.get(key)
    return value in field if isinstance(field, list) else str(field) == value
n = 0
try:
    for line in open(sys.argv[1]):
        event = json.loads(line)
        n += all(has(event, k, v) for k, v in wanted)
except FileNotFoundError:
    pass
print(n)' "$@"
}
wait_for() {  # wait_for SECONDS COMMAND...: true once COMMAND succeeds (tried every 0.1 s, and once more at the end)
  local deadline=$((SECONDS + $1))
  shift
  while [ $SECONDS -lt $deadline ]; do SG_QUIET=1 "$@" && return 0; sleep 0.1; done
  "$@"
}

port_open() {  # port_open HOST PORT: something accepts TCP connections there
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}
wait_port() {  # wait_port [HOST] PORT: true once HOST (default 127.0.0.1):PORT accepts (10 s at most)
  local host=127.0.0.1
  [ $# -lt 2 ] || { host=$1; shift; }
  wait_for 10 port_open "$host" "$1"
}

# -- processes ---------------------------------------------------------------------------------
start_bg() {  # start_bg LOG COMMAND...: COMMAND in the background, its output appended to LOG; its pid in STARTED_PID, stopped at exit
  local log=$1
  shift
  # exec: the pid is COMMAND's own (for its signals), not a subshell's that would run our exit trap
  (trap - EXIT; exec "$@") >>"$log" 2>&1 &
  STARTED_PID=$!
  SG_PIDS+=("$STARTED_PID")
}

await_start() {  # await_start PID LOG SECONDS CONDITION...: true once CONDITION holds, within SECONDS, while PID lives; else says which, with LOG's tail
  local pid=$1 log=$2 seconds=$3 deadline
  shift 3
  deadline=$((SECONDS + seconds))
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null
      echo "  it exited ($?) before it was ready; the end of $log:"
      break
    fi
    SG_QUIET=1 "$@" && return 0
    if [ $SECONDS -ge "$deadline" ]; then echo "  not ready within $seconds s; the end of $log:"; break; fi
    sleep 0.1
  done
  tail -n 15 "$log" 2>/dev/null | sed 's/^/  | /'
  return 1
}

sg_ports_open() { local p; for p in "$@"; do port_open 127.0.0.1 "$p" || return 1; done; }

# start_guard [-s SUBCOMMAND] [-p PORT]... [-r READY] [-x PREFIX] NAME CONFIG [ARGS...]
#   `smtpguard SUBCOMMAND --config CONFIG ARGS` (SUBCOMMAND run unless -s: watch, policy …) in the
#   background, its output appended to $WORK/NAME.log, started through PREFIX when given (words,
#   e.g. "ip netns exec ns1"; it must exec the binary so that the pid is the guard's). Ready when
#   each -p PORT of 127.0.0.1 accepts and the -r READY command string (eval'd) succeeds, 10 s at
#   most (START_TIMEOUT); the pid is in STARTED_PID and stopped at exit. A guard that dies or is
#   not ready is a FAIL naming NAME, with the end of its log; start_guard then returns 1.
start_guard() {
  local OPTIND opt sub=run ports=() ready="" prefix=() name config log
  while getopts "s:p:r:x:" opt; do
    case $opt in
      s) sub=$OPTARG ;;
      p) ports+=("$OPTARG") ;;
      r) ready=$OPTARG ;;
      x) read -r -a prefix <<<"$OPTARG" ;;
      *) return 2 ;;
    esac
  done
  shift $((OPTIND - 1))
  name=$1 config=$2
  shift 2
  log="$WORK/$name.log"
  start_bg "$log" "${prefix[@]}" "$BIN" "$sub" --config "$config" "$@"
  require "smtpguard $sub ($name) started" await_start "$STARTED_PID" "$log" "${START_TIMEOUT:-10}" \
    eval 'sg_ports_open "${ports[@]}" && eval "${ready:-true}"'
}

stop_pid() {  # stop_pid PID [SIGNAL] [SECONDS]: SIGNAL (TERM), then KILL after SECONDS (10); returns its exit status
  local pid=$1 signal=${2:-TERM} seconds=${3:-10} i kept=()
  [ -n "$pid" ] || return 0
  for i in "${SG_PIDS[@]}"; do [ "$i" = "$pid" ] || kept+=("$i"); done
  SG_PIDS=("${kept[@]}")
  kill -"$signal" "$pid" 2>/dev/null
  wait_for "$seconds" eval '! kill -0 "$pid" 2>/dev/null' || kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

# -- clients -----------------------------------------------------------------------------------
connect_from() {  # connect_from ADDR PORT [HOST]: swaks from ADDR to HOST (127.0.0.1):PORT, quitting after the greeting; its transcript
  timeout 30 swaks --server "${3:-127.0.0.1}:$2" --local-interface "$1" --quit-after CONNECT 2>&1
}

start_lab() {  # start_lab [LOG]: tests/integration/lab.sh start (LAB_DIR …), its variables (lab.sh env), stopped at exit; false with the log shown
  local log=${1:-$WORK/lab-start.log}
  at_exit "LAB_DIR='$LAB_DIR' bash tests/integration/lab.sh stop >/dev/null 2>&1"
  bash tests/integration/lab.sh start >"$log" 2>&1 || { cat "$log"; return 1; }
  eval "$(bash tests/integration/lab.sh env)"
}

# -- the leak sweeps ---------------------------------------------------------------------------
# auth_secrets MECH USER PASSWORD prints what a client sends for one login,
# as KIND<TAB>LABEL<TAB>SECRET lines: KIND "wire" is what MECH puts on the wire (PLAIN: the
# payload, base64 of \0USER\0PASSWORD; LOGIN: its two lines, base64 of USER and of PASSWORD),
# "clear" the password itself (left out when it is the username, which is logged by design),
# "other" the other mechanism's forms (never sent: a guard that re-encoded them and logged
# that). LABEL names the secret without showing it. The base64 forms lose their "=" padding,
# so that a copy written without it is found too.
auth_secrets() {
  local mech=$1 user=$2 password=$3 plain user64 password64
  plain=$(printf '\0%s\0%s' "$user" "$password" | base64 -w0); plain=${plain%%=*}
  user64=$(printf '%s' "$user" | base64 -w0); user64=${user64%%=*}
  password64=$(printf '%s' "$password" | base64 -w0); password64=${password64%%=*}
  if [ -n "$password" ] && [ "$password" != "$user" ]; then printf 'clear\t%s: the password in clear\t%s\n' "$user" "$password"; fi
  case $mech in
    PLAIN)
      printf 'wire\t%s: the AUTH PLAIN payload\t%s\n' "$user" "$plain"
      printf 'other\t%s: the password as a LOGIN line\t%s\n' "$user" "$password64" ;;
    LOGIN)
      printf 'wire\t%s: the AUTH LOGIN username line\t%s\n' "$user" "$user64"
      printf 'wire\t%s: the AUTH LOGIN password line\t%s\n' "$user" "$password64"
      printf 'other\t%s: the password as a PLAIN payload\t%s\n' "$user" "$plain" ;;
    *)
      printf 'other\t%s: the password as a PLAIN payload\t%s\n' "$user" "$plain"
      printf 'other\t%s: the password as a LOGIN line\t%s\n' "$user" "$password64" ;;
  esac
}

leak_sweep() {  # leak_sweep SECRETS FILE...: true when no secret of SECRETS is in any FILE; names each one found (by its label) and each FILE missing or empty
  local secrets=$1 kind label secret file clean=0
  shift
  for file in "$@"; do [ -s "$file" ] || { echo "  nothing to sweep: $file is missing or empty"; clean=1; }; done
  while IFS=$'\t' read -r kind label secret; do
    for file in "$@"; do
      if grep -qaF -- "$secret" "$file" 2>/dev/null; then echo "  leaked: $label ($kind), in $file"; clean=1; fi
    done
  done <"$secrets"
  return "$clean"
}

all_found() {  # all_found SECRETS KIND FILE...: the sweep's positive control: true when SECRETS has secrets of KIND and each is in the FILEs; names the missing ones
  local secrets=$1 want=$2 kind label secret count=0 missing=0
  shift 2
  while IFS=$'\t' read -r kind label secret; do
    [ "$kind" = "$want" ] || continue
    count=$((count + 1))
    grep -qaF -- "$secret" "$@" 2>/dev/null || { echo "  not found: $label"; missing=1; }
  done <"$secrets"
  [ "$count" -gt 0 ] && [ "$missing" -eq 0 ]
}

every_username_in() {  # every_username_in SECRETS FILE FORMAT: the positive control of a dump: true when FILE has, for each username of SECRETS, the text `printf FORMAT USERNAME` (its row); names the missing ones
  local user count=0 missing=0
  for user in $(cut -f2 "$1" | cut -d: -f1 | sort -u); do
    count=$((count + 1))
    grep -qaF -- "$(printf "$3" "$user")" "$2" || { echo "  no row for $user"; missing=1; }
  done
  [ "$count" -gt 0 ] && [ "$missing" -eq 0 ]
}
