#!/usr/bin/env bash
# A mail administrator's first install on a stock Debian 12, exactly as README.md tells it
# (issue 21). The recipes are taken from README.md itself: each code block that follows a marker
# `<!-- first-install: NAME -->` is extracted and run (shell blocks) or added to the file it
# names (configuration blocks), so the text and the test cannot drift apart.
#
# Everything happens inside a private mount namespace and a private network namespace
# (unshare --mount --net --uts; only lo, with 127.0.0.1 and ::1, plus a few documentation
# addresses on lo standing in for other hosts): /etc, /var and /usr are overlays whose changes
# go to this run's folder, /run and /dev are its own, so README's paths (/etc/postfix,
# /etc/dovecot, /var/spool/postfix, /etc/smtpguard, /var/lib/smtpguard, /var/log/smtpguard,
# /usr/local/bin, /usr/share/doc …) apply literally and nothing on the host changes. No
# connection leaves the namespace.
#
# The starting point is what a fresh install has: Debian's Postfix and Dovecot files as the
# packages installed them (checked with dpkg --verify), main.cf made the way Postfix's postinst
# makes it for "Internet Site" (main.cf.debian + main.cf.tls + its postconf -e lines), Dovecot's
# stock configuration (PAM passdb, no protocols), a private systemd-journald as Debian 12's only
# log (no rsyslog). The project's units (deploy/*.service) run under the users, groups,
# capabilities and filesystem protections their files give them (tests/integration/unit-run.sh,
# which says which directives it cannot emulate); `systemctl` is a stand-in that starts them
# with it (PID 1 here is not systemd).
#
# What the test does that is not in README, and why:
#   * it plays certbot: a throw-away CA issues mail.example.org's certificate into
#     /etc/letsencrypt/live/mail.example.org/ (and the snake-oil certificate ssl-cert would make);
#   * it plays the site: an account alice (useradd + chpasswd; Dovecot's stock PAM passdb
#     checks it), `smtpd_tls_auth_only = yes` in main.cf as many sites have (the guarded service
#     must override it), the stock submission and submissions services enabled (the recipe must
#     turn them off);
#   * the only substitutions are the ones an administrator must make: every `change-me…` secret
#     becomes a random one (the same everywhere it appears). The hostname and the certificate
#     paths need none: the test host is mail.example.org and certbot's name is the recipe's.
#   * `bash scripts/release.sh` (the build) is not run: dist/smtpguard is SMTPGUARD_BIN.
#
# Checks (PASS/FAIL, each able to fail, each "no" beside a "yes" in the same run):
#   config check passes on the installed configurations and names the key of a planted error;
#   the proxy, the watcher and the policy unit run at once from their shipped configurations,
#   each port of README's plan held by its unit, as the unit's user, groups and capabilities,
#   and the filesystem read-only to them except their directories; swaks logs in through the
#   guard on 587 (STARTTLS, AUTH PLAIN and LOGIN) over IPv4 and IPv6 and sends a message, a
#   wrong password is refused; hydra -t 16 (smtp, STARTTLS) is banned (a ban event, then 554)
#   while the office (trusted) and another address still log in; Dovecot logins (doveadm auth
#   test, as IMAP) reach the guard through README's 2.3 auth-policy snippet; the Postfix policy
#   socket refuses a process outside the group postfix (EACCES) and answers one in it, and
#   Postfix's chrooted smtpd asks it (a banned address gets 421 at connect on port 25, another
#   gets through); logrotate's postrotate and certbot's deploy hook reach the running guard.
#
#   tests/integration/first-install.sh     (root; Debian 12 with scripts/install-deps.sh's packages)
#
# Environment: SMTPGUARD_BIN (default .build/debug/smtpguard; copied at start, so a rebuild
# during the run does not change it), KEEP_WORK=1 keeps the run's folder. Prints PASS/FAIL lines
# and "N passed, N failed"; exits non-zero when a check failed. Bounded: 280 s at most.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
TIME_LIMIT=280

