#!/usr/bin/env bash
# SMTPGuard integration lab: a real Postfix (smtpd) backed by Dovecot SASL, on loopback only,
# living entirely in a private directory so it neither needs nor touches /etc/postfix,
# /etc/dovecot, /var/spool/postfix or /run/dovecot.
#
#   lab.sh start    (re)create the configuration, start Dovecot (auth only) and Postfix, and
#                   wait until the SMTP port answers 220; on failure print the log tails, exit 1
#   lab.sh stop     stop both daemons and wait until they are gone
#   lab.sh status   report whether each daemon runs and the port answers; exit 0 only if all up
#   lab.sh env      print shell assignments for other scripts:  eval "$(tests/integration/lab.sh env)"
#
# What the lab provides:
#   * Postfix smtpd on 127.0.0.1:$LAB_SMTP_PORT (default 10025), offering STARTTLS (optional)
#     and AUTH PLAIN LOGIN CRAM-MD5 through Dovecot, with or without TLS; relaying only for SASL-authenticated clients;
#     XCLIENT allowed from 127.0.0.0/8; every accepted message goes to the discard transport.
#     Postfix's own rate/connection/error limits are lifted so tests can hammer it from 127.x.
#   * Dovecot with no mail protocols, only the auth service, users from a passwd-file:
#     alice / Correct-Horse-9-Battery, bob / Tr0ub4dor&3-xyz, admin / admin (a weak default).
#     The per-failure reply delay (auth_failure_delay) and the anvil auth penalty are disabled
#     so a run of failed logins is fast.
#   * A test CA ($LAB_DIR/tls/ca.pem) and certificates it signed for mx.guard.test, localhost
#     and 127.0.0.1: postfix.pem (Postfix's), guard.pem and guard-renewed.pem (for the guard).
#   * Logs: $LAB_DIR/postfix.log (Postfix maillog_file via postlogd) and $LAB_DIR/dovecot.log.
#
# Environment: LAB_DIR (default /tmp/smtpguard-lab), LAB_SMTP_PORT (default 10025),
# LAB_POSTFIX_EXTRA and LAB_DOVECOT_EXTRA (lines appended to main.cf and dovecot.conf),
# LAB_WEAK_ADMIN=no (no admin/admin account) and LAB_FAST_FAILURES=no (Dovecot's own failure
# delays and anvil penalty left on, as on a real server).
# Needs root and the Debian packages postfix and dovecot-core (scripts/install-deps.sh).
set -euo pipefail

LAB_DIR="${LAB_DIR:-/tmp/smtpguard-lab}"
LAB_SMTP_HOST=127.0.0.1
LAB_SMTP_PORT="${LAB_SMTP_PORT:-10025}"

# Layout inside the lab directory.
MARKER="$LAB_DIR/.smtpguard-lab"          # proves the directory is ours before we wipe it
PF_CONF="$LAB_DIR/postfix"                # Postfix config_directory (main.cf, master.cf)
PF_QUEUE="$LAB_DIR/postfix-spool"         # Postfix queue_directory
PF_DATA="$LAB_DIR/postfix-data"           # Postfix data_directory
PF_LOG="$LAB_DIR/postfix.log"
PF_PIDFILE="$PF_QUEUE/pid/master.pid"
DC_DIR="$LAB_DIR/dovecot"
DC_CONF="$DC_DIR/dovecot.conf"
TLS_DIR="$LAB_DIR/tls"                    # a test CA and the lab's certificates (openssl)
DC_USERS="$DC_DIR/users"
DC_BASE="$DC_DIR/run"                     # Dovecot base_dir (sockets, master.pid)
DC_STATE="$DC_DIR/state"                  # Dovecot state_dir
DC_LOG="$LAB_DIR/dovecot.log"
DC_PIDFILE="$DC_BASE/master.pid"
DC_AUTH_SOCKET="$DC_BASE/auth-postfix"    # the socket Postfix's smtpd uses for SASL

