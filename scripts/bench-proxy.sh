#!/usr/bin/env bash
# bench-proxy.sh: what a proxy in front of the mail server costs, in complete SMTP sessions.
#
# Measures, in one run and against Postfix's smtp-sink as the final server:
#   direct   smtp-source -> smtp-sink                      (127.0.0.1:12525)
#   haproxy  smtp-source -> HAProxy, mode tcp -> smtp-sink (127.0.0.1:12526)
#   guard    smtp-source -> SMTPGuard         -> smtp-sink (127.0.0.1:12527)
#            (the guard with its state, admin API and event log off, run in a mktemp folder:
#            nothing is written into the repository)
#   guard-before  the same, with another build of the guard (SMTPGUARD_BEFORE_BIN; 12528),
#            so that a change is measured side by side with the code before it, same run
#
# Throughput: smtp-source opens one TCP connection per message (HELO, MAIL, RCPT, DATA, ".",
# QUIT, close; it only reuses connections with -d, which is not given), so messages/s is
# complete sessions/s. Per set-up: one untimed warm-up, then BENCH_RUNS timed runs of
# BENCH_MESSAGES messages at BENCH_CONCURRENCY parallel sessions; the runs of the set-ups are
# interleaved (round 1 of each, round 2 of each, ...) so a drifting machine hurts all alike.
# The table shows the median. A run counts as failed when smtp-source reports a warning or
# fatal error, exits non-zero or times out, or when smtp-sink's own counters did not see
# exactly BENCH_MESSAGES new sessions and messages.
#
# Latency: smtp-source does not measure it. When the project's load generator exists
# (SMTP_LOAD_BIN, default .build/release/smtp-load) it is run once per set-up and its p50/p99
# session latency goes into the table; otherwise the columns stay empty. Independently of it,
# the note column gives the mean session time by Little's law (concurrency / sessions per s).
#
# Run from anywhere (needs root only if packages are missing; do not run two at once):
#   scripts/bench-proxy.sh
#   BENCH_MESSAGES=2000 BENCH_RUNS=1 scripts/bench-proxy.sh        # quick check
#   BENCH_SETUPS="direct haproxy" scripts/bench-proxy.sh           # without the guard
# Environment (defaults in brackets):
#   BENCH_MESSAGES [20000]  BENCH_CONCURRENCY [50]  BENCH_RUNS [3]  BENCH_SIZE [1024] payload bytes
#   BENCH_WARMUP [2000] warm-up messages   BENCH_TIMEOUT [300] seconds allowed per smtp-source run
#   BENCH_SETUPS ["direct haproxy guard"]  BENCH_OUT [/tmp/bench-proxy.json] raw numbers as JSON
#   SMTPGUARD_BEFORE_BIN [unset]: when set, the set-up guard-before is added (after guard)
#   SMTPGUARD_BIN [.build/release/smtpguard]; built with `swift build -c release --product
#     smtpguard` only when it is missing and the default path is used.
#   SMTP_LOAD_BIN [.build/release/smtp-load]  LATENCY_SESSIONS [5000]  LATENCY_CONCURRENCY [20]
# Output: a Markdown report on stdout (machine facts, commands, table); progress on stderr.
# Ports (loopback only; clear of the Postfix lab on 10025 and the guard default 2525):
# 12525 sink, 12526 HAProxy, 12527 guard. Everything started here is stopped on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
invocation="$0${*:+ $*}"

messages=${BENCH_MESSAGES:-20000}
concurrency=${BENCH_CONCURRENCY:-50}
runs=${BENCH_RUNS:-3}
size=${BENCH_SIZE:-1024}
warmup=${BENCH_WARMUP:-2000}
run_timeout=${BENCH_TIMEOUT:-300}
setups=${BENCH_SETUPS:-direct haproxy guard}
before_bin=${SMTPGUARD_BEFORE_BIN:-}
if [ -n "$before_bin" ]; then
  [ -x "$before_bin" ] || { echo "bench-proxy: SMTPGUARD_BEFORE_BIN=$before_bin is not an executable" >&2; exit 1; }
  [[ " $setups " == *" guard-before "* ]] || setups="$setups guard-before"