# ------------------------------------------------------------------------------------------
# Outside: prepare, then run the rest in the namespaces.
if [ "${1:-}" != --inside ]; then
  [ "$(id -u)" -eq 0 ] || { echo "first-install: needs root"; exit 1; }
  # The run's folder is kept when the inside fails (its exit status) or KEEP_WORK is set.
  suite_begin first-install
  cp "$BIN" "$WORK/smtpguard"
  "$WORK/smtpguard" --version >"$WORK/version" 2>&1 || true
  echo "first-install: $(cat "$WORK/version"), work folder $WORK"
  timeout --signal=TERM --kill-after=10 "$TIME_LIMIT" \
    unshare --mount --net --uts --propagation private -- bash "$0" --inside "$WORK"
  rc=$?
  [ "$rc" -ne 124 ] || echo "FAIL the run ended within its $TIME_LIMIT s"
  # Whatever is left in the namespace (it only lives while a process does) is ended.
  if [ -s "$WORK/netns" ]; then
    ns=$(cat "$WORK/netns")
    for p in /proc/[0-9]*; do
      [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$ns" ] && kill -KILL "${p#/proc/}" 2>/dev/null
    done
  fi
  exit "$rc"
fi

# ------------------------------------------------------------------------------------------
# Inside the namespaces.
cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)
WORK=$2
LOG="$WORK/log"
mkdir -p "$LOG"
readlink /proc/self/ns/net >"$WORK/netns"
UNITS="$WORK/units"            # the systemctl stand-in's pid files and the units' output
mkdir -p "$UNITS"
JOURNALD_PID=""

PASSWORD="Correct-Horse-9-Battery"     # alice's
ATTACKER=198.51.100.7          # hydra (an address on lo: connections to it come from it)
OFFICE=192.0.2.10              # in the example's guard.trusted_networks (192.0.2.0/24)
BANNED=203.0.113.5             # banned by hand on the policy unit, then tried at Postfix's port 25
EVENTS=/var/log/smtpguard/events.jsonl

note() { echo "first-install: $*"; }
unit_cgroups_empty() {  # no process left in the cgroups Dovecot and Postfix were started in
  local c
  for c in dovecot.service postfix@-.service; do
    [ -z "$(cat "${CGROOT:-/nonexistent}/system.slice/$c/cgroup.procs" 2>/dev/null)" ] || return 1
  done
}
stop_all() {
  local f pid
  for f in "$UNITS"/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f"); kill -TERM "$pid" 2>/dev/null
  done
  for f in "$UNITS"/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    wait_for 10 eval '! kill -0 "$pid" 2>/dev/null' || kill -KILL "$pid" 2>/dev/null
  done
  postfix stop >/dev/null 2>&1
  doveadm stop >/dev/null 2>&1
  # Their cgroups can go once the last of their processes has.
  wait_for 5 unit_cgroups_empty
  rmdir "${CGROOT:-/nonexistent}/system.slice/dovecot.service" "${CGROOT:-/nonexistent}/system.slice/postfix@-.service" 2>/dev/null
  [ -z "$JOURNALD_PID" ] || stop_pid "$JOURNALD_PID" TERM 5
  # What went on, for a failed run: the journal, the events, what the overlays changed.
  journalctl --no-pager -q >"$LOG/journal.txt" 2>/dev/null
  cp -a /var/log/smtpguard "$LOG/var-log-smtpguard" 2>/dev/null
}
finish() {
  stop_all
  suite_end
}
trap finish EXIT
trap 'exit 1' TERM INT

# -- README's blocks -----------------------------------------------------------------------
# block NAME: the code block after `<!-- first-install: NAME -->` in README.md, without its fences.
block() {
  awk -v want="<!-- first-install: $1 -->" '
    $0 == want { found = 1; next }
    found == 1 && /^```/ { found = 2; next }
    found == 2 && /^```/ { exit }
    found == 2 { print }' "$ROOT/README.md"
}
for name in install start postfix-services master.cf dovecot-sasl.conf "sasl main.cf" "proxy yaml" \
  "dovecot-policy yaml" "dovecot-policy 2.3" "dovecot-logging" "postfix-policy yaml" "postfix-policy main.cf" "postfix-policy master.cf"; do
  block "$name" >"$WORK/block-${name// /-}"
  [ -s "$WORK/block-${name// /-}" ] || { echo "FAIL README.md has no block after <!-- first-install: $name -->"; failed=$((failed + 1)); }
done
[ "$failed" -eq 0 ] || exit 1
B() { printf '%s' "$WORK/block-${1// /-}"; }
# run_block NAME: a shell block, run as written, each command stopping it on failure; its
# output goes to the log, never to ours (it may show secrets).
run_block() { (cd "$WORK/src" && PATH="$WORK/shim:$PATH" bash -euo pipefail "$(B "$1")") >"$LOG/block-${1// /-}.log" 2>&1; }

# -- the namespace: network, hostname, filesystem --------------------------------------------
ip link set lo up
for a in $ATTACKER $OFFICE $BANNED; do ip addr add "$a/32" dev lo; done
# A global IPv6 address besides ::1, as any IPv6 host has: getaddrinfo(AI_ADDRCONFIG) does not
# count ::1, and the guard resolves "[::]:587" with it.
ip addr add 2001:db8::25/128 dev lo nodad
hostname mail.example.org
for d in etc var usr; do
  mkdir -p "$WORK/overlay/$d/upper" "$WORK/overlay/$d/work"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$WORK/overlay/$d/upper,workdir=$WORK/overlay/$d/work" "/$d" \
    || { echo "FAIL cannot put an overlay on /$d"; failed=$((failed + 1)); exit 1; }
done
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mkdir -p /run/lock && chmod 1777 /run/lock
hostdev=$(mktemp -d /run/hostdev.XXXXXX)
mount --rbind /dev "$hostdev"
mount -t tmpfs -o mode=0755,nosuid tmpfs /dev
for n in null zero full random urandom tty ptmx; do touch "/dev/$n"; mount --bind "$hostdev/$n" "/dev/$n"; done
mkdir -p /dev/pts /dev/shm && mount --rbind "$hostdev/pts" /dev/pts && mount -t tmpfs -o mode=1777 tmpfs /dev/shm
ln -s /proc/self/fd /dev/fd; ln -s /proc/self/fd/0 /dev/stdin; ln -s /proc/self/fd/1 /dev/stdout; ln -s /proc/self/fd/2 /dev/stderr
ln -s /run/systemd/journal/dev-log /dev/log
umount -l "$hostdev"; rmdir "$hostdev"

# -- a fresh Debian 12: the packages' files, Postfix's "Internet Site", journald ---------------
check "Debian's Postfix and Dovecot files are as the packages installed them (dpkg --verify)" \
  bash -c '[ -z "$(dpkg --verify postfix dovecot-core 2>&1)" ]'
[ ! -e /etc/postfix/main.cf ] || note "the host has an /etc/postfix/main.cf; this run makes a fresh one (in the overlay)"
rm -f /etc/postfix/main.cf
mkdir -p /etc/ssl/private /etc/ssl/certs && chmod 0710 /etc/ssl/private
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=mail.example.org" \
  -keyout /etc/ssl/private/ssl-cert-snakeoil.key -out /etc/ssl/certs/ssl-cert-snakeoil.pem 2>/dev/null
ln -sf /etc/ssl/certs/ssl-cert-snakeoil.pem /etc/dovecot/private/dovecot.pem
ln -sf /etc/ssl/private/ssl-cert-snakeoil.key /etc/dovecot/private/dovecot.key
# Postfix's postinst for "Internet Site", mailname mail.example.org.
cp /usr/share/postfix/main.cf.debian /etc/postfix/main.cf
cat /usr/share/postfix/main.cf.tls >>/etc/postfix/main.cf
echo mail.example.org >/etc/mailname
postconf -e "smtpd_relay_restrictions=permit_mynetworks permit_sasl_authenticated defer_unauth_destination" \
  "myhostname=mail.example.org" "alias_maps=hash:/etc/aliases" "alias_database=hash:/etc/aliases" \
  "myorigin=/etc/mailname" "mydestination=\$myhostname, mail.example.org, localhost.example.org, localhost" \
  "relayhost=" "mynetworks=127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128" "mailbox_size_limit=0" \
  "recipient_delimiter=+" "inet_interfaces=all" "inet_protocols=all"
[ -e /etc/aliases ] || echo "postmaster: root" >/etc/aliases
newaliases
# The site: TLS-only AUTH on its own services, the stock submission services it had enabled.
postconf -e "smtpd_tls_auth_only=yes"
postconf -Me "submission/inet=submission inet n - y - - smtpd" "submissions/inet=submissions inet n - y - - smtpd"
check "control: before the recipe, Postfix's submission and submissions services are on" \
  bash -c 'postconf -M submission/inet | grep -q "^submission" && postconf -M submissions/inet | grep -q "^submissions"'
useradd --no-create-home --shell /usr/sbin/nologin alice && echo "alice:$PASSWORD" | chpasswd

# journald, as on Debian 12 (no rsyslog): Postfix and Dovecot log to syslog, i.e. /dev/log.
JOURNALD=$(ls /usr/lib/systemd/systemd-journald /lib/systemd/systemd-journald 2>/dev/null | head -1)
"$JOURNALD" >"$LOG/journald.log" 2>&1 &
JOURNALD_PID=$!
wait_for 10 test -S /run/systemd/journal/dev-log || note "journald did not start: logs of Postfix and Dovecot are missing"
# As at boot (systemd-tmpfiles-setup after journald): the journal's files to the group systemd-journal.
echo "first-install $$" | systemd-cat -t first-install
wait_for 5 bash -c 'ls /run/log/journal/*/system.journal' >/dev/null 2>&1
systemd-tmpfiles --create --prefix /run/log/journal --prefix /var/log/journal >"$LOG/tmpfiles.log" 2>&1

# certbot's part: a CA of this run, mail.example.org's certificate in certbot's layout.
issue() {  # issue DIR: a new certificate for mail.example.org (+ localhost, 127.0.0.1, ::1) in DIR
  local dir=$1
  mkdir -p "$dir"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/privkey.pem" -out "$dir/req.csr" -subj "/CN=mail.example.org" 2>/dev/null
  printf 'subjectAltName=DNS:mail.example.org,DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\n' >"$dir/ext.cnf"
  openssl x509 -req -in "$dir/req.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial -days 30 -extfile "$dir/ext.cnf" -out "$dir/cert.pem" 2>/dev/null
  cat "$dir/cert.pem" "$WORK/ca.pem" >"$dir/fullchain.pem"
  rm -f "$dir/req.csr" "$dir/ext.cnf"
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=first-install CA" \
  -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
issue /etc/letsencrypt/live/mail.example.org
chmod 0700 /etc/letsencrypt/live

# -- the source folder the administrator installs from, and the systemctl stand-in --------------
mkdir -p "$WORK/src/dist" "$WORK/shim"
cp -a "$ROOT/README.md" "$ROOT/deploy" "$ROOT/examples" "$WORK/src/"
cp "$WORK/smtpguard" "$WORK/src/dist/smtpguard"
cat >"$WORK/shim/systemctl" <<EOF
#!/usr/bin/env bash
# systemctl for this test: units run with tests/integration/unit-run.sh (PID 1 is not systemd).
units=$UNITS
unit_of() { case \$1 in *.service) echo "\$1" ;; *) echo "\$1.service" ;; esac; }
alive() { [ -s "\$units/\$1.pid" ] && kill -0 "\$(cat "\$units/\$1.pid")" 2>/dev/null; }
start() {
  local u=\$1
  alive "\$u" && return 0
  [ -r "/etc/systemd/system/\$u" ] || { echo "Unit \$u not found." >&2; return 5; }
  setsid bash $ROOT/tests/integration/unit-run.sh "/etc/systemd/system/\$u" >>"\$units/\$u.log" 2>&1 </dev/null &
  echo \$! >"\$units/\$u.pid"
}
started() {  # Type=exec: started once the main process has executed ExecStart= (10 s at most)
  local u=\$1 pid exe
  pid=\$(cat "\$units/\$u.pid")
  exe=\$(sed -n 's/^ExecStart=\\([^ ]*\\).*/\\1/p' "/etc/systemd/system/\$u")
  for _ in \$(seq 1 100); do
    kill -0 "\$pid" 2>/dev/null || { echo "\$u failed: see journalctl -u \$u" >&2; return 1; }
    [ "\$(readlink "/proc/\$pid/exe")" = "\$exe" ] && return 0
    sleep 0.1
  done
  echo "\$u: ExecStart= not reached within 10 s" >&2; return 1
}
start_all() { local u rc=0; for u in "\$@"; do start "\$(unit_of "\$u")"; done; for u in "\$@"; do started "\$(unit_of "\$u")" || rc=1; done; return \$rc; }
cmd=\$1; shift
case \$cmd in
  daemon-reload) ;;
  enable) if [ "\${1:-}" = --now ]; then shift; start_all "\$@"; fi ;;
  start | restart) start_all "\$@" ;;
  reload) for u in "\$@"; do u=\$(unit_of "\$u"); alive "\$u" || { echo "\$u is not active, cannot reload." >&2; exit 1; }; kill -HUP "\$(cat "\$units/\$u.pid")"; done ;;
  is-active) [ "\${1:-}" = --quiet ] && shift; alive "\$(unit_of "\$1")" ;;
  stop) for u in "\$@"; do u=\$(unit_of "\$u"); alive "\$u" && kill -TERM "\$(cat "\$units/\$u.pid")"; done ;;
  *) echo "systemctl stand-in: \$cmd is not supported" >&2; exit 1 ;;
