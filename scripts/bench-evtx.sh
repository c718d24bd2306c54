#!/usr/bin/env bash
# Benchmark of the Windows .evtx reader (BENCHMARKS.md, "Windows event log"), beside the two
# parsers it is checked against, all on the same file in the same run:
#   1. `smtpguard windows dump FILE --format xml > /dev/null`;
#   2. the Rust evtx crate through its Python bindings (PyPI evtx):
#      `for r in PyEvtxParser(FILE, number_of_threads=T).records(): r['data']`, with T = 1 (one
#      thread, like the others) and T = 0 (its default: the library picks the threads by cores);
#   3. python-evtx (`r.xml()` for each record): on a SMALL_MB prefix file only (it is slow) and
#      scaled to the big file's record count, which the table says.
# Wall seconds, records per second and peak resident memory (scripts/measure.py: wait4's
# ru_maxrss). Then the memory flatness check: the dump's peak memory on the SMALL_MB file and on
# the big one. FILE is made here in /tmp by tests/tools/evtx-build.py repeat --fill from the real
# sample's chunk (/work/shared/testdata/evtx/logon-4624-4625.evtx, EVTX_SAMPLE; read in place):
# the chunk filled with copies of its movable records, 75 a chunk, as a busy log's are full
# (EVTX_FILL=0: the chunk as it is, 4 records in its 64 KiB), repeated; removed at the end. Before timing, the dump of the sample must agree with python-evtx
# (tests/tools/evtx-compare.py) and the big file's dump must count every record.
#
#   scripts/bench-evtx.sh [SIZE_MB]      (default 100; the big file's size in MiB, at least 10)
# Environment: SMTPGUARD_BIN (default .build/release/smtpguard, built only when missing),
# SMALL_MB (default 10), EVTX_FILL (default 1), BENCH_RUNS (runs of the dump and of the Rust
# parser, the median reported; default 3; python-evtx runs once), BENCH_TIMEOUT (seconds per
# measured command, default 900),
# BENCH_EVTX_PYTHON_ONLY=1 to leave out SMTPGuard (rows 2 and 3 only: for checking this script
# before `smtpguard windows dump` exists; without it the script stops when the command is missing).
# Output: a Markdown report on stdout (machine, command, tables); progress on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SIZE_MB=${1:-100}
SMALL_MB=${SMALL_MB:-10}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-900}
BENCH_RUNS=${BENCH_RUNS:-3}
PYTHON_ONLY=${BENCH_EVTX_PYTHON_ONLY:-}
FILL=${EVTX_FILL:-1}
fill_flag=()
[ "$FILL" = 1 ] && fill_flag=(--fill)
SAMPLE=${EVTX_SAMPLE:-/work/shared/testdata/evtx/logon-4624-4625.evtx}
BUILD="$ROOT/tests/tools/evtx-build.py"
say() { echo "bench-evtx: $*" >&2; }
die() { say "$*"; exit 1; }
[[ "$SIZE_MB" =~ ^[0-9]+$ ]] && [ "$SIZE_MB" -ge 10 ] && [ "$SIZE_MB" -le 4000 ] || die "SIZE_MB must be a whole number of MiB, 10 to 4000 (got $SIZE_MB)"
[[ "$SMALL_MB" =~ ^[0-9]+$ ]] && [ "$SMALL_MB" -ge 1 ] && [ "$SMALL_MB" -le "$SIZE_MB" ] || die "SMALL_MB must be 1 to SIZE_MB (got $SMALL_MB)"
[[ "$BENCH_RUNS" =~ ^[1-9]$ ]] || die "BENCH_RUNS must be 1 to 9 (got $BENCH_RUNS)"
[ -r "$SAMPLE" ] || die "the sample $SAMPLE is missing (see /work/shared/testdata/evtx/README.md)"
bash scripts/install-deps.sh