fi
out_json=${BENCH_OUT:-/tmp/bench-proxy.json}
default_guard_bin=.build/release/smtpguard
guard_bin=${SMTPGUARD_BIN:-$default_guard_bin}
load_bin=${SMTP_LOAD_BIN:-.build/release/smtp-load}
latency_sessions=${LATENCY_SESSIONS:-5000}
latency_concurrency=${LATENCY_CONCURRENCY:-20}

host=127.0.0.1
sink_port=12525
haproxy_port=12526
guard_port=12527
before_port=12528

for v in messages concurrency runs size warmup run_timeout latency_sessions latency_concurrency; do
  [[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || { echo "bench-proxy: $v must be a positive integer (got '${!v}')" >&2; exit 2; }
done
for s in $setups; do
  case $s in direct | haproxy | guard | guard-before) ;; *) echo "bench-proxy: unknown set-up '$s' in BENCH_SETUPS" >&2; exit 2 ;; esac
done

log() { echo "bench-proxy: $*" >&2; }

# --- dependencies -------------------------------------------------------------------------
scripts/install-deps.sh
find_tool() { # smtp-source/smtp-sink live in /usr/sbin on Debian, elsewhere on other systems
  local name=$1 dir
  for dir in /usr/sbin /usr/lib/postfix/sbin /usr/libexec/postfix /usr/local/sbin; do
    [ -x "$dir/$name" ] && { echo "$dir/$name"; return 0; }
  done
  command -v "$name" || { echo "bench-proxy: $name not found (package postfix)" >&2; return 1; }
}
smtp_source=$(find_tool smtp-source)
smtp_sink=$(find_tool smtp-sink)
haproxy_bin=$(find_tool haproxy)

if [[ " $setups " == *" guard "* && ! -x $guard_bin ]]; then
  if [ "$guard_bin" = "$default_guard_bin" ]; then
    log "building $guard_bin (swift build -c release --product smtpguard)"
    swift build -c release --product smtpguard >&2
  else
    echo "bench-proxy: SMTPGUARD_BIN=$guard_bin is not an executable" >&2
    exit 1
  fi
fi

if [ ! -x "$load_bin" ] && [ "$load_bin" = ".build/release/smtp-load" ]; then
  log "building $load_bin (swift build -c release --product smtp-load)"
  swift build -c release --product smtp-load >&2
fi

# --- processes and clean-up ---------------------------------------------------------------
tmp=$(mktemp -d /tmp/bench-proxy.XXXXXX)
chmod 755 "$tmp" # smtp-sink drops to nobody; the logs stay ours
pids=()
cleanup() {
  local pid i
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Is something listening on PORT? ss does not connect; the fallback does (one short session).
listening() {
  if command -v ss >/dev/null; then
    ss -Hltn "sport = :$1" | grep -q .
  else
    timeout 1 bash -c "exec 3<>/dev/tcp/$host/$1" 2>/dev/null
  fi
}

# Waits (bounded) until PID listens on PORT; fails if the process died or time ran out.
wait_listen() {
  local port=$1 pid=$2 what=$3 logfile=$4 i
  for ((i = 0; i < 150; i++)); do # 15 s
    listening "$port" && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "bench-proxy: $what exited before listening on $port; its output:" >&2
      tail -n 20 "$logfile" >&2 || true
      return 1
    fi
    sleep 0.1
  done
  echo "bench-proxy: $what did not listen on $host:$port within 15 s; its output:" >&2
  tail -n 20 "$logfile" >&2 || true
  return 1
}

for port in $sink_port $haproxy_port $guard_port; do
  if listening "$port"; then echo "bench-proxy: port $port is already in use" >&2; exit 1; fi
done

# Process CPU time (user+system) in seconds, from /proc.
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# smtp-sink: -c prints running counters (sess=N quit=N mesg=N) that we read to verify each run;
# -m raises its concurrency cap (default 256) far above the load; 1000 is the listen backlog;
# as root it has to drop privileges with -u.
sink_flags=(-c -m 2000)
if [ "$(id -u)" -eq 0 ]; then sink_flags+=(-u nobody); fi
sink_cmd=("$smtp_sink" "${sink_flags[@]}" "$host:$sink_port" 1000)
"${sink_cmd[@]}" >"$tmp/sink.out" 2>"$tmp/sink.err" &
sink_pid=$!
pids+=("$sink_pid")
wait_listen "$sink_port" "$sink_pid" smtp-sink "$tmp/sink.err"

# The sink's last counter line, as "SESSIONS MESSAGES"; the counters only ever grow.
sink_counts() {
  tail -c 300 "$tmp/sink.out" | tr '\r' '\n' | awk '/sess=/ { l = $0 } END {
    n = split(l, f, /[ =]/); s = 0; m = 0
    for (i = 1; i < n; i++) { if (f[i] == "sess") s = f[i + 1]; if (f[i] == "mesg") m = f[i + 1] }
    print s + 0, m + 0 }'
}

