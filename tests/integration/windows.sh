#!/usr/bin/env bash
# Windows Security events, against the references:
#   1. The real Security log ../shared/testdata/evtx/logon-4624-4625.evtx (3 × 4624, 1 × 4625),
#      read in place: `smtpguard windows dump` agrees with python-evtx record for record
#      (tests/tools/evtx-compare.py; a dump with one value changed is caught: its control), and
#      `replay` reports its logons (no address in them: nothing for the engine, said so).
#   2. Larger logs built from its real chunks (tests/tools/evtx-build.py repeat: the chunk
#      copied, record ids, header and checksums rewritten), read whole and still agreeing with
#      python-evtx; one chunk damaged: reported with its number and offset, skipped, the rest read.
#   3. A password spray as Event XML made from python-evtx's rendering of the real records
#      (evtx-build.py xml --check compares its shape to python-evtx's), and the same events as
#      Winlogbeat and NXLog JSON: each bans the sprayer and flags the account it got into, the
#      same bans in all three forms; a log of successes only bans nobody (in the same run as
#      the spray that does).
#   4. What replay does not read: a pcap made by tcpdump, gzip, UTF-16, random bytes, prose:
#      each an error saying what it looked like; a mail log without attempts says so.
#   5. `smtpguard watch` with windows sources (UDP and TCP syslog listeners, a Winlogbeat file)
#      in a network namespace with nftables: forwarded 4625/4771 events ban their sources in
#      the kernel's set, events carry source "windows"; logons without an address and from a
#      trusted network ban nobody, while the same listener's next attacker is banned.
# Environment: SMTPGUARD_BIN. Prints PASS/FAIL lines and "N passed, N failed".
set -uo pipefail
. "$(dirname "$0")/lib.sh"
suite_begin windows

SAMPLE="$ROOT/../shared/testdata/evtx/logon-4624-4625.evtx"
BUILD="python3 $ROOT/tests/tools/evtx-build.py"
COMPARE="python3 $ROOT/tests/tools/evtx-compare.py"
NS="sgwin$$"
at_exit 'ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null; ip netns del "$NS" 2>/dev/null'
[ -r "$SAMPLE" ] || suite_abort "the sample $SAMPLE is readable"
python3 -c 'import Evtx.Evtx' || suite_abort "python-evtx is installed (scripts/install-deps.sh)"

# ---------------------------------------------------------------------------------------
# 1. The real sample.
"$BIN" windows dump "$SAMPLE" --format xml >"$WORK/sample.xml" 2>"$WORK/sample.err"
check "windows dump reads the sample's 4 records" eval 'count_is 4 "$(cat "$WORK/sample.xml")" "^<Event " && has "$(cat "$WORK/sample.err")" "^4 records, 0 damaged chunks"'
check "the dump agrees with python-evtx record for record" $COMPARE "$SAMPLE" "$WORK/sample.xml"
sed '1s/>IEUser</>IEUserX</' "$WORK/sample.xml" >"$WORK/sample-changed.xml"
check "control: a dump with one value changed does not agree" eval '! $COMPARE "$SAMPLE" "$WORK/sample-changed.xml" >/dev/null'
out=$("$BIN" replay "$SAMPLE" 2>&1)
check "replay names the sample's kind and says it holds no attempt for the engine" eval 'has -F "$out" "logon-4624-4625.evtx: Windows Security events (.evtx), 4 events, no AUTH attempt in it"'
check "replay's logon summary: IEUser failed once and logged on twice, interactively, with a wrong password" \
  eval 'has -E "$out" "^  IEUser \(MSEDGEWIN10\) +1 +2 " && has "$out" "logon types: interactive 3" && has "$out" "why logons failed: wrong password 1" && has "$out" "events by ID: 4624 × 3, 4625 × 1"'
json=$("$BIN" replay --json "$SAMPLE")
check "replay --json: the same summary for programs" python3 -c '
import json, sys
r = json.loads(sys.argv[1]); w = r["windows"]
assert w["event_ids"] == {"4624": 3, "4625": 1}, w["event_ids"]
assert w["logons"] == 3 and w["without_address"] == 3, w
a = [x for x in w["accounts"] if x["account"] == "MSEDGEWIN10\\IEUser"][0]
assert a["failures"] == 1 and a["successes"] == 2 and a["reasons"] == {"wrong password": 1}, a
assert r["inputs"][0]["kind"] == "Windows Security events (.evtx)" and r["attempts"] == 0, r["inputs"]' "$json"