esac
EOF
cat >"$WORK/shim/journalctl" <<EOF
#!/usr/bin/env bash
# journalctl -u UNIT for this test: the unit's output (unit-run.sh's stdout and stderr).
if [ "\${1:-}" = -u ]; then u=\$2; case \$u in *.service) ;; *) u=\$u.service ;; esac; cat "$UNITS/\$u.log"; exit; fi
exec /usr/bin/journalctl "\$@"
EOF
chmod 0755 "$WORK/shim/systemctl" "$WORK/shim/journalctl"

# -- 1. README "Install" ----------------------------------------------------------------------
before=$failed
check "README's Install block runs as written (binary, sysusers.d, configurations, units, logrotate, documentation, certbot hook)" run_block install
[ "$failed" -eq "$before" ] || { tail -n 5 "$LOG/block-install.log" | sed 's/^/  /'; exit 1; }
check "the user smtpguard is a system user with home /var/lib/smtpguard and no login shell (sysusers.d)" \
  bash -c 'e=$(getent passwd smtpguard) && u=$(cut -d: -f3 <<<"$e") && [ "$u" -lt 1000 ] && [ "$(cut -d: -f6 <<<"$e")" = /var/lib/smtpguard ] && [ "$(cut -d: -f7 <<<"$e")" = /usr/sbin/nologin ]'
