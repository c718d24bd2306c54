#!/usr/bin/env bash
# unit-run.sh UNITFILE [EXECSTART]: runs a systemd service unit (deploy/*.service) the way
# systemd would, without systemd (CI's PID 1 is not systemd, so systemd-run cannot be used).
# Everything comes from the unit file, so that the test and the shipped unit cannot drift:
#
#   User=, Group=, SupplementaryGroups= (with User='s own groups, as initgroups gives them)
#       setpriv --reuid --regid --groups
#   AmbientCapabilities=, CapabilityBoundingSet=, NoNewPrivileges=, SecureBits=
#       setpriv --inh-caps/--ambient-caps, --bounding-set, --no-new-privs, --securebits
#   StateDirectory=, LogsDirectory=, RuntimeDirectory=, ConfigurationDirectory= (+ *Mode=)
#       created as systemd does (below /var/lib, /var/log, /run, /etc; the first three owned by
#       User:Group), and $STATE_DIRECTORY, $LOGS_DIRECTORY, $RUNTIME_DIRECTORY,
#       $CONFIGURATION_DIRECTORY set
#   ProtectSystem=strict|full|yes, ReadWritePaths=, ReadOnlyPaths=, InaccessiblePaths=
#       a private mount namespace (unshare --mount) in which every mount is remounted read-only
#       except /dev, /proc, /sys, the State/Logs/Runtime directories, ReadWritePaths= and the
#       private /tmp (strict; full and yes: /usr, /boot, /efi and, for full, /etc)
#   ProtectHome=yes|read-only|tmpfs, PrivateTmp=, PrivateDevices= (a /dev with null, zero,
#       full, random, urandom, tty, pts, ptmx, shm and the /dev/log symlink), ProtectProc= and
#       ProcSubset= (a /proc of its own with hidepid= and subset=), ProtectKernelTunables=,
#       ProtectControlGroups= (/sys and /proc/sys read-only), ProtectKernelModules= (its file
#       part: /usr/lib/modules inaccessible), ProtectHostname= (unshare --uts)
#   WorkingDirectory=, UMask=, LimitNOFILE=, Environment=, and systemd's clean environment
#       (PATH, HOME, USER, LOGNAME, SHELL)
#   ExecStartPre= (each in turn, in the same sandbox; "-" tolerates failure), then ExecStart=
#       (or EXECSTART, when given) replaces this script: the caller's $! is the service's
#       MAINPID (send SIGHUP for ExecReload=, SIGTERM to stop).
#
# Every [Service] directive that changes behaviour and is not emulated is named on standard
# error ("unit-run: not emulated: …"): the system-call filters, the address-family and
# namespace restrictions and the rest of seccomp (no tool for them here), and what the service
# manager does around the process (Restart=, timeouts, KillSignal=, RemoveIPC=). A directive
# it does not know at all is named too and stops it (exit 2), so that a new one in deploy/ is
# noticed. [Unit] and [Install] (ordering, documentation, enablement) are not about how the
# process runs and are ignored.
#
# Needs root (it switches users and mounts). Exit status: that of a failing ExecStartPre=, 2
# for a unit it cannot run, else whatever ExecStart= returns.
set -euo pipefail

unit=${1:?usage: unit-run.sh UNITFILE [EXECSTART]}
override=${2:-}
[ -r "$unit" ] || { echo "unit-run: cannot read $unit" >&2; exit 2; }
name=$(basename "$unit")
trap 'echo "unit-run: $name: failed (exit $?) at line $LINENO: $BASH_COMMAND" >&2' ERR