# ---------------------------------------------------------------------------------------
# 2. Larger files from the real chunk; one chunk damaged.
$BUILD repeat "$SAMPLE" "$WORK/big.evtx" --chunks 40 >/dev/null || suite_abort "evtx-build.py repeat made a 40-chunk file"
"$BIN" windows dump "$WORK/big.evtx" --format xml >"$WORK/big.xml" 2>"$WORK/big.err"
check "a 40-chunk file: 160 records dumped" eval 'count_is 160 "$(cat "$WORK/big.xml")" "^<Event " && has "$(cat "$WORK/big.err")" "^160 records, 0 damaged"'
check "… agreeing with python-evtx record for record (record ids renumbered)" $COMPARE "$WORK/big.evtx" "$WORK/big.xml"
$BUILD damage "$WORK/big.evtx" "$WORK/damaged.evtx" --chunk 7 >/dev/null || suite_abort "evtx-build.py damage changed chunk 7"
offset=$(printf '0x%x' $((4096 + 7 * 65536)))
"$BIN" windows dump "$WORK/damaged.evtx" --format xml >"$WORK/damaged.xml" 2>"$WORK/damaged.err"
check "a damaged chunk is reported with its number and offset, and the other 39 chunks are read" \
  eval 'has -i "$(cat "$WORK/damaged.err")" "chunk 7.*$offset" && count_is 156 "$(cat "$WORK/damaged.xml")" "^<Event " && has "$(cat "$WORK/damaged.err")" "^156 records, 1 damaged"'
out=$("$BIN" replay "$WORK/damaged.evtx" 2>&1)
check "replay of the damaged file says which chunk it skipped and counts the rest" eval 'has -i "$out" "chunk 7.*$offset" && has "$out" "156 events"'