check "every unit's Documentation= file is installed" bash -c '
  for u in /etc/systemd/system/smtpguard*.service; do
    d=$(sed -n "s#^Documentation=file://##p" "$u"); [ -n "$d" ] && [ -s "$d" ] || { echo "  $u: ${d:-no Documentation=}"; exit 1; }
  done'
check "every configuration a unit's ExecStartPre checks is installed" bash -c '
  for u in /etc/systemd/system/smtpguard*.service; do
    c=$(sed -n "s#^ExecStartPre=.*config check ##p" "$u"); [ -r "$c" ] || { echo "  $u: $c missing"; exit 1; }
  done'
as_guard() { setpriv --reuid=smtpguard --regid=smtpguard --init-groups "$@"; }
check "certbot's hook copied the certificate and key to /etc/smtpguard/tls, group smtpguard, mode 0640" bash -c '
  for f in fullchain privkey; do [ "$(stat -c "%a %U %G" /etc/smtpguard/tls/$f.pem)" = "640 root smtpguard" ] || exit 1; done
  cmp -s /etc/smtpguard/tls/privkey.pem /etc/letsencrypt/live/mail.example.org/privkey.pem'
check "the guard's user reads the copy but not certbot's own files (the reason for the hook)" \
  bash -c "$(declare -f as_guard); as_guard cat /etc/smtpguard/tls/privkey.pem >/dev/null && ! as_guard cat /etc/letsencrypt/live/mail.example.org/privkey.pem 2>/dev/null"
check "the policy socket's directory is /var/spool/postfix/smtpguard, 0750 smtpguard:postfix" \
  bash -c '[ "$(stat -c "%a %U %G" /var/spool/postfix/smtpguard)" = "750 smtpguard postfix" ]'

