# Sourced by the integration scripts: the PASS / FAIL counting and the waits they share.
# Each script ends with: echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]
passed=0
failed=0

check() {  # check NAME CONDITION-COMMAND...: PASS or FAIL, counted
  local name=$1
  shift
  if "$@"; then echo "PASS $name"; passed=$((passed + 1)); else echo "FAIL $name"; failed=$((failed + 1)); fi
}

wait_for() {  # wait_for SECONDS COMMAND...: true once COMMAND succeeds
  local deadline=$((SECONDS + $1))
  shift
  while [ $SECONDS -lt $deadline ]; do "$@" && return 0; sleep 0.1; done
  return 1
}

wait_port() {  # wait_port PORT: true once 127.0.0.1:PORT accepts (10 s at most)
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

# The leak sweeps. auth_secrets MECH USER PASSWORD prints what a client sends for one login,
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
