#!/usr/bin/env bash
# The audit commands on real inputs:
#   1. `smtpguard audit-passwords` on a Dovecot passwd-file whose hashes Dovecot itself made
#      (`doveadm pw`, every scheme the audit reads), with weak accounts of each kind and strong
#      ones, and on a shadow file (yescrypt, SHA-512, locked, blank): the right accounts, the
#      right rules, never a password unless asked, the exit statuses.
#   2. `smtpguard check-password` as a password-change hook: standard input, pam_exec's
#      NUL-terminated password with PAM_USER, JSON, exit statuses.
#
# Environment: SMTPGUARD_BIN (default .build/debug/smtpguard). Prints PASS/FAIL lines and
# "N passed, N failed"; exits non-zero when a check failed.
set -uo pipefail

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
bash scripts/install-deps.sh || { echo "audit: cannot install the peers"; exit 1; }
BIN="${SMTPGUARD_BIN:-$ROOT/.build/debug/smtpguard}"
[ -x "$BIN" ] || swift build --product smtpguard >/dev/null || { echo "audit: build failed"; exit 1; }

WORK=$(mktemp -d /tmp/smtpguard-audit.XXXXXX)
. tests/integration/checks.sh
cleanup() {
  if [ "$failed" -gt 0 ] || [ -n "${KEEP_WORK:-}" ]; then echo "audit: files kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# jq-free JSON reading: json FILE EXPRESSION (Python, the value of EXPRESSION on `r`).
json() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# ---------------------------------------------------------------------------------------
# 1. audit-passwords
SCHEMES="SHA512-CRYPT SHA256-CRYPT BLF-CRYPT MD5-CRYPT DES-CRYPT SSHA256 SSHA512 PLAIN"
: >"$WORK/users"
: >"$WORK/secrets"
for scheme in $SCHEMES; do
  s=$(tr 'A-Z-' 'a-z_' <<<"$scheme")
  strong="Strong-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
  # name password: made from the username, on the bots' list, in password.lst, strong.
  for entry in "u_$s u_${s}123" "d_$s 123456" "w_$s dragon" "s_$s $strong"; do
    name=${entry%% *}; password=${entry#* }
    echo "$name:$(doveadm pw -s "$scheme" -p "$password"):1000:1000::/home/$name::" >>"$WORK/users"
    [ "$password" = 123456 ] || echo "$password" >>"$WORK/secrets"  # (123456 could be a figure in the report)
  done
done
echo "guest:::::::nopassword=y" >>"$WORK/users"
echo "this line is not an account" >>"$WORK/users"

"$BIN" audit-passwords "$WORK/users" --json >"$WORK/report.json" 2>"$WORK/report.err"
status=$?
check "audit-passwords: exit status 2 (guessable accounts)" [ "$status" -eq 2 ]
check "every scheme's hash is read (no account unreadable)" [ "$(json "$WORK/report.json" 'r["summary"]["unreadable"]')" = 0 ]
result() { json "$WORK/report.json" "next(a['result'] + ' ' + a.get('rule', '') for a in r['accounts'] if a['username'] == '$1')"; }
for scheme in $SCHEMES; do
  s=$(tr 'A-Z-' 'a-z_' <<<"$scheme")
  check "$scheme: \${username}123, 123456 and dragon found by their rules, the strong one not" \
    bash -c '[ "$1" = "guessable derived_from_username" ] && [ "$2" = "guessable default_list" ] && [ "$3" = "guessable wordlist" ] && [ "$4" = "not_guessed " ]' _ \
    "$(result "u_$s")" "$(result "d_$s")" "$(result "w_$s")" "$(result "s_$s")"
done
check "nopassword is guessable; the broken line is named by its number" \
  bash -c '[ "$1" = "guessable no_password_needed" ] && [ "$2" = "[34]" ]' _ "$(result guest)" "$(json "$WORK/report.json" '[p["line"] for p in r["problems"]]')"
check "no password in the report" bash -c '! grep -qFf "$1" "$2" "$3"' _ "$WORK/secrets" "$WORK/report.json" "$WORK/report.err"
"$BIN" audit-passwords "$WORK/users" --show-passwords >"$WORK/shown.txt"
check "--show-passwords shows the guessed ones (and still not the strong ones)" \
  bash -c 'grep -q "u_sha512_crypt.*password: u_sha512_crypt123" "$1" && ! grep -q "Strong-" "$1"' _ "$WORK/shown.txt"
text=$("$BIN" audit-passwords "$WORK/users" 2>/dev/null)
check "the table names the scheme, the line and the rule" grep -q "FAIL  w_blf_crypt *[0-9]* *BLF-CRYPT *guessable: in the common-password list password.lst" <<<"$text"

grep '^s_' "$WORK/users" >"$WORK/strong"
"$BIN" audit-passwords "$WORK/strong" >/dev/null 2>&1
check "only strong accounts: exit status 0" [ $? -eq 0 ]
"$BIN" audit-passwords "$WORK/strong" --time-per-account 1ms --json >"$WORK/slow.json" 2>/dev/null
status=$?
check "an account not finished in time: exit status 1 and it says how far it got" \
  bash -c '[ "$1" -eq 1 ] && [ "$2" -gt 0 ]' _ "$status" "$(json "$WORK/slow.json" 'r["summary"]["unfinished"]')"

# A shadow file: crypt(3) strings as passwd(1) writes them (yescrypt, Debian's default, and SHA-512).
python3 -W ignore - "$WORK/shadow" <<'PY'
import crypt, sys
lines = [
    "root:!:19000:0:99999:7:::",
    "daemon:*:19000:0:99999:7:::",
    "anna:" + crypt.crypt("anna12", "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$") + ":19000:0:99999:7:::",
    "ben:" + crypt.crypt("password", crypt.mksalt(crypt.METHOD_SHA512)) + ":19000:0:99999:7:::",
    "carl:" + crypt.crypt("Tall-Lighthouse-47-Orbit", crypt.mksalt(crypt.METHOD_SHA512)) + ":19000:0:99999:7:::",
    "dora::19000:0:99999:7:::",
]
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY
"$BIN" audit-passwords "$WORK/shadow" --json >"$WORK/report.json" 2>/dev/null
check "shadow: yescrypt anna12 and SHA-512 'password' found, locked skipped, blank guessable, the strong one not" \
  bash -c '[ "$1" = "guessable derived_from_username" ] && [ "$2" = "guessable default_list" ] && [ "$3" = "skipped " ] && [ "$4" = "guessable blank" ] && [ "$5" = "not_guessed " ]' _ \
  "$(result anna)" "$(result ben)" "$(result root)" "$(result dora)" "$(result carl)"
check "shadow: the schemes are named" [ "$(json "$WORK/report.json" '[a.get("scheme") for a in r["accounts"]][2:5]')" = "['YESCRYPT', 'SHA512-CRYPT', 'SHA512-CRYPT']" ]

out=$("$BIN" audit-passwords "$WORK/no-such-file" 2>&1); status=$?
check "a file that cannot be read: exit status 3, and the file named" bash -c '[ "$1" -eq 3 ] && grep -q "cannot read .*no-such-file" <<<"$2"' _ "$status" "$out"

# ---------------------------------------------------------------------------------------
# 2. check-password
verdict() { local input=$1; shift; out=$(printf '%b' "$input" | "$BIN" check-password "$@" 2>&1); status=$?; }
verdict 'alice123\n' --user alice
check "check-password: \${username}123 refused (exit 2), and why" bash -c '[ "$1" -eq 2 ] && [ "$2" = "refused: made from the username (\${username}123)" ]' _ "$status" "$out"
out=$(printf 'Correct-Horse-9-Battery\0' | PAM_USER=admin "$BIN" check-password 2>&1); status=$?
check "pam_exec's NUL-terminated password for PAM_USER=admin: accepted (exit 0)" bash -c '[ "$1" -eq 0 ] && grep -q "^accepted: .*at least 15 characters" <<<"$2"' _ "$status" "$out"
verdict 'Short-Pass-12\n' --user root
check "an administrator's 13-character password refused as too short" bash -c '[ "$1" -eq 2 ] && [ "$2" = "refused: shorter than 15 characters" ]' _ "$status" "$out"
verdict 'Sunshine\n' --json
check "a word of password.lst refused, in JSON" bash -c '[ "$1" -eq 2 ] && grep -q "\"rule\":\"wordlist\"" <<<"$2" && ! grep -q Sunshine <<<"$2"' _ "$status" "$out"
verdict '\n'
check "a blank password refused" bash -c '[ "$1" -eq 2 ] && [ "$2" = "refused: the password is blank" ]' _ "$status" "$out"
out=$("$BIN" check-password </dev/null 2>&1); status=$?
check "no password at all: exit 3 and a clear error" bash -c '[ "$1" -eq 3 ] && grep -q "no password on standard input" <<<"$2"' _ "$status" "$out"
out=$(echo "x" | "$BIN" check-password --wordlist "$WORK/nope.lst" 2>&1); status=$?
check "a wordlist that cannot be read: exit 3, named" bash -c '[ "$1" -eq 3 ] && grep -q "cannot read the wordlist .*nope.lst" <<<"$2"' _ "$status" "$out"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