# ---- parsing: [Service] only, continuation lines joined, list directives accumulated, an empty
# assignment resetting a list, as systemd does.
declare -A one=()            # last value of single-valued directives
declare -a pre=() env_list=() rw_paths=() ro_paths=() no_paths=() supp=() not_emulated=() unknown=()
execstart=""
section=""
while IFS= read -r line || [ -n "$line" ]; do
  while [[ $line == *\\ ]]; do
    IFS= read -r next || break
    line="${line%\\} $next"
  done
  line="${line#"${line%%[![:space:]]*}"}"
  case $line in '' | '#'* | ';'*) continue ;; '['*']') section=$line; continue ;; esac
  [ "$section" = "[Service]" ] || continue
  key=${line%%=*}
  value=${line#*=}
  key=${key%"${key##*[![:space:]]}"}
  value="${value#"${value%%[![:space:]]*}"}"
  case $value in *%*) unknown+=("$key (specifier in \"$value\")") ;; esac
  case $key in
    Type)
      case $value in simple | exec) ;; *) unknown+=("Type=$value") ;; esac ;;
    User | Group | WorkingDirectory | UMask | LimitNOFILE | NoNewPrivileges | SecureBits | \
    ProtectSystem | ProtectHome | PrivateTmp | PrivateDevices | ProtectKernelTunables | \
    ProtectControlGroups | ProtectKernelModules | ProtectHostname | ProtectProc | ProcSubset | \
    StateDirectoryMode | LogsDirectoryMode | RuntimeDirectoryMode | ConfigurationDirectoryMode | \
    AmbientCapabilities | CapabilityBoundingSet)
      # (the two capability lists are taken whole: the shipped units give each one line)
      one[$key]=$value ;;
    StateDirectory | LogsDirectory | RuntimeDirectory | ConfigurationDirectory)
      if [ -z "$value" ]; then one[$key]=""; else one[$key]="${one[$key]:-} $value"; fi ;;
    SupplementaryGroups)
      if [ -z "$value" ]; then supp=(); else read -ra words <<<"$value"; supp+=("${words[@]}"); fi ;;
    Environment)
      if [ -z "$value" ]; then env_list=(); else eval "words=($value)"; env_list+=("${words[@]}"); fi ;;
    ReadWritePaths)
      if [ -z "$value" ]; then rw_paths=(); else read -ra words <<<"$value"; rw_paths+=("${words[@]}"); fi ;;
    ReadOnlyPaths)
      if [ -z "$value" ]; then ro_paths=(); else read -ra words <<<"$value"; ro_paths+=("${words[@]}"); fi ;;
    InaccessiblePaths)
      if [ -z "$value" ]; then no_paths=(); else read -ra words <<<"$value"; no_paths+=("${words[@]}"); fi ;;
    ExecStartPre)
      if [ -z "$value" ]; then pre=(); else pre+=("$value"); fi ;;
    ExecStart) execstart=$value ;;
    ExecReload) ;;  # the test sends the signal itself (kill -HUP MAINPID)
    ProtectKernelLogs | ProtectClock | RestrictAddressFamilies | RestrictNamespaces | RestrictRealtime | \
    RestrictSUIDSGID | LockPersonality | MemoryDenyWriteExecute | SystemCallArchitectures | \
    SystemCallFilter | SystemCallErrorNumber | RemoveIPC | Restart | RestartSec | KillSignal | \
    TimeoutStopSec | TimeoutStartSec)
      not_emulated+=("$key=$value") ;;
    *) unknown+=("$key=$value") ;;
  esac
done <"$unit"
[ -n "$override" ] && execstart=$override
[ -n "$execstart" ] || { echo "unit-run: $name has no ExecStart=" >&2; exit 2; }
if [ ${#unknown[@]} -gt 0 ]; then
  printf 'unit-run: %s: cannot emulate (add it to unit-run.sh): %s\n' "$name" "${unknown[*]}" >&2
  exit 2
fi

yes() { case ${1:-} in yes | true | on | 1) return 0 ;; *) return 1 ;; esac; }
user=${one[User]:-root}
group=${one[Group]:-}
uid=$(id -u "$user") || { echo "unit-run: $name: no user $user" >&2; exit 2; }
[ -n "$group" ] || group=$(id -gn "$user")
gid=$(getent group "$group" | cut -d: -f3)
[ -n "$gid" ] || { echo "unit-run: $name: no group $group" >&2; exit 2; }
# initgroups(User) plus SupplementaryGroups=, as systemd gives them.
groups=$(id -G "$user" | tr ' ' '\n')
for g in "${supp[@]}"; do
  n=$(getent group "$g" | cut -d: -f3)
  [ -n "$n" ] || { echo "unit-run: $name: SupplementaryGroups: no group $g" >&2; exit 2; }
  groups+=$'\n'$n