WORK=$(mktemp -d /tmp/smtpguard-bench-evtx.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

BIN=""
if [ -z "$PYTHON_ONLY" ]; then
  BIN="${SMTPGUARD_BIN:-$ROOT/.build/release/smtpguard}"
  if [ ! -x "$BIN" ]; then
    say "building the release binary"
    swift build -c release --product smtpguard >/dev/null
  fi
  BIN=$(realpath "$BIN")
  # The command must exist and read the sample, or nothing below means anything.
  if ! "$BIN" windows dump "$SAMPLE" --format xml >"$WORK/sample.xml" 2>"$WORK/sample.err"; then
    die "\`smtpguard windows dump FILE --format xml\` is not available in $BIN, or fails on the sample: $(tail -3 "$WORK/sample.err" | tr '\n' ' ')
(the Swift .evtx parser has not landed in this build? BENCH_EVTX_PYTHON_ONLY=1 runs the Python rows alone)"
  fi
  python3 tests/tools/evtx-compare.py "$SAMPLE" "$WORK/sample.xml" >&2 ||
    die "the dump of the sample disagrees with python-evtx: no benchmark of a wrong reader"
fi

say "building ${SIZE_MB} MiB and ${SMALL_MB} MiB files from the sample's chunks"
python3 "$BUILD" repeat "$SAMPLE" "$WORK/big.evtx" --size-mb "$SIZE_MB" "${fill_flag[@]}" >&2
python3 "$BUILD" repeat "$SAMPLE" "$WORK/small.evtx" --size-mb "$SMALL_MB" "${fill_flag[@]}" >&2
python3 "$BUILD" verify "$WORK/small.evtx" --xml-ids >&2
count() { python3 -c 'import struct,sys; b=open(sys.argv[1],"rb").read(32); print(struct.unpack_from("<Q",b,24)[0]-1)' "$1"; }
big_records=$(count "$WORK/big.evtx")
small_records=$(count "$WORK/small.evtx")
big_chunks=$(( ($(stat -c %s "$WORK/big.evtx") - 4096) / 65536 ))
big_mib=$(python3 -c "import os; print(round(os.path.getsize('$WORK/big.evtx') / 2**20, 1))")
small_mib=$(python3 -c "import os; print(round(os.path.getsize('$WORK/small.evtx') / 2**20, 1))")

cat >"$WORK/rust.py" <<'PY'
import sys
from evtx import PyEvtxParser
n = 0
for r in PyEvtxParser(sys.argv[1], number_of_threads=int(sys.argv[2])).records():
    r["data"]
    n += 1
print(n)
PY
cat >"$WORK/pyevtx.py" <<'PY'
import sys
import Evtx.Evtx as evtx
n = 0
with evtx.Evtx(sys.argv[1]) as log:
    for r in log.records():
        r.xml()
        n += 1
print(n)
PY

# measure NAME RUNS COMMAND...: RUNS runs; scripts/measure.py's JSON of the median one (by wall
# time) in $WORK/NAME.json, with the highest peak memory of all runs; stdout in $WORK/NAME.out
measure() {
  local name=$1 runs=$2 i; shift 2
  say "measuring $name (runs: $runs)"
  for ((i = 1; i <= runs; i++)); do
    MEASURE_STDOUT="$WORK/$name.out" python3 scripts/measure.py timeout "$BENCH_TIMEOUT" "$@" >"$WORK/$name.$i.json"
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["status"] == 0 else 1)' "$WORK/$name.$i.json" ||
      die "$name failed or passed the ${BENCH_TIMEOUT} s bound: $(cat "$WORK/$name.$i.json")"
  done
  python3 - "$WORK/$name" "$runs" >"$WORK/$name.json" <<'PY'
import json, sys
rs = sorted((json.load(open(f"{sys.argv[1]}.{i}.json")) for i in range(1, int(sys.argv[2]) + 1)), key=lambda r: r["seconds"])
m = dict(rs[len(rs) // 2])
m["max_rss_mib"] = max(r["max_rss_mib"] for r in rs)
m["runs"] = [r["seconds"] for r in rs]
print(json.dumps(m))
PY
}
# The dump's stdout goes to /dev/null (exec: measured is the binary itself); its stderr, with the
# closing "N records, M damaged chunks skipped", to a file.
dump() { measure "$1" "$BENCH_RUNS" bash -c 'exec "$0" windows dump "$1" --format xml 2>"$2" >/dev/null' "$BIN" "$2" "$WORK/$1.err"; }
dump_count() { tail -1 "$WORK/$1.err" | sed -n 's/^\([0-9][0-9]*\) records.*/\1/p'; }

if [ -n "$BIN" ]; then
  dump swift-big "$WORK/big.evtx"
  [ "$(dump_count swift-big)" = "$big_records" ] || die "the dump of the big file reports '$(tail -1 "$WORK/swift-big.err")', expected $big_records records"
  dump swift-small "$WORK/small.evtx"
  [ "$(dump_count swift-small)" = "$small_records" ] || die "the dump of the small file reports '$(tail -1 "$WORK/swift-small.err")', expected $small_records records"
fi
measure rust1 "$BENCH_RUNS" python3 "$WORK/rust.py" "$WORK/big.evtx" 1
measure rust0 "$BENCH_RUNS" python3 "$WORK/rust.py" "$WORK/big.evtx" 0
measure pyevtx 1 python3 "$WORK/pyevtx.py" "$WORK/small.evtx"
for n in rust1 rust0; do [ "$(cat "$WORK/$n.out")" = "$big_records" ] || die "$n read $(cat "$WORK/$n.out") records, expected $big_records"; done
[ "$(cat "$WORK/pyevtx.out")" = "$small_records" ] || die "python-evtx read $(cat "$WORK/pyevtx.out") records, expected $small_records"

# --- report -------------------------------------------------------------------------------
command_line=$(for v in SMTPGUARD_BIN SMALL_MB EVTX_FILL BENCH_RUNS BENCH_TIMEOUT BENCH_EVTX_PYTHON_ONLY EVTX_SAMPLE; do
  if [ -n "${!v:-}" ]; then printf '%s=%q ' "$v" "${!v}"; fi
done)"bash scripts/bench-evtx.sh${1:+ $1}"
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
versions=$(python3 -c 'import importlib.metadata as m; print("evtx", m.version("evtx") + ", python-evtx", m.version("python-evtx"))')
python3 - "$WORK" "$big_records" "$small_records" "$big_mib" "$small_mib" "$big_chunks" "$(nproc)" "$BIN" "$command_line" \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${cpu_model:-unknown}" "$versions" "$(python3 --version)" "$FILL" <<'PY'
import json, os, sys
work, big, small, big_mib, small_mib, chunks, cores, binary, command, now, cpu, versions, pyver, filled = sys.argv[1:]
big, small = int(big), int(small)
def r(name):
    return json.load(open(os.path.join(work, name + ".json")))
def row(label, m, records, note=""):
    rate = records / m["seconds"]
    runs = ", ".join(f"{x:.2f}" for x in m["runs"])
    return f"| {label} | {rate:,.0f} | {m['seconds']:.2f} | {m['max_rss_mib']:.0f} | {note}; runs {runs} s |"
mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
print("## Windows event log: reading a", big_mib, "MiB .evtx file\n")
print(f"- Date: {now}; CPU: {cpu}, `nproc` = {cores}, {mem:.0f} GiB; {pyver}; {versions}")
print(f"- Command: `{command}`")
how = ("filled with copies of its two movable 4624 records (75 records a chunk) and " if filled == "1" else "as it is (4 records in its 64 KiB) ")
print(f"- File: {big_mib} MiB, {chunks} chunks, {big:,} records: the real sample's one chunk (3 × 4624, 1 × 4625) {how}repeated by "
      f"`tests/tools/evtx-build.py repeat{' --fill' if filled == '1' else ''}`, renumbered and re-checksummed")
print(f"- Runs: the dump and the Rust parser: {len(r('rust1')['runs'])} run(s) each, one after the other, the median by wall time (all runs' times in the note), "
      "the highest peak memory of the runs; python-evtx one run")
print()
print(f"| reader, same {big_mib} MiB file | records/s | wall s | peak RSS MiB | note |")
print("|---|---:|---:|---:|---|")
if binary:
    print(row("`smtpguard windows dump FILE --format xml > /dev/null`", r("swift-big"), big, "XML of every record written (to /dev/null)"))
print(row("Rust evtx via Python, `PyEvtxParser(FILE, number_of_threads=1)`, `r['data']` for each record", r("rust1"), big, "one thread; XML of every record"))
print(row("Rust evtx via Python, `number_of_threads=0` (its default)", r("rust0"), big, f"the library picks the threads ({cores} cores)"))
p = r("pyevtx")
rate = small / p["seconds"]
print(f"| python-evtx, `r.xml()` for each record | {rate:,.0f} | {big / rate:.1f} (scaled) | {p['max_rss_mib']:.0f} (on {small_mib} MiB) | "
      f"measured on the {small_mib} MiB file ({small:,} records, {p['seconds']:.2f} s) and scaled to {big:,} records |")
print("\nThe Python rows include the interpreter's start and memory (about 10 MiB); python-evtx maps the file, "
      "so its peak memory counts the file's pages it touched.")
if binary:
    s, b = r("swift-small"), r("swift-big")
    print(f"\nMemory flatness, `smtpguard windows dump`: peak RSS {s['max_rss_mib']:.0f} MiB on the {small_mib} MiB file, "
          f"{b['max_rss_mib']:.0f} MiB on the {big_mib} MiB file ({b['max_rss_mib'] - s['max_rss_mib']:+.0f} MiB for "
          f"{float(big_mib) / float(small_mib):.0f}× the file).")
else:
    print("\n**SMTPGuard not measured** (BENCH_EVTX_PYTHON_ONLY): no dump row, no memory flatness check.")
PY