declare -A port_of=([direct]=$sink_port [haproxy]=$haproxy_port [guard]=$guard_port [guard-before]=$before_port)
declare -A pid_of=()
declare -A cmd_of=([direct]="(none)")

if [[ " $setups " == *" haproxy "* ]]; then
  # Plain TCP relay: no SMTP parsing, no logging, two threads like the 2-core machine.
  # maxconn far above the load, but each connection costs two descriptors of the FD limit.
  hap_maxconn=$((concurrency * 4 > 4096 ? concurrency * 4 : 4096))
  cat >"$tmp/haproxy.cfg" <<EOF
global
    nbthread 2
    maxconn $hap_maxconn
    pidfile $tmp/haproxy.pid

defaults
    mode tcp
    maxconn $hap_maxconn
    timeout connect 5s
    timeout client 60s
    timeout server 60s

frontend smtp_in
    bind $host:$haproxy_port
    default_backend smtp_sink

backend smtp_sink
    server sink $host:$sink_port
EOF
  "$haproxy_bin" -db -f "$tmp/haproxy.cfg" >"$tmp/haproxy.log" 2>&1 &
  pid_of[haproxy]=$!
  pids+=("${pid_of[haproxy]}")
  cmd_of[haproxy]="$haproxy_bin -db -f haproxy.cfg (mode tcp, nbthread 2, maxconn $hap_maxconn)"
  wait_listen "$haproxy_port" "${pid_of[haproxy]}" haproxy "$tmp/haproxy.log"
fi

# start_guard NAME BINARY PORT: one guard in front of the sink, as the set-up NAME.
start_guard() {
  local name=$1 bin=$2 port=$3 abs
  abs=$(realpath "$bin")
  local cmd=("$abs" run --config "$tmp/guard.yaml" --listen "$host:$port"
    --backend "$host:$sink_port" --events "" --state "" --log-level warning)
  (cd "$tmp" && exec "${cmd[@]}") >"$tmp/$name.log" 2>&1 &
  pid_of[$name]=$!
  pids+=("${pid_of[$name]}")
  cmd_of[$name]="$bin run --config guard.yaml --listen $host:$port --backend $host:$sink_port --events \"\" --state \"\" --log-level warning (guard.yaml: admin.listen \"\", state.path \"\", events.path \"\"; working folder a mktemp directory)"
  wait_listen "$port" "${pid_of[$name]}" smtpguard "$tmp/$name.log"
}