done
groups=$(sort -un <<<"$groups" | paste -sd, -)
home=$(getent passwd "$user" | cut -d: -f6)
shell=$(getent passwd "$user" | cut -d: -f7)

# "CAP_A CAP_B" -> "+a,+b" for setpriv; empty -> nothing.
caps() { local c out=""; for c in $1; do c=${c#CAP_}; out+=",+${c,,}"; done; printf '%s' "${out#,}"; }

# The directories systemd creates: DIRS KIND_ROOT MODE OWNED(yes/no); prints the paths.
make_dirs() {
  local d path
  for d in $1; do
    path="$2/$d"
    if [ ! -d "$path" ]; then mkdir -p "$path"; chmod "${3:-0755}" "$path"; fi
    chmod "${3:-0755}" "$path"
    [ "$4" = yes ] && chown "$uid:$gid" "$path"
    printf '%s\n' "$path"
  done
}

if [ -z "${UNIT_RUN_INNER:-}" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "unit-run: needs root" >&2; exit 2; }
  if [ ${#not_emulated[@]} -gt 0 ]; then
    printf 'unit-run: %s: not emulated: %s\n' "$name" "$(printf '%s, ' "${not_emulated[@]}" | sed 's/, $//')" >&2
  fi
  printf 'unit-run: %s: user %s (%s), group %s (%s), groups %s; ambient %s; bounding set %s; %s\n' \
    "$name" "$user" "$uid" "$group" "$gid" "$groups" "${one[AmbientCapabilities]:-none}" \
    "$(v=${one[CapabilityBoundingSet]-all}; echo "${v:-none}")" "ProtectSystem=${one[ProtectSystem]:-no}" >&2
  make_dirs "${one[StateDirectory]:-}" /var/lib "${one[StateDirectoryMode]:-0755}" yes >/dev/null
  make_dirs "${one[LogsDirectory]:-}" /var/log "${one[LogsDirectoryMode]:-0755}" yes >/dev/null
  make_dirs "${one[RuntimeDirectory]:-}" /run "${one[RuntimeDirectoryMode]:-0755}" yes >/dev/null
  make_dirs "${one[ConfigurationDirectory]:-}" /etc "${one[ConfigurationDirectoryMode]:-0755}" no >/dev/null
  ns=(--mount --propagation private)
  yes "${one[ProtectHostname]:-}" && ns+=(--uts)
  # unshare without --fork execs: this pid stays the service's.
  UNIT_RUN_INNER=1 exec unshare "${ns[@]}" -- bash "$0" "$@"
fi

# ---- inside the service's own mount namespace.
dirs_of() { local d; for d in $1; do printf '%s\n' "$2/$d"; done; }
writable=()
while IFS= read -r p; do [ -n "$p" ] && writable+=("$p"); done < <(
  dirs_of "${one[StateDirectory]:-}" /var/lib
  dirs_of "${one[LogsDirectory]:-}" /var/log
  dirs_of "${one[RuntimeDirectory]:-}" /run)
for p in "${rw_paths[@]}"; do
  case $p in
    -*) p=${p#-}; [ -e "$p" ] || continue ;;
    *) [ -e "$p" ] || { echo "unit-run: $name: ReadWritePaths=$p does not exist (systemd fails the unit: 226/NAMESPACE)" >&2; exit 226; } ;;
  esac
  writable+=("$p")
done

if yes "${one[PrivateTmp]:-}"; then
  for t in /tmp /var/tmp; do mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$t"; writable+=("$t"); done
fi
if yes "${one[PrivateDevices]:-}"; then
  hostdev=$(mktemp -d /run/unit-run-dev.XXXXXX 2>/dev/null || mktemp -d /tmp/unit-run-dev.XXXXXX)
  mount --rbind /dev "$hostdev"
  mount -t tmpfs -o mode=0755,nosuid,noexec tmpfs /dev
  for n in null zero full random urandom tty ptmx; do
    [ -e "$hostdev/$n" ] || continue
    touch "/dev/$n"; mount --bind "$hostdev/$n" "/dev/$n"
  done
  mkdir -p /dev/pts /dev/shm
  mount --rbind "$hostdev/pts" /dev/pts 2>/dev/null || true
  mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
  ln -s /proc/self/fd /dev/fd; ln -s /proc/self/fd/0 /dev/stdin; ln -s /proc/self/fd/1 /dev/stdout; ln -s /proc/self/fd/2 /dev/stderr
  ln -s /run/systemd/journal/dev-log /dev/log
  umount -l "$hostdev"; rmdir "$hostdev"
fi
if [ -n "${one[ProtectProc]:-}${one[ProcSubset]:-}" ]; then
  opts=""
  case ${one[ProtectProc]:-default} in default) ;; *) opts+="hidepid=${one[ProtectProc]}," ;; esac
  case ${one[ProcSubset]:-all} in all) ;; *) opts+="subset=${one[ProcSubset]}," ;; esac
  mount -t proc -o "nosuid,nodev,noexec,${opts%,}" proc /proc