# -- 2. The mail server: README's Postfix and Dovecot recipes ---------------------------------
check "README's recipe for the stock submission and submissions services runs" run_block postfix-services
check "... and turns them off: 587 and 465 are left to the guard" bash -c '[ -z "$(postconf -M submission/inet submissions/inet 2>/dev/null)" ]'
cat "$(B master.cf)" >>/etc/postfix/master.cf
cp "$(B dovecot-sasl.conf)" /etc/dovecot/conf.d/95-postfix-sasl.conf
cat "$(B "sasl main.cf")" "$(B "postfix-policy main.cf")" >>/etc/postfix/main.cf
check "README's per-service smtpd_delay_reject recipe runs" run_block "postfix-policy master.cf"
cp "$(B "dovecot-policy 2.3")" /etc/dovecot/conf.d/95-smtpguard.conf
cp "$(B "dovecot-logging")" /etc/dovecot/conf.d/95-smtpguard-logging.conf
# The Dovecot policy goes to the policy unit's configuration (README: "smtpguard.yaml (the
# proxy's, or policy.yaml)"): one engine sees Dovecot, the proxy's sees SMTP.
cat "$(B "dovecot-policy yaml")" >>/etc/smtpguard/policy.yaml
# The administrator's substitution: each change-me… secret becomes a random one, the same everywhere.
secret_files=(/etc/smtpguard/*.yaml /etc/dovecot/conf.d/95-smtpguard.conf)
for placeholder in $(grep -ho 'change-me[-a-z0-9]*' "${secret_files[@]}" | sort -u); do
  sed -i "s/$placeholder/$(openssl rand -hex 24)/g" "${secret_files[@]}"
done
check "no change-me placeholder is left in the installed configurations" bash -c '! grep -q change-me "$@"' _ "${secret_files[@]}"
check "README's proxy yaml is what examples/proxy-postfix.yaml has" \
  bash -c 'while IFS= read -r l; do grep -qxF -- "$l" <(sed "s/ *#.*//" "$2") || { echo "  not in the example: $l"; exit 1; }; done <"$1"' _ "$(B "proxy yaml")" "$ROOT/examples/proxy-postfix.yaml"
check "README's master.cf service is the one examples/proxy-postfix.yaml shows" \
  bash -c 'grep -v "^#" "$1" | while IFS= read -r l; do grep -qxF -- "#   ${l# }" <(sed "s/^#     /#   /" "$2") || grep -qxF -- "#   $l" "$2" || { echo "  not in the example: $l"; exit 1; }; done' _ "$(B master.cf)" "$ROOT/examples/proxy-postfix.yaml"
check "README's postfix_policy listen is what examples/postfix-policy.yaml has" \
  bash -c 'a=$(grep "^  listen:" "$1" | sed "s/ *#.*//"); [ -n "$a" ] && grep -qF -- "$a" "$2"' _ "$(B "postfix-policy yaml")" "$ROOT/examples/postfix-policy.yaml"
check "postfix check is silent on the result" bash -c '[ -z "$(postfix check 2>&1)" ] || { postfix check 2>&1 | sed "s/^/  /"; exit 1; }'
check "doveconf accepts the result" bash -c 'doveconf -n >/dev/null 2>"$1/doveconf.err" || { sed "s/^/  /" "$1/doveconf.err"; exit 1; }' _ "$LOG"

# Start them as their units do (dovecot.service: dovecot -F; postfix@-.service: configure-instance.sh,
# postmulti start), each in a cgroup named as its unit, so that journald records their lines
# under _SYSTEMD_UNIT as systemd would (the watcher's journald:unit= sources match that).
CGROOT=$(findmnt -t cgroup2 -n -o TARGET | head -1)
in_unit() {  # in_unit UNIT COMMAND…: COMMAND in the cgroup system.slice/UNIT
  mkdir -p "$CGROOT/system.slice/$1" && sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' _ "$CGROOT/system.slice/$1" "${@:2}"
}
in_unit dovecot.service dovecot >"$LOG/dovecot.start" 2>&1
in_unit postfix@-.service /usr/lib/postfix/configure-instance.sh - >"$LOG/postfix.start" 2>&1
in_unit postfix@-.service postmulti -i - -p start >>"$LOG/postfix.start" 2>&1
check "Dovecot runs with its auth socket in Postfix's chroot" wait_for 10 test -S /var/spool/postfix/private/auth
smtp_greets() {  # smtp_greets HOST PORT: 220 from HOST:PORT
  local line=""
  exec 3<>"/dev/tcp/$1/$2" || return 1
  IFS= read -r -t 3 line <&3; printf 'QUIT\r\n' >&3; exec 3<&- 3>&-
  [ "${line:0:3}" = 220 ]
} 2>/dev/null
check "Postfix answers on 127.0.0.1:10587, the service behind the guard" \
  wait_for 10 bash -c "$(declare -f smtp_greets); smtp_greets 127.0.0.1 10587"
check "nothing listens on 587 or 465 before the guard starts" bash -c '! ss -Hltn "( sport = :587 or sport = :465 )" | grep -q .'

# -- 3. config check, then the units ---------------------------------------------------------
for c in smtpguard watch policy; do
  check "config check passes on the installed /etc/smtpguard/$c.yaml" bash -c '/usr/local/bin/smtpguard config check "$1" >"$2" 2>&1 || { sed "s/^/  /" "$2"; exit 1; }' _ "/etc/smtpguard/$c.yaml" "$LOG/config-check-$c.log"
done
sed 's/^  hostname: /  hostnme: /' /etc/smtpguard/smtpguard.yaml >"$WORK/planted.yaml"
check "control: config check fails on a planted error and names its key (smtp.hostnme)" \
  bash -c '! /usr/local/bin/smtpguard config check "$1" >"$2" 2>&1 && grep -q "hostnme" "$2"' _ "$WORK/planted.yaml" "$LOG/config-check-planted.log"
before=$failed
check "README's start block runs as written (config check, systemctl enable --now of the three units)" run_block start
[ "$failed" -eq "$before" ] || { tail -n 5 "$LOG/block-start.log" | sed 's/^/  /'; exit 1; }
PROXY_PID=$(cat "$UNITS/smtpguard.service.pid" 2>/dev/null)
WATCH_PID=$(cat "$UNITS/smtpguard-watch.service.pid" 2>/dev/null)
POLICY_PID=$(cat "$UNITS/smtpguard-policy.service.pid" 2>/dev/null)
listening() {  # listening PID PORT [PROTO]: PID holds a listening TCP socket on PORT
  ss -Hltnp "( sport = :$2 )" | grep -q "pid=$1,"
}
ports_up() {
  listening "$PROXY_PID" 587 && listening "$PROXY_PID" 465 && listening "$PROXY_PID" 8025 &&
    listening "$POLICY_PID" 8026 && listening "$WATCH_PID" 8027 && listening "$WATCH_PID" 8029 &&
    listening "$POLICY_PID" 8030 && [ -S /var/spool/postfix/smtpguard/policy ]
}
if ! wait_for 30 ports_up; then
  for u in "$UNITS"/*.log; do echo "  ----- $(basename "$u")"; tail -n 15 "$u" | sed 's/^/  /'; done
fi
as_guard_journal() { setpriv --reuid=smtpguard --regid=smtpguard --groups="$(getent group systemd-journal | cut -d: -f3)" "$@"; }
as_guard_journal journalctl --no-pager -n 3 --unit=postfix@-.service >"$LOG/journalctl-as-guard.txt" 2>&1; echo "exit $?" >>"$LOG/journalctl-as-guard.txt"
check "the three units run at once, each port of README's plan held by its unit (587, 465, 8025: proxy; 8026, 8030 and the socket: policy; 8027, 8029: watcher)" ports_up
PATH="$WORK/shim:$PATH" systemctl reload smtpguard >"$LOG/reload.log" 2>&1
check "systemctl reload smtpguard (SIGHUP) leaves it running and it says what it reloaded" \
  wait_for 5 bash -c 'kill -0 "$1" && grep -q "SIGHUP" "$2"' _ "$PROXY_PID" "$UNITS/smtpguard.service.log"
check "the proxy listens on 0.0.0.0:587 and [::]:587 side by side" \
  bash -c '[ "$(ss -Hltn "( sport = :587 )" | awk "{print \$4}" | sort | paste -sd" ")" = "0.0.0.0:587 [::]:587" ]'
for u in smtpguard smtpguard-watch smtpguard-policy; do
  check "unit-run names what it could not emulate for $u.service (not silently dropped)" grep -q "unit-run: $u.service: not emulated: .*SystemCallFilter" "$UNITS/$u.service.log"
done
# The unit's credentials, as the kernel has them (/proc/PID/status).
field() { awk -v k="$2:" '$1 == k { $1 = ""; sub(/^ +/, ""); print }' "/proc/$1/status" 2>/dev/null; }
in_group() { [[ " $(field "$1" Groups) " == *" $(getent group "$2" | cut -d: -f3) "* ]]; }
runs_as() {  # runs_as PID CAPEFF GROUP…: uid smtpguard (all four ids), CapEff, CapAmb and CapBnd = CAPEFF, no new privileges, in each GROUP
  local pid=$1 caps=$2 uid g
  shift 2
  uid=$(id -u smtpguard)
  [ "$(field "$pid" Uid)" = "$uid $uid $uid $uid" ] || [ "$(field "$pid" Uid | tr '\t' ' ')" = "$uid $uid $uid $uid" ] || { echo "  uid: $(field "$pid" Uid)"; return 1; }
  for k in CapEff CapAmb CapBnd; do [ "$(field "$pid" $k)" = "$caps" ] || { echo "  $k: $(field "$pid" $k)"; return 1; }; done
  [ "$(field "$pid" NoNewPrivs)" = 1 ] || { echo "  NoNewPrivs: $(field "$pid" NoNewPrivs)"; return 1; }
  for g in "$@"; do in_group "$pid" "$g" || { echo "  not in $g: $(field "$pid" Groups)"; return 1; }; done
}
check "the proxy runs as smtpguard with CAP_NET_BIND_SERVICE only (effective, ambient, bounding), no new privileges" \
  runs_as "$PROXY_PID" 0000000000000400
check "the watcher runs as smtpguard in the groups adm and systemd-journal with CAP_NET_ADMIN only" \
  runs_as "$WATCH_PID" 0000000000001000 adm systemd-journal
check "the policy unit runs as smtpguard in the group postfix with no capability" \
  runs_as "$POLICY_PID" 0000000000000000 postfix
check "control: the proxy is not in the group postfix, the watcher not in postfix either" \
  bash -c "$(declare -f field in_group); ! in_group $PROXY_PID postfix && ! in_group $WATCH_PID postfix"
check "in the proxy's namespace the system is read-only (/etc, /usr) while its state and log directories are writable" bash -c '
  in_unit() { nsenter --target "$1" --mount -- "${@:2}"; }
  ! in_unit "$1" touch /etc/smtpguard/probe 2>/dev/null && ! in_unit "$1" touch /usr/local/bin/probe 2>/dev/null &&
  in_unit "$1" touch /var/lib/smtpguard/probe /var/log/smtpguard/probe && rm -f /var/lib/smtpguard/probe /var/log/smtpguard/probe' _ "$PROXY_PID"
check "in the policy unit's namespace only /var/spool/postfix/smtpguard is writable of Postfix's spool" bash -c '
  in_unit() { nsenter --target "$1" --mount -- "${@:2}"; }
  ! in_unit "$1" touch /var/spool/postfix/probe 2>/dev/null && in_unit "$1" touch /var/spool/postfix/smtpguard/probe &&
  rm -f /var/spool/postfix/smtpguard/probe' _ "$POLICY_PID"

# -- 4. Logins through the guard on 587, IPv4 and IPv6 ------------------------------------------
: >"$WORK/secrets.tsv"
sw() {  # sw OUT SERVER-ARGS… : swaks, bounded, transcript to OUT (never printed)
  local out=$1; shift
  timeout 40 swaks --timeout 20 --helo client.example.net "$@" >"$out" 2>&1
}
login() {  # login NAME MECH PASSWORD SERVER-ARGS…
  local name=$1 mech=$2 pw=$3; shift 3
  auth_secrets "$mech" alice "$pw" >>"$WORK/secrets.tsv"
  sw "$LOG/swaks-$name.txt" "$@" --tls --auth "$mech" --auth-user alice --auth-password "$pw" --quit-after AUTH
}
login v4-plain PLAIN "$PASSWORD" --server 127.0.0.1 --port 587
check "IPv4 (127.0.0.1:587): STARTTLS and AUTH PLAIN log in through the guard" grep -q "^<~  235 " "$LOG/swaks-v4-plain.txt"
login v4-login LOGIN "$PASSWORD" --server 127.0.0.1 --port 587
check "IPv4: AUTH LOGIN logs in" grep -q "^<~  235 " "$LOG/swaks-v4-login.txt"
login v6-plain PLAIN "$PASSWORD" --server ::1 --port 587 -6
check "IPv6 ([::1]:587): STARTTLS and AUTH PLAIN log in through the guard" grep -q "^<~  235 " "$LOG/swaks-v6-plain.txt"
login v6-login LOGIN "$PASSWORD" --server ::1 --port 587 -6
check "IPv6: AUTH LOGIN logs in" grep -q "^<~  235 " "$LOG/swaks-v6-login.txt"
login v4-wrong PLAIN not-her-password --server 127.0.0.1 --port 587
login v6-wrong LOGIN not-her-password-6 --server ::1 --port 587 -6
check "control: a wrong password is refused (535) over IPv4 and IPv6" \
  bash -c 'grep -q "^<~\*\{0,2\} *535 " "$1/swaks-v4-wrong.txt" && grep -q "^<~\*\{0,2\} *535 " "$1/swaks-v6-wrong.txt"' _ "$LOG"
auth_secrets PLAIN alice "$PASSWORD" >>"$WORK/secrets.tsv"
sw "$LOG/swaks-message.txt" --server ::1 --port 587 -6 --tls --auth PLAIN --auth-user alice --auth-password "$PASSWORD" \
  --from alice@mail.example.org --to someone@example.net
check "a message goes through the guard into Postfix's queue (250 queued)" grep -q "^<~  250 2.0.0 Ok: queued" "$LOG/swaks-message.txt"
check "Postfix's guarded smtpd saw the IPv6 client's own address (XCLIENT), not the guard's" \
  wait_for 5 bash -c 'journalctl --no-pager -q -t postfix/submission-guarded/smtpd | grep -q "client=unknown\[::1\]\|\[::1\].*sasl_username=alice"'
check "the implicit-TLS port 465 answers with the certificate from /etc/smtpguard/tls" bash -c '
  s=$(timeout 10 openssl s_client -connect 127.0.0.1:465 -servername mail.example.org </dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null)
  [ -n "$s" ] && [ "$s" = "$(openssl x509 -noout -serial -in /etc/smtpguard/tls/fullchain.pem)" ]'

# -- 5. hydra is banned; the office and another address still get in ---------------------------
for i in $(seq 1 60); do echo "guess-$i-x"; done >"$WORK/guesses.txt"
# Secrets only hydra and doveadm sent: their clear form is in the lists they were given.
while read -r g; do auth_secrets LOGIN alice "$g" | grep "^clear" >>"$WORK/other-secrets.tsv"; done <"$WORK/guesses.txt"
(cd "$WORK" && timeout 120 hydra -I -l alice -P "$WORK/guesses.txt" -t 16 -w 15 "smtp://$ATTACKER:587/TLS" >"$LOG/hydra.txt" 2>&1)
check "hydra -t 16 (smtp, STARTTLS, against 587) found no password" bash -c '! grep -q "login: alice" "$1" && grep -q "of 1 target completed\|0 valid password" "$1"' _ "$LOG/hydra.txt"
check "the guard banned hydra's address (a ban event)" wait_for 5 grep -q "\"event\":\"ban\",\"scope\":\"ip\",\"key\":\"$ATTACKER\"" "$EVENTS"
sw "$LOG/swaks-banned.txt" --server "$ATTACKER" --port 587 --quit-after CONNECT
check "hydra's address gets 554 at its next connection" grep -q "^<\*\{0,2\} *554 " "$LOG/swaks-banned.txt"
login office PLAIN "$PASSWORD" --server 127.0.0.1 --port 587 --local-interface "$OFFICE"
check "control: the office (guard.trusted_networks) still logs in" grep -q "^<~  235 " "$LOG/swaks-office.txt"
login other PLAIN "$PASSWORD" --server 127.0.0.1 --port 587
check "control: another untrusted address (127.0.0.1) still logs in" grep -q "^<~  235 " "$LOG/swaks-other.txt"

# -- 6. Dovecot through README's 2.3 auth-policy snippet -----------------------------------------
echo imap-guess-1 >>"$WORK/guesses.txt"
auth_secrets PLAIN alice imap-guess-1 | grep "^clear" >>"$WORK/other-secrets.tsv"
doveadm auth test -x service=imap -x rip=203.0.113.77 -x lip=127.0.0.1 alice "$PASSWORD" >"$LOG/doveadm-good.txt" 2>&1
doveadm auth test -x service=imap -x rip=203.0.113.78 -x lip=127.0.0.1 alice imap-guess-1 >"$LOG/doveadm-bad.txt" 2>&1
check "Dovecot (IMAP, PAM) accepts alice's password and refuses a guess" \
  bash -c 'grep -q "auth succeeded" "$1" && grep -q "auth failed" "$2"' _ "$LOG/doveadm-good.txt" "$LOG/doveadm-bad.txt"
check "the guard's events show both IMAP logins, reported by Dovecot's auth policy" wait_for 5 bash -c '
  grep "\"source\":\"dovecot_policy\"" "$1" | grep "\"client_ip\":\"203.0.113.77\"" | grep -q "\"outcome\":\"success\"" &&
  grep "\"source\":\"dovecot_policy\"" "$1" | grep "\"client_ip\":\"203.0.113.78\"" | grep -q "\"outcome\":\"failure\""' _ "$EVENTS"
check "the watcher read Dovecot's failure from the journal (journald:unit=dovecot.service, auth_verbose from README)" \
  wait_for 10 bash -c 'grep "\"source\":\"log_watch\"" "$1" | grep "\"client_ip\":\"203.0.113.78\"" | grep -q "\"outcome\":\"failure\""' _ "$EVENTS"
check "… and Postfix's SASL failures for hydra's address (journald:unit=postfix@-.service, the address from XCLIENT)" \
  bash -c 'grep "\"source\":\"log_watch\"" "$1" | grep -q "\"client_ip\":\"$2\""' _ "$EVENTS" "$ATTACKER"

# -- 7. The Postfix policy socket --------------------------------------------------------------
SOCK=/var/spool/postfix/smtpguard/policy
ask_policy() {  # ask_policy SETPRIV-GROUP-ARGS…: one policy request from nobody; prints the answer or the error
  setpriv --reuid=nobody --regid=nogroup "$@" /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect: errno %d %s" % (e.errno, e.strerror)); sys.exit(0)
s.sendall(b"request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=192.0.2.200\nclient_name=unknown\nsender=a@example.net\nrecipient=b@example.org\ninstance=1.1\n\n")
print(s.recv(4096).decode().strip())' "$SOCK"
}
check "the policy socket is mode 0660, group postfix" bash -c '[ "$(stat -c "%a %G" "$1")" = "660 postfix" ]' _ "$SOCK"
check "a process outside the group postfix (nobody) cannot connect: EACCES" \
  bash -c "$(declare -f ask_policy); SOCK=$SOCK; ask_policy --clear-groups | grep -q 'errno 13'"
check "control: the same process in the group postfix gets an answer (action=DUNNO)" \
  bash -c "$(declare -f ask_policy); SOCK=$SOCK; ask_policy --groups=\$(getent group postfix | cut -d: -f3) | grep -q '^action=DUNNO'"
check "a ban by hand on the policy unit (smtpguard bans add, its admin API on 8030)" bash -c \
  '/usr/local/bin/smtpguard bans add --config /etc/smtpguard/policy.yaml ip "$1" --duration 10m >"$2" 2>&1' _ "$BANNED" "$LOG/bans-add.log"
sw "$LOG/swaks-25-banned.txt" --server "$BANNED" --port 25 --quit-after CONNECT
check "Postfix's chrooted smtpd asks the socket: the banned address gets 421 at connect on port 25" grep -q "^<\*\{0,2\} *421 4.7.0" "$LOG/swaks-25-banned.txt"
sw "$LOG/swaks-25-other.txt" --server 127.0.0.2 --port 25 --local-interface 127.0.0.2 --from a@example.net --to alice@mail.example.org --quit-after RCPT
check "control: another address gets through the policy to RCPT on port 25 (250, not 4xx)" grep -q "^<-  250 2.1.5" "$LOG/swaks-25-other.txt"

# -- 8. logrotate's postrotate and certbot's renewal reach the running guard ----------------------
reopened() { grep -c "SIGHUP: event log reopened" "$UNITS/$1.service.log"; }  # reopened UNIT: how many times UNIT said so
reopened_before=$(reopened smtpguard)
watch_reopened_before=$(reopened smtpguard-watch)
policy_reopened_before=$(reopened smtpguard-policy)
if command -v logrotate >/dev/null; then
  # logrotate itself renames events.jsonl to events.jsonl.1, makes a new one and reloads.
  PATH="$WORK/shim:$PATH" logrotate -f -s "$WORK/logrotate.state" /etc/logrotate.d/smtpguard >"$LOG/logrotate.log" 2>&1
  rotated="logrotate -f"
else
  # Without the logrotate package: the rename, then its postrotate script, run as logrotate would (sh -c).
  mv "$EVENTS" "$EVENTS.1"
  awk '/postrotate/ { on = 1; next } /endscript/ { on = 0 } on' /etc/logrotate.d/smtpguard >"$WORK/postrotate.sh"
  PATH="$WORK/shim:$PATH" sh "$WORK/postrotate.sh" >"$LOG/logrotate.log" 2>&1
  rotated="its postrotate script (no logrotate installed)"
fi
check "$rotated renamed the event log and reloaded the proxy (it says it reopened the log)" \
  wait_for 10 bash -c '[ -s "$1.1" ] && [ "$(grep -c "SIGHUP: event log reopened" "$2")" -gt "$3" ]' _ "$EVENTS" "$UNITS/smtpguard.service.log" "$reopened_before"
# The other units' reloads land too (they write the same file).
wait_for 10 eval '[ "$(reopened smtpguard-watch)" -gt "$watch_reopened_before" ] && [ "$(reopened smtpguard-policy)" -gt "$policy_reopened_before" ]'
rotated_lines=$(wc -l <"$EVENTS.1")
login after-rotate PLAIN wrong-after-rotate --server 127.0.0.1 --port 587
check "after $rotated, the proxy writes to a new events.jsonl and no longer to the rotated one" \
  wait_for 5 bash -c 'grep -q "\"username\":\"alice\"" "$1" 2>/dev/null && [ "$(wc -l <"$1.1")" -eq "$2" ]' _ "$EVENTS" "$rotated_lines"
issue /etc/letsencrypt/live/mail.example.org
PATH="$WORK/shim:$PATH" RENEWED_LINEAGE=/etc/letsencrypt/live/mail.example.org /etc/letsencrypt/renewal-hooks/deploy/smtpguard.sh >"$LOG/renew.log" 2>&1
check "after a renewal, certbot's deploy hook makes the guard serve the new certificate" wait_for 10 bash -c '
  s=$(timeout 5 openssl s_client -connect 127.0.0.1:465 </dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null)
  [ -n "$s" ] && [ "$s" = "$(openssl x509 -noout -serial -in /etc/letsencrypt/live/mail.example.org/cert.pem)" ]'
check "the three units are still running" bash -c 'kill -0 "$1" && kill -0 "$2" && kill -0 "$3"' _ "$PROXY_PID" "$WATCH_PID" "$POLICY_PID"

# -- 9. No password or AUTH payload anywhere the guard writes -------------------------------------
cat "$WORK/secrets.tsv" "$WORK/other-secrets.tsv" >"$WORK/all-secrets.tsv"
check "no password or AUTH payload in the events, the state or the units' output" \
  leak_sweep "$WORK/all-secrets.tsv" "$EVENTS" "$EVENTS.1" /var/lib/smtpguard/smtpguard.db "$UNITS"/smtpguard*.service.log
clients_had_them() { all_found "$WORK/secrets.tsv" wire "$LOG"/swaks-*.txt && all_found "$WORK/other-secrets.tsv" clear "$WORK/guesses.txt"; }
check "control: the same sweep finds every one in what the clients were given (swaks' transcripts, the guess list)" clients_had_them