# Test accounts (name password). admin/admin is the weak default credential.
USERS=(
  "alice Correct-Horse-9-Battery"
  "bob Tr0ub4dor&3-xyz"
  "admin admin"
)
[ "${LAB_WEAK_ADMIN:-yes}" != no ] || unset 'USERS[2]'

die() { echo "lab: $*" >&2; exit 1; }
log() { echo "lab: $*" >&2; }

# pid_alive PIDFILE: true when the pid file names a live process.
pid_alive() {
  local pid
  [ -s "$1" ] || return 1
  pid="$(tr -dc '0-9' <"$1")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# daemon_pids: every process of this lab, found by identity rather than by name: Postfix
# processes run with their working directory in the queue directory and Dovecot processes in
# base_dir (or below it), so this also finds orphans whose master already exited, e.g. a
# Dovecot auth process that lingers while Postfix's smtpd still holds a connection to it.
daemon_pids() {
  local q b proc cwd
  q="$(realpath -m "$PF_QUEUE")"
  b="$(realpath -m "$DC_BASE")"
  find /proc -mindepth 2 -maxdepth 2 -name cwd -printf '%h %l\n' 2>/dev/null |
    while read -r proc cwd; do
      case "$cwd/" in "$q"/* | "$b"/*) [ "${proc#/proc/}" = "$$" ] || echo "${proc#/proc/}" ;; esac
    done
}

# wait_no_daemons TENTHS: wait (bounded) until no lab process is left.
wait_no_daemons() {
  local tries="$1"
  while [ -n "$(daemon_pids)" ]; do
    tries=$((tries - 1))
    [ "$tries" -gt 0 ] || return 1
    sleep 0.1
  done
}

# smtp_banner: read the greeting from the SMTP port (bash /dev/tcp, 2 s budget); print it.
smtp_banner() {
  local line=""
  if exec 3<>"/dev/tcp/$LAB_SMTP_HOST/$LAB_SMTP_PORT"; then
    IFS= read -r -t 2 line <&3 || true
    printf 'QUIT\r\n' >&3 2>/dev/null || true
    exec 3<&- 3>&-
  fi 2>/dev/null
  printf '%s' "${line%$'\r'}"
}

smtp_ready() { case "$(smtp_banner)" in 220*) return 0 ;; *) return 1 ;; esac; }

# port_open: true when anything accepts connections on the SMTP port.
port_open() {
  { exec 3<>"/dev/tcp/$LAB_SMTP_HOST/$LAB_SMTP_PORT" && exec 3<&- 3>&-; } 2>/dev/null
}

show_logs() {
  local f
  for f in "$PF_LOG" "$DC_LOG"; do
    echo "----- tail of $f -----" >&2
    if [ -f "$f" ]; then tail -n 30 "$f" >&2; else echo "(missing)" >&2; fi
  done
}

write_postfix_config() {
  mkdir -p "$PF_CONF" "$PF_QUEUE" "$PF_DATA"
  chown root:root "$PF_CONF" "$PF_QUEUE"
  chown postfix:postfix "$PF_DATA"
  cat >"$PF_CONF/main.cf" <<EOF
# Generated by tests/integration/lab.sh: SMTPGuard lab Postfix. Do not edit; rewritten on start.
compatibility_level = 3.6
config_directory = $PF_CONF
queue_directory = $PF_QUEUE
data_directory = $PF_DATA
mail_owner = postfix
setgid_group = postdrop

# Logging: no syslog here, so postlogd writes to a file in the lab directory.
maillog_file_prefixes = /var, /dev/stdout, $LAB_DIR
maillog_file = $PF_LOG

# Identity and network: loopback only, no DNS.
myhostname = smtpguard.test
mydomain = smtpguard.test
myorigin = \$myhostname
inet_interfaces = $LAB_SMTP_HOST
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
biff = no
append_dot_mydomain = no

# Nothing is local and nothing is delivered: every accepted message is discarded.
mydestination =
relay_domains =
alias_maps =
alias_database =
local_recipient_maps =
default_transport = discard:smtpguard lab
local_transport = discard:smtpguard lab
relay_transport = discard:smtpguard lab
virtual_transport = discard:smtpguard lab

# STARTTLS offered; SASL through Dovecot offered with or without TLS (the guard decides).
smtpd_tls_security_level = may
smtpd_tls_cert_file = $TLS_DIR/postfix.pem
smtpd_tls_key_file = $TLS_DIR/postfix.key
smtpd_tls_loglevel = 1
smtpd_tls_auth_only = no
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = $DC_AUTH_SOCKET
smtpd_sasl_security_options = noanonymous
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions =

# The guard forwards the real client identity with XCLIENT.
smtpd_authorized_xclient_hosts = 127.0.0.0/8

# Lift limits that would get in the way of tests making many quick connections/failures.
smtpd_client_event_limit_exceptions = 127.0.0.0/8
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
smtpd_client_auth_rate_limit = 0
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_junk_command_limit = 1000
default_process_limit = 200
EOF
  # Extra main.cf lines a test asks for (policy service, restrictions …).
  [ -z "${LAB_POSTFIX_EXTRA:-}" ] || printf '%s\n' "$LAB_POSTFIX_EXTRA" >>"$PF_CONF/main.cf"

  # Minimal master.cf: chroot off everywhere ("n" in the 5th column).
  cat >"$PF_CONF/master.cf" <<EOF
# Generated by tests/integration/lab.sh. service type private unpriv chroot wakeup maxproc command
$LAB_SMTP_HOST:$LAB_SMTP_PORT inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

# fast_failures [anvil]: the dovecot.conf lines that make failed logins fast (empty when
# LAB_FAST_FAILURES=no).
fast_failures() {
  [ "${LAB_FAST_FAILURES:-yes}" != no ] || return 0
  if [ "${1:-}" = anvil ]; then
    cat <<'CONF'
# 3. The anvil auth penalty: per remote IP (Postfix passes the client's, or the XCLIENT, address),
#    Dovecot delays every later request, good passwords included, by 2, 4, 8, then 15 s.
#    login_trusted_networks does not exempt Postfix (it only matters for Dovecot's own login
#    processes; tested). Documented switch: mode 0 means the listener is not created, the auth
#    process cannot reach it and turns the penalty off.
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
CONF
  else
    cat <<'CONF'
# Failure delays, all three switched off so a run of failed logins is fast
# (measured: 30 failures take ~1.3 s instead of 15 s with only auth_failure_delay = 0, and minutes
# with Dovecot's defaults, where Postfix also gives up after 10 s and answers 454).
# 1. auth_failure_delay = 0. In Dovecot 2.3.19 this does not remove the delay: failed requests
#    still sit in a queue that is flushed every 500 ms.
auth_failure_delay = 0
# 2. The "nodelay" extra field does skip that queue (and with it the penalty update), but a
#    passdb's fields are rolled back when its lookup fails. So a first passdb that authenticates
#    nobody (noauthenticate) sets nodelay=yes, the fields are snapshotted, and the real passdb's
#    failure rolls back to that snapshot, keeping nodelay. Success still needs the passwd-file.
passdb {
  driver = static
  args = noauthenticate nodelay=yes
}
CONF
  fi
}

write_dovecot_config() {
  mkdir -p "$DC_DIR" "$DC_STATE"
  local entry
  : >"$DC_USERS"
  for entry in "${USERS[@]}"; do
    # {PLAIN} so that CRAM-MD5 (which needs the clear-text secret) works too.
    printf '%s:{PLAIN}%s::::::\n' "${entry%% *}" "${entry#* }" >>"$DC_USERS"
  done
  chown root:dovecot "$DC_USERS"
  chmod 0640 "$DC_USERS"

  cat >"$DC_CONF" <<EOF
# Generated by tests/integration/lab.sh: SMTPGuard lab Dovecot, SASL auth service only.
instance_name = smtpguard-lab
base_dir = $DC_BASE
state_dir = $DC_STATE
protocols =
ssl = no
log_path = $DC_LOG
info_log_path = $DC_LOG
shutdown_clients = yes

disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5
auth_verbose = yes

$(fast_failures)
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DC_USERS
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent allow_all_users=yes
}

service auth {
  # The socket Postfix uses (relative to base_dir, i.e. $DC_AUTH_SOCKET).
  unix_listener auth-postfix {
    mode = 0660
    user = postfix
    group = postfix
  }
}

$(fast_failures anvil)
EOF
  # Extra dovecot.conf lines a test asks for (auth policy …).
  [ -z "${LAB_DOVECOT_EXTRA:-}" ] || printf '%s\n' "$LAB_DOVECOT_EXTRA" >>"$DC_CONF"
}

# A throw-away CA and three certificates signed by it (ECDSA P-256, valid 30 days).
write_certificates() {
  mkdir -p "$TLS_DIR"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.pem" -subj "/CN=SMTPGuard lab CA" 2>/dev/null
  local name
  for name in postfix guard guard-renewed; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout "$TLS_DIR/$name.key" -out "$TLS_DIR/$name.csr" -subj "/CN=$name.mx.guard.test" 2>/dev/null
    printf 'subjectAltName=DNS:mx.guard.test,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$TLS_DIR/ext.cnf"
    openssl x509 -req -in "$TLS_DIR/$name.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca.key" -CAcreateserial \
      -out "$TLS_DIR/$name.pem" -days 30 -extfile "$TLS_DIR/ext.cnf" 2>/dev/null
  done
  rm -f "$TLS_DIR"/*.csr "$TLS_DIR/ext.cnf"
  chmod 0644 "$TLS_DIR"/*.pem "$TLS_DIR"/*.key
}

prepare() {
  if [ -d "$LAB_DIR" ] && [ ! -e "$MARKER" ] && [ -n "$(ls -A "$LAB_DIR")" ]; then
    die "$LAB_DIR exists, is not empty and is not a lab directory; refusing to touch it"
  fi
  # Start from a clean slate: old queue, state, sockets and logs go away.
  rm -rf "$PF_CONF" "$PF_QUEUE" "$PF_DATA" "$DC_DIR" "$PF_LOG" "$DC_LOG" "$TLS_DIR"
  mkdir -p "$LAB_DIR"
  chown root:root "$LAB_DIR"
  chmod 0755 "$LAB_DIR"        # postfix and dovecot users must traverse it
  touch "$MARKER"
  write_certificates
  write_postfix_config
  write_dovecot_config
}

cmd_stop() {
  # Postfix first: its smtpd processes keep connections to Dovecot's auth process open.
  if pid_alive "$PF_PIDFILE"; then postfix -c "$PF_CONF" stop >/dev/null 2>&1 || true; fi
  if pid_alive "$DC_PIDFILE"; then dovecot -c "$DC_CONF" stop >/dev/null 2>&1 || true; fi
  # Normally everything is gone within ~2 s (Dovecot's log and stats processes exit last);
  # stragglers get SIGTERM, then SIGKILL.
  if ! wait_no_daemons 100; then
    log "lab processes still running after 10 s, sending SIGTERM: $(daemon_pids | tr '\n' ' ')"
    daemon_pids | xargs -r kill -TERM 2>/dev/null || true
    if ! wait_no_daemons 30; then
      log "sending SIGKILL: $(daemon_pids | tr '\n' ' ')"
      daemon_pids | xargs -r kill -KILL 2>/dev/null || true
      wait_no_daemons 30 || die "could not stop lab processes: $(daemon_pids | tr '\n' ' ')"
    fi
  fi
}

cmd_start() {
  [ "$(id -u)" -eq 0 ] || die "must run as root"
  command -v postfix >/dev/null && command -v dovecot >/dev/null \
    || die "postfix and dovecot are not installed (run scripts/install-deps.sh)"

  cmd_stop
  if port_open; then
    die "$LAB_SMTP_HOST:$LAB_SMTP_PORT is already in use by another program (set LAB_SMTP_PORT)"
  fi
  prepare

  # Dovecot first: smtpd needs its auth socket.
  if ! dovecot -c "$DC_CONF" >"$LAB_DIR/dovecot.start.out" 2>&1; then
    cat "$LAB_DIR/dovecot.start.out" >&2
    show_logs
    die "dovecot failed to start"
  fi
  local deadline=$((SECONDS + 10))
  while [ ! -S "$DC_AUTH_SOCKET" ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      show_logs; cmd_stop; die "dovecot auth socket $DC_AUTH_SOCKET did not appear within 10 s"
    fi
    sleep 0.1
  done

  # Postfix: "postfix start" runs "postfix check" which creates the queue directories.
  if ! postfix -c "$PF_CONF" start >"$LAB_DIR/postfix.start.out" 2>&1; then
    cat "$LAB_DIR/postfix.start.out" >&2
    show_logs; cmd_stop
    die "postfix failed to start"
  fi
  deadline=$((SECONDS + 10))   # each probe takes at most 2 s, so this ends within ~12 s
  until smtp_ready; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      cat "$LAB_DIR/postfix.start.out" >&2
      show_logs; cmd_stop
      die "no 220 greeting on $LAB_SMTP_HOST:$LAB_SMTP_PORT within 10 s"
    fi
    sleep 0.1
  done
  log "up: smtp $LAB_SMTP_HOST:$LAB_SMTP_PORT ($(smtp_banner)), logs in $LAB_DIR"
}

cmd_status() {
  local rc=0
  if pid_alive "$DC_PIDFILE"; then echo "dovecot: running (pid $(tr -dc '0-9' <"$DC_PIDFILE"))"
  else echo "dovecot: stopped"; rc=1; fi
  if pid_alive "$PF_PIDFILE"; then echo "postfix: running (pid $(tr -dc '0-9' <"$PF_PIDFILE"))"
  else echo "postfix: stopped"; rc=1; fi
  local banner; banner="$(smtp_banner)"
  if [ "${banner:0:3}" = 220 ]; then echo "smtp $LAB_SMTP_HOST:$LAB_SMTP_PORT: $banner"
  else echo "smtp $LAB_SMTP_HOST:$LAB_SMTP_PORT: not answering"; rc=1; fi
  return "$rc"
}

cmd_env() {
  local entry name upper
  printf 'LAB_DIR=%q\n' "$LAB_DIR"
  printf 'LAB_SMTP=%q\n' "$LAB_SMTP_HOST:$LAB_SMTP_PORT"
  printf 'LAB_SMTP_HOST=%q\n' "$LAB_SMTP_HOST"
  printf 'LAB_SMTP_PORT=%q\n' "$LAB_SMTP_PORT"
  printf 'LAB_POSTFIX_LOG=%q\n' "$PF_LOG"
  printf 'LAB_DOVECOT_LOG=%q\n' "$DC_LOG"
  printf 'LAB_POSTFIX_CONFIG_DIR=%q\n' "$PF_CONF"
  printf 'LAB_DOVECOT_CONF=%q\n' "$DC_CONF"
  for entry in "${USERS[@]}"; do
    name="${entry%% *}"
    upper="$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]')"
    printf 'LAB_USER_%s=%q\n' "$upper" "$name"
    printf 'LAB_PASS_%s=%q\n' "$upper" "${entry#* }"
  done
  printf 'LAB_RCPT=%q\n' "bob@example.net"
  printf 'LAB_TLS_DIR=%q\n' "$TLS_DIR"
}

case "${1:-}" in
  start)  cmd_start ;;
  stop)   cmd_stop ;;
  status) cmd_status ;;
  env)    cmd_env ;;
  *) echo "usage: $0 {start|stop|status|env}" >&2; exit 2 ;;
esac