if [[ " $setups " == *" guard "* || " $setups " == *" guard-before "* ]]; then
  # The default limit of 20 connections per client address would refuse the benchmark itself.
  # State (SQLite), admin API and event log off: this measures the proxy, and nothing is
  # written into the repository (the defaults would put ./smtpguard.db and
  # ./smtpguard-admin.token in the working folder). The guard also runs in $tmp, so any
  # relative default lands there.
  cat >"$tmp/guard.yaml" <<EOF
smtp:
  max_connections: 10000
  max_connections_per_ip: 10000
admin:
  listen: ""
state:
  path: ""
events:
  path: ""
EOF
  [[ " $setups " == *" guard "* ]] && start_guard guard "$guard_bin" "$guard_port"
  [[ " $setups " == *" guard-before "* ]] && start_guard guard-before "$before_bin" "$before_port"
fi

# --- one smtp-source run ------------------------------------------------------------------
# -A: a bad reply is a warning and the run goes on (so failures can be counted, not just the
#     first); no -d: one connection per message; -M: fixed HELO name and addresses.
source_flags=(-A -s "$concurrency" -l "$size" -M bench.test -f sender@bench.test -t rcpt@bench.test)

# Sets r_seconds, r_rate (sessions/s), r_errors, r_detail (what went wrong) and r_cpu_us (the
# proxy's CPU time per session in µs, 0 for direct).
run_source() {
  local setup=$1 count=$2 port=${port_of[$1]} errfile="$tmp/source.err"
  local t0 t1 rc=0 i s0 m0 s1 m1 e0 e1 c0=0 c1=0
  read -r s0 m0 < <(sink_counts)
  e0=$(wc -l <"$tmp/sink.err")
  [ -n "${pid_of[$setup]:-}" ] && c0=$(cpu_seconds "${pid_of[$setup]}")
  t0=$(date +%s.%N)
  timeout "$run_timeout" "$smtp_source" "${source_flags[@]}" -m "$count" "$host:$port" \
    >/dev/null 2>"$errfile" || rc=$?
  t1=$(date +%s.%N)
  [ -n "${pid_of[$setup]:-}" ] && c1=$(cpu_seconds "${pid_of[$setup]}")
  # The sink counts a session when it ends, a moment after smtp-source saw 221; wait for it.
  for ((i = 0; i < 30; i++)); do
    read -r s1 m1 < <(sink_counts)
    [ $((s1 - s0)) -ge "$count" ] && [ $((m1 - m0)) -ge "$count" ] && break
    sleep 0.1
  done
  e1=$(wc -l <"$tmp/sink.err")
  r_seconds=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  r_rate=$(awk -v n="$count" -v t="$r_seconds" 'BEGIN { printf "%.0f", (t > 0 ? n / t : 0) }')
  r_cpu_us=$(awk -v a="$c0" -v b="$c1" -v n="$count" 'BEGIN { printf "%.0f", (b - a) * 1e6 / n }')
  r_errors=$(grep -cE 'warning:|fatal:' "$errfile" || true)
  r_detail=""
  [ "$rc" -eq 124 ] && r_detail+="timed out after ${run_timeout}s; "
  [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && r_detail+="smtp-source exit $rc; "
  [ "$r_errors" -gt 0 ] && r_detail+="$r_errors smtp-source errors (first: $(grep -m1 -E 'warning:|fatal:' "$errfile" | sed 's/^[^ ]*smtp-source: //')); "
  [ "$e1" -gt "$e0" ] && r_detail+="smtp-sink logged $((e1 - e0)) lines (first: $(sed -n "$((e0 + 1))p" "$tmp/sink.err")); "
  [ $((m1 - m0)) -ne "$count" ] && r_detail+="sink got $((m1 - m0)) of $count messages; "
  [ $((s1 - s0)) -ne "$count" ] && r_detail+="sink saw $((s1 - s0)) sessions for $count messages; "
  if [ -n "$r_detail" ] && [ "$r_errors" -eq 0 ]; then r_errors=1; fi
  r_detail=${r_detail%; }
  return 0
}

median() { tr ' ' '\n' | { grep . || true; } | sort -g | awk '{ v[NR] = $1 } END {
  if (NR == 0) { print 0; exit }
  if (NR % 2) printf "%.0f\n", v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# --- measurements -------------------------------------------------------------------------
declare -A rates=() errors=() details=() cpus=() runs_json=()
for s in $setups; do
  log "warm-up $s: $warmup messages"
  run_source "$s" "$warmup"
  if [ -n "$r_detail" ]; then log "warm-up $s: $r_detail"; fi
  rates[$s]="" errors[$s]=0 details[$s]="" cpus[$s]="" runs_json[$s]=""
done

for ((r = 1; r <= runs; r++)); do
  for s in $setups; do
    run_source "$s" "$messages"
    log "run $r/$runs $s: $messages sessions in ${r_seconds}s = $r_rate/s, errors $r_errors${r_detail:+ ($r_detail)}"
    rates[$s]+=" $r_rate"
    cpus[$s]+=" $r_cpu_us"
    errors[$s]=$((errors[$s] + r_errors))
    if [ -n "$r_detail" ]; then details[$s]+="run $r: $r_detail; "; fi
    runs_json[$s]+="${runs_json[$s]:+, }{\"seconds\": $r_seconds, \"sessions_per_second\": $r_rate, \"errors\": $r_errors, \"proxy_cpu_us_per_session\": $r_cpu_us}"
    sleep 1 # let the last connections close
  done
done

# --- latency (the project's load generator) -----------------------------------------------
declare -A p50=() p99=() lat_errors=() lat_json=()
latency_note=""
json_number() { grep -oE "\"$1\"[[:space:]]*:[[:space:]]*-?[0-9.eE+-]+" | sed -E -n '1s/.*:[[:space:]]*//p'; }
if [ -x "$load_bin" ]; then
  for s in $setups; do
    log "latency $s: $load_bin --sessions $latency_sessions --concurrency $latency_concurrency"
    lat_out=$(timeout "$run_timeout" "$load_bin" --target "$host:${port_of[$s]}" \
      --sessions "$latency_sessions" --concurrency "$latency_concurrency" --json 2>"$tmp/load.err") || {
      log "latency $s: smtp-load failed: $(tail -n 3 "$tmp/load.err")"
      lat_json[$s]=null
      continue
    }
    p50[$s]=$(json_number p50_ms <<<"$lat_out")
    p99[$s]=$(json_number p99_ms <<<"$lat_out")
    lat_errors[$s]=$(json_number errors <<<"$lat_out")
    lat_json[$s]=$(tr -d '\n' <<<"$lat_out" | grep -oE '\{.*\}' || echo null)
  done
  latency_note="Latency: \`$load_bin --target 127.0.0.1:PORT --sessions $latency_sessions --concurrency $latency_concurrency --json\`, one run per set-up after the throughput runs."
else
  echo "latency: smtp-load not built" >&2
  latency_note="latency: smtp-load not built ($load_bin missing)"
fi

# --- report -------------------------------------------------------------------------------
# The invocation with the environment settings that shaped it.
command_line=$(for v in BENCH_MESSAGES BENCH_CONCURRENCY BENCH_RUNS BENCH_SIZE BENCH_WARMUP BENCH_TIMEOUT \
  BENCH_SETUPS BENCH_OUT SMTPGUARD_BIN SMTPGUARD_BEFORE_BIN SMTP_LOAD_BIN LATENCY_SESSIONS LATENCY_CONCURRENCY; do
  if [ -n "${!v:-}" ]; then printf '%s=%q ' "$v" "${!v}"; fi
done)$invocation
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cores=$(nproc)
postfix_version=$(postconf -d mail_version 2>/dev/null | sed 's/.*= //')
haproxy_version=$("$haproxy_bin" -v 2>/dev/null | sed -n 1p) # not head: SIGPIPE + pipefail
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)

declare -A med=()
for s in $setups; do med[$s]=$(median <<<"${rates[$s]}"); done
direct_rate=${med[direct]:-}

cat <<EOF
## Proxy overhead: complete SMTP sessions through smtp-sink

- Date: $now; kernel $(uname -r); CPU: ${cpu_model:-unknown}, \`nproc\` = $cores (smtp-source, the proxy and smtp-sink all share these cores)
- Postfix $postfix_version (smtp-source/smtp-sink), $haproxy_version
- Command: \`$command_line\`
- Load: \`$smtp_source ${source_flags[*]} -m $messages 127.0.0.1:PORT\` — one TCP connection per message (HELO, MAIL, RCPT, DATA, QUIT); $warmup-message warm-up, then $runs interleaved runs of $messages sessions, $concurrency in parallel, ${size}-byte payload
- Sink: \`${sink_cmd[*]}\`
$(for s in $setups; do [ "$s" = direct ] || echo "- $s: \`${cmd_of[$s]}\`"; done)
- $latency_note

| set-up | sessions/s (median) | runs | p50 ms | p99 ms | note |
|---|---:|---|---:|---:|---|
EOF
for s in $setups; do
  note=""
  if [ "${errors[$s]}" -gt 0 ]; then note="**ERRORS: ${errors[$s]}** (${details[$s]%; }); "; fi
  if [ -n "$direct_rate" ] && [ "$s" != direct ] && [ "$direct_rate" -gt 0 ]; then
    note+=$(awk -v a="${med[$s]}" -v d="$direct_rate" 'BEGIN { printf "%+.0f%% vs direct; ", (a / d - 1) * 100 }')
  fi
  note+=$(awk -v r="${med[$s]}" -v c="$concurrency" 'BEGIN { if (r > 0) printf "mean session %.1f ms (Little: %d/rate)", c / r * 1000, c }')
  if [ -n "${pid_of[$s]:-}" ]; then
    note+="; proxy CPU $(median <<<"${cpus[$s]}") µs/session"
  fi
  if [ -n "${p50[$s]:-}" ] && [ -n "${p50[direct]:-}" ] && [ "$s" != direct ]; then
    note+=$(awk -v a="${p50[$s]}" -v d="${p50[direct]}" 'BEGIN { printf "; p50 %+.2f ms vs direct", a - d }')
  fi
  if [ "${lat_errors[$s]:-0}" != 0 ]; then note+="; **smtp-load errors: ${lat_errors[$s]}**"; fi
  printf '| %s | %s | %s | %s | %s | %s |\n' "$s" "${med[$s]}" "$(echo ${rates[$s]} | tr ' ' '/')" \
    "${p50[$s]:--}" "${p99[$s]:--}" "$note"
done

# Raw numbers.
{
  printf '{\n  "date": "%s",\n  "nproc": %s,\n  "postfix": "%s",\n  "haproxy": "%s",\n' "$now" "$cores" "$postfix_version" "$haproxy_version"
  printf '  "command": "%s",\n' "$(sed 's/["\\]/\\&/g' <<<"$command_line")"
  printf '  "messages": %s, "concurrency": %s, "runs": %s, "payload_bytes": %s, "warmup": %s,\n' \
    "$messages" "$concurrency" "$runs" "$size" "$warmup"
  printf '  "setups": {'
  sep=""
  for s in $setups; do
    printf '%s\n    "%s": {"port": %s, "median_sessions_per_second": %s, "errors": %s, "runs": [%s], "latency": %s}' \
      "$sep" "$s" "${port_of[$s]}" "${med[$s]}" "${errors[$s]}" "${runs_json[$s]}" "${lat_json[$s]:-null}"
    sep=","
  done
  printf '\n  }\n}\n'
} >"$out_json"
log "raw numbers: $out_json"

total_errors=0
for s in $setups; do total_errors=$((total_errors + errors[$s])); done
[ "$total_errors" -eq 0 ] || { log "$total_errors failed runs or errors, see the table"; exit 1; }