# ---------------------------------------------------------------------------------------
# 3. A spray, as Event XML, Winlogbeat and NXLog JSON.
$BUILD xml "$WORK/spray.xml" --events 60 --scenario spray --check >"$WORK/spray-build.txt" 2>&1 || { cat "$WORK/spray-build.txt"; suite_abort "evtx-build.py made the spray's Event XML in python-evtx's shape"; }
$BUILD xml "$WORK/spray-root.xml" --events 60 --scenario spray --root >/dev/null || suite_abort "evtx-build.py made the spray as Event Viewer's Save as XML"
$BUILD json "$WORK/spray-beat.ndjson" --format winlogbeat --events 60 --scenario spray >/dev/null || suite_abort "evtx-build.py made the spray as Winlogbeat JSON"
$BUILD json "$WORK/spray-nx.json" --format nxlog --events 60 --scenario spray >/dev/null || suite_abort "evtx-build.py made the spray as NXLog JSON"
bans() { "$BIN" replay --json "$1" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(" ".join(sorted({b["scope"]+":"+b["key"] for b in r["bans"]})), "|", " ".join(sorted({c["username"]+"@"+c["client"] for c in r["compromised"]})))'; }
xml_bans=$(bans "$WORK/spray.xml")
echo "  spray (Event XML): bans and compromised: $xml_bans"
check "the spray in Event XML bans its source and flags the account it got into" eval 'has -E "$xml_bans" "ip:[0-9.]+ .*[|] [^ ]+@[0-9.]+"'
check "Event Viewer's Save as XML form gives the same" test "$(bans "$WORK/spray-root.xml")" = "$xml_bans"
check "Winlogbeat's JSON of the same events gives the same bans" test "$(bans "$WORK/spray-beat.ndjson")" = "$xml_bans"
check "NXLog's JSON of the same events gives the same bans" test "$(bans "$WORK/spray-nx.json")" = "$xml_bans"
grep -v '<EventID>4625<' "$WORK/spray.xml" >"$WORK/successes.xml" || true
python3 - "$WORK/spray.xml" "$WORK/successes.xml" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
events = re.findall(r"<Event[ >].*?</Event>", text, re.S)
open(sys.argv[2], "w").write("\n".join(e for e in events if "<EventID>4624<" in e or ">4624</EventID>" in e))
PY
out=$("$BIN" replay "$WORK/successes.xml")
check "successes only ban nobody (while the spray above, in the same run, is banned)" eval 'has "$out" "Bans the configured policy would have issued: 0" && has "$out" "[1-9][0-9]* succeeded"'

# ---------------------------------------------------------------------------------------
# 4. What replay does not read.
timeout 10 tcpdump -i lo -c 1 -w "$WORK/capture.pcap" 'tcp port 9' >"$WORK/tcpdump.log" 2>&1 &
tcpdump_pid=$!
wait_for 5 grep -q "listening on" "$WORK/tcpdump.log"
for _ in 1 2 3; do (exec 3<>/dev/tcp/127.0.0.1/9) 2>/dev/null; done
wait "$tcpdump_pid" 2>/dev/null
require "tcpdump captured a packet into a pcap file" test -s "$WORK/capture.pcap"
gzip -c "$SAMPLE" >"$WORK/security.evtx.gz"
printf '<\0E\0v\0e\0n\0t\0>\0' | { printf '\xff\xfe'; cat; } >"$WORK/utf16.xml"
head -c 4096 /dev/urandom | { printf '\x00\x01\x02\x03'; cat; } >"$WORK/random.bin"
printf 'Dear admin,\nthe mail server seems slow today.\n' >"$WORK/prose.txt"
refused() {  # refused FILE WHAT: replay exits non-zero and says WHAT and which formats it reads
  local out
  if out=$("$BIN" replay "$1" 2>&1); then echo "replay accepted $1: $out"; return 1; fi
  has -E "$out" "$2" && has "$out" "replay reads .*\.evtx files"
}
check "a pcap capture is refused as one" refused "$WORK/capture.pcap" "pcap packet capture"
check "a gzip file is refused as one, with how to read it" refused "$WORK/security.evtx.gz" "gzip-compressed data \(give it uncompressed"
check "UTF-16 (PowerShell's >) is refused with how to convert it" refused "$WORK/utf16.xml" "UTF-16 text"
check "random bytes are refused, with the first bytes shown" refused "$WORK/random.bin" "binary data of no known format \(it starts with 00 01 02 03"
check "prose is refused, with its first line" refused "$WORK/prose.txt" "no line has a syslog or log time prefix.*Dear admin"
echo "Nov 23 02:03:14 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]" >"$WORK/quiet.log"
out=$("$BIN" replay "$WORK/quiet.log" 2>&1)
check "a mail log without attempts is read and says so" eval 'has "$out" "quiet.log: text log, 1 lines, no AUTH attempt in it"'

# ---------------------------------------------------------------------------------------
# 5. watch: forwarded events into nftables, in a network namespace of our own.
ip netns add "$NS" || suite_abort "a network namespace was created"
ip netns exec "$NS" ip link set lo up
cat >"$WORK/watch.yaml" <<EOF
admin:
  listen: ""
watch:
  sources:
    - "windows syslog:udp:127.0.0.1:15140"
    - "windows syslog:tcp:127.0.0.1:15141"
    - "windows file:$WORK/winlogbeat.ndjson"
  positions: ""
  from_start: true
  poll_interval: 50ms
state:
  path: ""
events:
  path: $WORK/events.jsonl
firewall:
  backend: nftables
guard:
  trusted_networks: [198.51.100.0/24]
  limits:
    ip_failures_short: 3
  bans:
    ip: 1h
EOF
: >"$WORK/winlogbeat.ndjson"
check "config check accepts the windows sources" "$BIN" config check "$WORK/watch.yaml"
start_bg "$WORK/watch.log" ip netns exec "$NS" "$BIN" watch --config "$WORK/watch.yaml" --log-level debug
WATCH_PID=$STARTED_PID
require "the watcher creates its nftables table" wait_for 10 bash -c 'ip netns exec "$1" nft list table inet smtpguard >/dev/null 2>&1' _ "$NS"
send() {  # send udp|tcp|tcp-octets PORT LINE...: from inside the namespace
  ip netns exec "$NS" python3 - "$@" <<'PY'
import socket, sys, time
kind, port, lines = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
if kind == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for line in lines: s.sendto(line.encode(), ("127.0.0.1", port))
else:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    for line in lines:
        data = line.encode()
        s.sendall(b"%d " % len(data) + data if kind == "tcp-octets" else data + b"\n")
    time.sleep(0.2)
s.close()
PY
}
nxlog() {  # nxlog ID USER IP: an NXLog to_json() event behind a syslog prefix
  printf '<14>Dec  7 10:00:00 EXCH01 nxlog: {"EventTime":"2026-12-07 10:00:00","Hostname":"EXCH01","EventID":%s,"SourceName":"Microsoft-Windows-Security-Auditing","Channel":"Security","TargetUserName":"%s","TargetDomainName":"CORP","IpAddress":"%s","IpPort":"50000","LogonType":8,"Status":"0xc000006d","SubStatus":"0xc000006a"}' "$1" "$2" "$3"
}
inset() { ip netns exec "$NS" nft list set inet smtpguard v4 2>/dev/null | grep -q "$1 timeout"; }
# Not banned: failures without an address and from a trusted network, successes; then, on the
# same listener, an attacker that is: once it is banned, the lines before it were read.
send udp 15140 "$(nxlog 4625 alice -)" "$(nxlog 4625 alice -)" "$(nxlog 4625 alice -)" "$(nxlog 4625 alice -)" \
  "$(nxlog 4625 bob 198.51.100.9)" "$(nxlog 4625 bob 198.51.100.9)" "$(nxlog 4625 bob 198.51.100.9)" "$(nxlog 4625 bob 198.51.100.9)" \
  "$(nxlog 4624 carol 192.0.2.60)" "$(nxlog 4624 carol 192.0.2.60)" "$(nxlog 4624 carol 192.0.2.60)" "$(nxlog 4624 carol 192.0.2.60)"
send udp 15140 "$(nxlog 4625 admin 192.0.2.50)" "$(nxlog 4625 guest 192.0.2.50)" "$(nxlog 4625 test 192.0.2.50)" "$(nxlog 4625 info 192.0.2.50)"
check "UDP: NXLog's 4625s ban their source in nftables" wait_for 10 inset 192.0.2.50
check "… and are events with source windows" eval '[ "$(events "$WORK/events.jsonl" event=auth source=windows client_ip=192.0.2.50 outcome=failure)" -eq 4 ]'
check "no ban for failures without an address, from a trusted network, or for successes (read before 192.0.2.50, which is banned)" \
  eval 'rules=$(ip netns exec "$NS" nft list ruleset); lacks "$rules" "198\.51\.100\.9|192\.0\.2\.60" &&
    [ "$(events "$WORK/events.jsonl" event=auth source=windows client_ip=198.51.100.9 reasons=trusted_network)" -eq 4 ] &&
    [ "$(events "$WORK/events.jsonl" event=auth source=windows client_ip=192.0.2.60 outcome=success)" -eq 4 ] &&
    [ "$(events "$WORK/events.jsonl" username=alice)" -eq 0 ]'
kerberos() {  # kerberos USER IP: a 4771 as Event XML on one line
  printf "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><Provider Name='Microsoft-Windows-Security-Auditing'/><EventID>4771</EventID><TimeCreated SystemTime='2026-12-07T10:00:01.0000000Z'/><Channel>Security</Channel><Computer>DC01</Computer></System><EventData><Data Name='TargetUserName'>%s</Data><Data Name='ServiceName'>krbtgt/CORP</Data><Data Name='Status'>0x18</Data><Data Name='IpAddress'>::ffff:%s</Data><Data Name='IpPort'>50001</Data></EventData></Event>" "$1" "$2"
}
send tcp-octets 15141 "$(kerberos dave 192.0.2.51)" "$(kerberos dave 192.0.2.51)" "$(kerberos dave 192.0.2.51)" "$(kerberos dave 192.0.2.51)"
check "TCP, octet-counted: Kerberos 4771 failures (::ffff: addresses) ban their source" wait_for 10 inset 192.0.2.51
send tcp 15141 "$(nxlog 4625 erin 192.0.2.52)" "$(nxlog 4625 erin 192.0.2.52)" "$(nxlog 4625 erin 192.0.2.52)" "$(nxlog 4625 erin 192.0.2.52)"
check "TCP, newline-framed: the same" wait_for 10 inset 192.0.2.52
$BUILD json "$WORK/beat.ndjson" --format winlogbeat --events 40 --scenario spray >/dev/null
cat "$WORK/beat.ndjson" >>"$WORK/winlogbeat.ndjson"
sprayer=$(bans "$WORK/beat.ndjson" | grep -oE 'ip:[0-9.]+' | head -1 | cut -d: -f2)
check "a Winlogbeat file: the sprayer ($sprayer) is banned" wait_for 10 inset "${sprayer:-none}"
stop_pid "$WATCH_PID" INT 30

suite_end
