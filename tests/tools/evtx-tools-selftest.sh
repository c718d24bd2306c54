#!/usr/bin/env bash
# Checks the Windows event log test tools on their own, without SMTPGuard (seconds, files in a
# temporary directory under /tmp): evtx-build.py repeat (with and without --fill), damage and
# verify on the real sample, xml --check on both forms and on a broken file (must fail), json
# in both forms, and evtx-compare.py against a dump made from python-evtx's own output (must
# agree) and one with a value changed (must fail).   tests/tools/evtx-tools-selftest.sh
set -euo pipefail
cd "$(dirname "$0")"
SAMPLE=${EVTX_SAMPLE:-/work/shared/testdata/evtx/logon-4624-4625.evtx}
W=$(mktemp -d /tmp/smtpguard-evtx-tools.XXXXXX)
trap 'rm -rf "$W"' EXIT
fail() { echo "evtx-tools-selftest: FAILED: $*" >&2; exit 1; }
must_fail() { if "$@" >"$W/out" 2>&1; then fail "expected a failure: $*"; fi; }

python3 evtx-build.py repeat "$SAMPLE" "$W/r.evtx" --chunks 5 >/dev/null
python3 evtx-build.py verify "$W/r.evtx" --expect 20 --xml-ids
python3 evtx-build.py repeat "$SAMPLE" "$W/f.evtx" --chunks 3 --fill >/dev/null 2>&1
python3 evtx-build.py verify "$W/f.evtx" --expect 225 --xml-ids
python3 evtx-build.py damage "$W/r.evtx" "$W/d.evtx" --chunk 2 >/dev/null
must_fail python3 evtx-build.py verify "$W/d.evtx"
must_fail python3 evtx-build.py verify /etc/hostname
must_fail python3 evtx-build.py repeat "$W/missing.evtx" "$W/x.evtx" --chunks 2

python3 evtx-build.py xml "$W/spray.xml" --events 200 --scenario spray --check 2>/dev/null
python3 evtx-build.py xml "$W/botnet.xml" --events 200 --scenario botnet --root --check 2>/dev/null
sed 's|<Data Name="KeyLength">[^<]*</Data>||' "$W/spray.xml" >"$W/broken.xml"
must_fail python3 evtx-build.py check "$W/broken.xml"
python3 evtx-build.py json "$W/w.json" --format winlogbeat --events 50 --scenario spray 2>/dev/null
python3 evtx-build.py json "$W/n.json" --format nxlog --events 50 --scenario botnet 2>/dev/null
python3 - "$W/w.json" "$W/n.json" <<'PY'
import json, sys
w = [json.loads(l) for l in open(sys.argv[1])]
n = [json.loads(l) for l in open(sys.argv[2])]
assert len(w) == 50 and len(n) == 50
assert w[-1]["event"]["outcome"] == "success" and w[0]["winlog"]["event_id"] == 4625
assert len({e["source"]["ip"] for e in w}) == 1 and len({e["user"]["name"] for e in w}) > 10
assert all(e["EventID"] == 4625 and isinstance(e["LogonType"], int) for e in n)
assert len({e["IpAddress"] for e in n}) > 10 and len({e["TargetUserName"] for e in n}) == 1
PY

python3 - "$W/r.evtx" "$W/dump.xml" "$W/dump-changed.xml" <<'PY'
import re, sys, Evtx.Evtx as evtx
with evtx.Evtx(sys.argv[1]) as log, open(sys.argv[2], "w") as ok, open(sys.argv[3], "w") as bad:
    for i, r in enumerate(log.records()):
        x = re.sub(r'SystemTime="(\S+) (\S+)\+00:00"', r'SystemTime="\1T\2Z"', r.xml().replace("\n", ""))
        ok.write(x + "\n")
        bad.write((x.replace("<Computer>MSEDGEWIN10<", "<Computer>MSEDGEWIN11<") if i == 13 else x) + "\n")
PY
python3 evtx-compare.py "$W/r.evtx" "$W/dump.xml"
must_fail python3 evtx-compare.py "$W/r.evtx" "$W/dump-changed.xml"
grep -q "record 14 .*Computer text" "$W/out" || fail "evtx-compare did not name record 14's Computer: $(cat "$W/out")"
must_fail python3 evtx-compare.py /etc/hostname "$W/dump.xml"
# The damaged file: a dump that skips the damaged chunk, as SMTPGuard's does, agrees with
# --skip-damaged (and not without it).
python3 - "$W/d.evtx" "$W/dump-d.xml" <<'PY'
import re, sys, Evtx.Evtx as evtx
with evtx.Evtx(sys.argv[1]) as log, open(sys.argv[2], "w") as out:
    for c in log.chunks():
        if c.verify():
            for r in c.records():
                out.write(re.sub(r'SystemTime="(\S+) (\S+)\+00:00"', r'SystemTime="\1T\2Z"', r.xml().replace("\n", "")) + "\n")
PY
python3 evtx-compare.py "$W/d.evtx" "$W/dump-d.xml" --skip-damaged 2>/dev/null | grep -qx "16 records agree with python-evtx" || fail "the dump skipping the damaged chunk does not agree"
must_fail python3 evtx-compare.py "$W/d.evtx" "$W/dump-d.xml"
echo "evtx-tools-selftest: ok"