fi
inaccessible() {  # make PATH empty and unreadable, as systemd's inaccessible nodes do
  if [ -d "$1" ]; then mount -t tmpfs -o mode=000,ro tmpfs "$1"
  elif [ -e "$1" ]; then mount --bind /dev/null "$1" 2>/dev/null || true; fi
}
case ${one[ProtectHome]:-no} in
  yes | true) for h in /home /root /run/user; do inaccessible "$h"; done ;;
  read-only) for h in /home /root /run/user; do [ -d "$h" ] && mount --bind "$h" "$h" && mount -o remount,bind,ro "$h"; done ;;
  tmpfs) for h in /home /root /run/user; do [ -d "$h" ] && mount -t tmpfs -o mode=0755,ro tmpfs "$h"; done ;;
esac
yes "${one[ProtectKernelModules]:-}" && for m in /usr/lib/modules /lib/modules; do [ -d "$m" ] && inaccessible "$m"; done
for p in "${no_paths[@]}"; do p=${p#-}; inaccessible "$p"; done

# Writable paths become mount points of their own before everything else turns read-only.
for p in "${writable[@]}"; do mountpoint -q "$p" || mount --bind "$p" "$p"; done
under() { local p; for p in "${writable[@]}"; do case "$1/" in "$p"/*) return 0 ;; esac; done; return 1; }
readonly_tree() {  # readonly_tree PREFIX...: remount every mount at or below each PREFIX read-only, except writable ones
  local target prefix
  while read -r target; do
    target=$(printf '%b' "$target")   # mountinfo escapes spaces as \040
    for prefix in "$@"; do
      if [ "$prefix" != / ]; then case "$target/" in "$prefix"/*) ;; *) continue ;; esac; fi
      if [ "$prefix" = / ]; then case "$target/" in /proc/* | /sys/* | /dev/*) continue ;; esac; fi
      under "$target" || mount -o remount,bind,ro "$target" || echo "unit-run: $name: cannot make $target read-only" >&2
    done
  done < <(awk '{print $5}' /proc/self/mountinfo)
}
case ${one[ProtectSystem]:-no} in
  strict) readonly_tree / ;;
  full) for p in /usr /boot /efi /etc; do [ -d "$p" ] && { mountpoint -q "$p" || mount --bind "$p" "$p"; }; done; readonly_tree /usr /boot /efi /etc ;;
  yes | true) for p in /usr /boot /efi; do [ -d "$p" ] && { mountpoint -q "$p" || mount --bind "$p" "$p"; }; done; readonly_tree /usr /boot /efi ;;
esac
for p in "${ro_paths[@]}"; do p=${p#-}; [ -e "$p" ] && { mountpoint -q "$p" || mount --bind "$p" "$p"; } && readonly_tree "$p"; done
if yes "${one[ProtectKernelTunables]:-}"; then
  [ -d /proc/sys ] && mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys
  readonly_tree /sys
elif yes "${one[ProtectControlGroups]:-}"; then
  readonly_tree /sys/fs/cgroup
fi

# ---- credentials, capabilities and environment.
sp=(setpriv --reuid="$uid" --regid="$gid" --groups="$groups")
if [ -n "${one[CapabilityBoundingSet]+x}" ]; then
  bnd=$(caps "${one[CapabilityBoundingSet]}")
  sp+=(--bounding-set="-all${bnd:+,$bnd}")
fi
amb=$(caps "${one[AmbientCapabilities]:-}")
sp+=(--inh-caps="-all${amb:+,$amb}" --ambient-caps="-all${amb:+,$amb}")
yes "${one[NoNewPrivileges]:-}" && sp+=(--no-new-privs)
if [ -n "${one[SecureBits]:-}" ]; then
  bits=""; for b in ${one[SecureBits]}; do bits+=",+${b//-/_}"; done
  sp+=(--securebits="${bits#,}")
fi
envs=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "HOME=$home" "USER=$user" "LOGNAME=$user" "SHELL=$shell" "INVOCATION_ID=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')")
[ -n "${one[StateDirectory]:-}" ] && envs+=("STATE_DIRECTORY=$(dirs_of "${one[StateDirectory]}" /var/lib | paste -sd: -)")
[ -n "${one[LogsDirectory]:-}" ] && envs+=("LOGS_DIRECTORY=$(dirs_of "${one[LogsDirectory]}" /var/log | paste -sd: -)")
[ -n "${one[RuntimeDirectory]:-}" ] && envs+=("RUNTIME_DIRECTORY=$(dirs_of "${one[RuntimeDirectory]}" /run | paste -sd: -)")
[ -n "${one[ConfigurationDirectory]:-}" ] && envs+=("CONFIGURATION_DIRECTORY=$(dirs_of "${one[ConfigurationDirectory]}" /etc | paste -sd: -)")
envs+=("${env_list[@]}")
[ -n "${one[UMask]:-}" ] && umask "${one[UMask]}"
if [ -n "${one[LimitNOFILE]:-}" ] && ! ulimit -n "${one[LimitNOFILE]}" 2>/dev/null; then
  # A container may not let even root raise its hard limit (no CAP_SYS_RESOURCE).
  echo "unit-run: $name: not emulated: LimitNOFILE=${one[LimitNOFILE]} (this host allows $(ulimit -Hn)); running with $(ulimit -Hn)" >&2
  ulimit -n "$(ulimit -Hn)"
fi
cd "${one[WorkingDirectory]:-${home:-/}}" 2>/dev/null || cd "${one[WorkingDirectory]#-}" || { echo "unit-run: $name: WorkingDirectory=${one[WorkingDirectory]} (systemd fails the unit: 200/CHDIR)" >&2; exit 200; }

for cmd in "${pre[@]}"; do
  tolerate=no
  case $cmd in -*) tolerate=yes; cmd=${cmd#-} ;; esac
  read -ra argv <<<"$cmd"
  rc=0
  "${sp[@]}" env -i "${envs[@]}" "${argv[@]}" || rc=$?
  if [ "$rc" -ne 0 ] && [ "$tolerate" = no ]; then
    echo "unit-run: $name: ExecStartPre=$cmd failed (exit $rc): the unit does not start" >&2
    exit "$rc"
  fi
done
read -ra argv <<<"$execstart"
exec "${sp[@]}" env -i "${envs[@]}" "${argv[@]}"
