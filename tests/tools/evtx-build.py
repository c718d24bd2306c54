#!/usr/bin/env python3
"""Test inputs for the Windows event log reader, made from a REAL .evtx file (never invented bytes).

  evtx-build.py repeat SRC OUT (--size-mb M | --chunks N) [--fill]
      OUT: SRC's file header and chunks copied again and again (N chunks, or as many as make
      M MiB), renumbered so record numbers keep increasing: in each chunk header the first/last
      event record number and id, in each record header its record id, both chunk checksums; in
      the file header the chunk count, the last chunk number, the next record number and its
      checksum. The EventRecordID in each record's XML (a UInt64 substitution value in its
      BinXML) is rewritten too, to the source's first one plus the record's place, so it keeps
      increasing with the header's id: found as the one 8-byte occurrence of the value
      python-evtx reads in the record, or the tool stops (--keep-xml-ids leaves them as they are).
      --fill: first fill each source chunk's free space with copies of its own records, as a
      busy log's chunks are full (the sample's one chunk holds 4 records in 7,656 of its 65,536
      bytes). Only records that can move are copied: those without an inline template or name
      definition (BinXML refers to those by offset in the chunk), found by trying each, and the
      filled chunk must give, for every copy, the XML of its original in python-evtx and in the
      Rust parser, or the tool stops.
  evtx-build.py damage SRC OUT --chunk K
      OUT: a copy of SRC with one byte inside chunk K's records (K from 0) flipped, so that
      chunk's records checksum fails (the file and chunk headers stay valid).
  evtx-build.py verify FILE [--expect N] [--xml-ids]
      Reads FILE with python-evtx and with the Rust parser (evtx's PyEvtxParser): both must
      yield the same records, with record ids 1, 2, 3 ... (N of them when --expect is given),
      every chunk and the file header passing python-evtx's checks; with --xml-ids the XML
      EventRecordIDs must go up one by one (all records in the Rust parser, python-evtx's of
      the first and last chunk agreeing).
  evtx-build.py xml OUT --events N --scenario spray|botnet [--seed S] [--root] [--check]
      Event XML as `wevtutil qe Security /f:xml` prints it (one <Event> after another, one a line,
      no root), or with --root as Event Viewer's "Save as XML" (<?xml?> and <Events>...</Events>).
      Each event is python-evtx's XML of the real 4625 or 4624 record of the sample with values
      substituted, so it has exactly their shape; --check re-reads OUT and compares every
      event's element and Data-name shape with python-evtx's for the sample, failing loudly.
  evtx-build.py check FILE
      The --check of xml alone, on any Event XML file (either form).
  evtx-build.py json OUT --format winlogbeat|nxlog --events N --scenario spray|botnet [--seed S]
      The same events as forwarded JSON lines: Winlogbeat's ECS document, or NXLog's to_json().

The sample is /work/shared/testdata/evtx/logon-4624-4625.evtx (EVTX_SAMPLE or --sample to
change): GPL test data, read in place, never copied into the project. OUT of `-` is stdout
for xml and json. Needs python-evtx (module Evtx) for all but damage and repeat --keep-xml-ids,
and the Rust parser's bindings (evtx) for verify and repeat --fill (scripts/install-deps.sh).
Exit status 2 on bad input, 1 when a check fails."""
import argparse
import binascii
import datetime
import json
import os
import random
import struct
import sys
import xml.etree.ElementTree as ET

SAMPLE = os.environ.get("EVTX_SAMPLE", "/work/shared/testdata/evtx/logon-4624-4625.evtx")
NS = "http://schemas.microsoft.com/win/2004/08/events/event"
Q = "{" + NS + "}"
FILE_HEADER = 0x1000
CHUNK = 0x10000
MAX_CHUNKS = 0xFFFF  # the file header's chunk count is a u16


def die(msg, status=2):
    sys.stderr.write(f"evtx-build: {msg}\n")
    sys.exit(status)

def need_python_evtx():
    try:
        import Evtx.Evtx
        return Evtx.Evtx
    except ImportError:
        die("python-evtx (PyPI python-evtx, module Evtx) is not installed: bash scripts/install-deps.sh")


def need_rust_evtx():
    try:
        from evtx import PyEvtxParser
        return PyEvtxParser
    except ImportError:
        die("the Rust parser's bindings (PyPI evtx) are not installed: bash scripts/install-deps.sh")



def crc(b):
    return binascii.crc32(b) & 0xFFFFFFFF


# ---------------------------------------------------------------- the binary format

def read_evtx(path):
    """The file's bytes and its chunks (as bytearrays), after checking it is an .evtx file."""
    if not os.path.isfile(path):
        die(f"{path}: no such file")
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < FILE_HEADER + CHUNK or data[:8] != b"ElfFile\0":
        die(f"{path}: not an .evtx file (no ElfFile header and chunk)")
    header_size, _, _, chunk_size, chunk_count = struct.unpack_from("<IHHHH", data, 32)
    if chunk_size != FILE_HEADER or header_size != 128:
        die(f"{path}: not an .evtx file (header block size {chunk_size}, header size {header_size})")
    chunks = []
    for i in range(chunk_count):
        c = data[FILE_HEADER + i * CHUNK: FILE_HEADER + (i + 1) * CHUNK]
        if len(c) < CHUNK or c[:8] != b"ElfChnk\0":
            die(f"{path}: chunk {i} of {chunk_count} is missing or has no ElfChnk magic")
        chunks.append(c)
    if not chunks:
        die(f"{path}: the file header counts no chunks")
    return data, chunks


def record_offsets(chunk, where):
    """Offsets of the records in a chunk, from 512 to its free space offset."""
    free = struct.unpack_from("<I", chunk, 48)[0]
    if not 512 <= free <= CHUNK:
        die(f"{where}: free space offset {free} out of range")
    offs, off = [], 512
    while off < free:
        magic, size = struct.unpack_from("<II", chunk, off)
        if magic != 0x2A2A or size < 28 or off + size > free:
            die(f"{where}: bad record at offset {off} (magic {magic:#x}, size {size})")
        if struct.unpack_from("<I", chunk, off + size - 4)[0] != size:
            die(f"{where}: record at offset {off}: the size at its end differs")
        offs.append(off)
        off += size
    return offs


def seal_chunk(c):
    """Recomputes a chunk's records checksum (52) and header checksum (124)."""
    free = struct.unpack_from("<I", c, 48)[0]
    struct.pack_into("<I", c, 52, crc(c[512:free]))
    struct.pack_into("<I", c, 124, crc(c[:120] + c[128:512]))


def movable(chunk, offs):
    """The records of a chunk whose bytes give the same XML when copied to its free space."""
    ChunkHeader = need_python_evtx().ChunkHeader
    free = struct.unpack_from("<I", chunk, 48)[0]
    originals = [r.xml() for r in ChunkHeader(bytes(chunk), 0).records()]
    ok = []
    for i, off in enumerate(offs):
        size = struct.unpack_from("<I", chunk, off + 4)[0]
        if free + size > CHUNK:
            continue
        t = bytearray(chunk)
        t[free:free + size] = chunk[off:off + size]
        struct.pack_into("<II", t, 44, free, free + size)
        try:
            if [r.xml() for r in ChunkHeader(bytes(t), 0).records()][-1] == originals[i]:
                ok.append(off)
        except Exception:
            pass  # an inline definition: the copy does not parse
    return ok


def fill(chunk, offs, where, header):
    """The chunk with its free space filled by copies of its movable records, and their offsets."""
    ChunkHeader = need_python_evtx().ChunkHeader
    PyEvtxParser = need_rust_evtx()
    src = movable(chunk, offs)
    if not src:
        die(f"{where}: no record can be copied within its chunk (each holds an inline definition); drop --fill")
    c = bytearray(chunk)
    free = struct.unpack_from("<I", c, 48)[0]
    new, copied_from, k = list(offs), {}, 0
    while True:
        off = src[k % len(src)]
        size = struct.unpack_from("<I", c, off + 4)[0]
        if free + size > CHUNK:
            break
        c[free:free + size] = c[off:off + size]
        struct.pack_into("<II", c, 44, free, free + size)
        copied_from[free] = off
        new.append(free)
        free += size
        k += 1
    for n, o in enumerate(new):
        struct.pack_into("<Q", c, o + 8, n + 1)
    struct.pack_into("<QQQQ", c, 8, 1, len(new), 1, len(new))
    seal_chunk(c)
    # Both parsers must read every copy as its original.
    py = [r.xml() for r in ChunkHeader(bytes(c), 0).records()]
    one = bytearray(header[:FILE_HEADER])
    struct.pack_into("<QQQ", one, 8, 0, 0, len(new) + 1)
    struct.pack_into("<H", one, 42, 1)
    struct.pack_into("<I", one, 124, crc(one[:120]))
    import io
    rust = [r["data"] for r in PyEvtxParser(io.BytesIO(bytes(one) + bytes(c)), validate_checksums=True).records()]
    index = {o: i for i, o in enumerate(new)}
    if len(py) != len(new) or len(rust) != len(new):
        die(f"{where}: the filled chunk reads as {len(py)} (python-evtx) and {len(rust)} (Rust) records, not {len(new)}", 1)
    for o, orig in copied_from.items():
        if py[index[o]] != py[index[orig]] or rust[index[o]] != rust[index[orig]]:
            die(f"{where}: the copy at {o} of the record at {orig} does not read as its original", 1)
    return c, new, len(src)


XML_ID = __import__("re").compile(r"<EventRecordID>(\d+)</EventRecordID>")


def xml_id_places(chunk, offs, where):
    """For each record, the offset (from the record's start) of its XML EventRecordID value,
    and the first record's EventRecordID."""
    ChunkHeader = need_python_evtx().ChunkHeader
    ids = [int(XML_ID.search(r.xml()).group(1)) for r in ChunkHeader(bytes(chunk), 0).records()]
    if len(ids) != len(offs):
        die(f"{where}: python-evtx reads {len(ids)} records, the chunk frames {len(offs)}", 1)
    places = []
    for off, rid in zip(offs, ids):
        size = struct.unpack_from("<I", chunk, off + 4)[0]
        body = bytes(chunk[off + 24: off + size - 4])
        needle = struct.pack("<Q", rid)
        at = body.find(needle)
        if at < 0 or body.find(needle, at + 1) >= 0:
            die(f"{where}: the record at {off}: its EventRecordID {rid} is not exactly once in its bytes; use --keep-xml-ids")
        places.append(24 + at)
    return places, ids[0]


def cmd_repeat(a):
    header, chunks = read_evtx(a.src)
    layouts = [record_offsets(c, f"{a.src} chunk {i}") for i, c in enumerate(chunks)]
    if a.fill:
        for i in range(len(chunks)):
            before = len(layouts[i])
            chunks[i], layouts[i], movers = fill(chunks[i], layouts[i], f"{a.src} chunk {i}", header)
            print(f"--fill: chunk {i}: {before} records, filled to {len(layouts[i])} with copies of {movers} movable one(s)", file=sys.stderr)
    if a.chunks is not None:
        total = a.chunks
    else:
        total = -(-(int(a.size_mb * 2**20) - FILE_HEADER) // CHUNK)
    if not 1 <= total <= MAX_CHUNKS:
        die(f"{total} chunks asked for; an .evtx file holds 1 to {MAX_CHUNKS}")
    places, base = None, None
    if not a.keep_xml_ids:
        found = [xml_id_places(c, layouts[i], f"{a.src} chunk {i}") for i, c in enumerate(chunks)]
        places = [f[0] for f in found]
        base = found[0][1]
    next_id = 1
    tmp = a.out + ".part"
    with open(tmp, "wb") as out:
        out.write(b"\0" * FILE_HEADER)
        for n in range(total):
            i = n % len(chunks)
            c = bytearray(chunks[i])
            offs = layouts[i]
            first = next_id
            for k, off in enumerate(offs):
                struct.pack_into("<Q", c, off + 8, next_id)
                if places is not None:
                    struct.pack_into("<Q", c, off + places[i][k], base + next_id - 1)
                next_id += 1
            last = next_id - 1 if offs else first
            # first/last event record number, then first/last event record id
            struct.pack_into("<QQQQ", c, 8, first, last, first, last)
            seal_chunk(c)
            out.write(c)
        h = bytearray(header[:FILE_HEADER])
        struct.pack_into("<QQQ", h, 8, 0, total - 1, next_id)  # oldest chunk, last chunk, next record
        struct.pack_into("<H", h, 42, total)
        struct.pack_into("<I", h, 124, crc(h[:120]))
        out.seek(0)
        out.write(h)
    os.replace(tmp, a.out)
    size = FILE_HEADER + total * CHUNK
    ids = f"XML EventRecordID {base} to {base + next_id - 2}" if places is not None else "XML EventRecordIDs as in the source"
    print(f"{a.out}: {total} chunks, {next_id - 1} records, {ids}, {size / 2**20:.1f} MiB (from {len(chunks)} chunk(s) of {a.src})")


def cmd_damage(a):
    header, chunks = read_evtx(a.src)
    if not 0 <= a.chunk < len(chunks):
        die(f"--chunk {a.chunk}: {a.src} has chunks 0 to {len(chunks) - 1}")
    offs = record_offsets(chunks[a.chunk], f"{a.src} chunk {a.chunk}")
    if not offs:
        die(f"{a.src} chunk {a.chunk} has no records to damage")
    data = bytearray(header)
    base = FILE_HEADER + a.chunk * CHUNK
    last = offs[-1]
    size = struct.unpack_from("<I", data, base + last + 4)[0]
    # The byte just before the last record's trailing size copy: the end of its BinXML data,
    # not a record header field, so the record still frames and only the checksum tells.
    at = base + last + size - 5
    data[at] ^= 0x01
    c = data[base: base + CHUNK]
    free = struct.unpack_from("<I", c, 48)[0]
    if crc(c[512:free]) == struct.unpack_from("<I", c, 52)[0]:
        die("the flipped byte did not change the records checksum", 1)
    with open(a.out, "wb") as f:
        f.write(data)
    print(f"{a.out}: byte {at} (chunk {a.chunk}, record at chunk offset {last}) flipped; that chunk's records checksum now fails")


def cmd_verify(a):
    read_evtx(a.file)
    evtx = need_python_evtx()
    PyEvtxParser = need_rust_evtx()
    with evtx.Evtx(a.file) as log:
        ours = [r.record_num() for r in log.records()]
        header_ok = log.get_file_header().verify()
        chunks = list(log.chunks())
        bad_chunks = [i for i, c in enumerate(chunks) if not c.verify()]
        # python-evtx renders slowly (milliseconds a record): the XML of the first and last chunk
        py_xml_ids = [int(XML_ID.search(r.xml()).group(1)) for c in {0: chunks[0], len(chunks) - 1: chunks[-1]}.values() for r in c.records()]
    rust_records = list(PyEvtxParser(a.file).records())
    rust = [r["event_record_id"] for r in rust_records]
    rust_xml_ids = [int(XML_ID.search(r["data"]).group(1)) for r in rust_records]
    want = list(range(1, len(ours) + 1))
    problems = []
    if not header_ok:
        problems.append("python-evtx finds the file header invalid")
    if bad_chunks:
        problems.append(f"python-evtx finds chunk(s) {bad_chunks[:10]} invalid (checksums)")
    if ours != want:
        problems.append(f"python-evtx's record ids are not 1..{len(ours)}")
    if rust != ours:
        problems.append(f"the Rust parser read {len(rust)} records, python-evtx {len(ours)}, or their ids differ")
    if a.xml_ids:
        if any(b != x + 1 for x, b in zip(rust_xml_ids, rust_xml_ids[1:])):
            problems.append("the XML EventRecordIDs (Rust parser) do not go up one by one")
        if not set(py_xml_ids) <= set(rust_xml_ids) or len(set(py_xml_ids)) != len(py_xml_ids):
            problems.append("python-evtx's XML EventRecordIDs of the first and last chunk repeat or differ from the Rust parser's")
    if a.expect is not None and len(ours) != a.expect:
        problems.append(f"{len(ours)} records, expected {a.expect}")
    if problems:
        die(f"{a.file}: " + "; ".join(problems), 1)
    xml = f", XML EventRecordID {rust_xml_ids[0]}..{rust_xml_ids[-1]} one by one" if a.xml_ids and rust_xml_ids else ""
    print(f"{a.file}: python-evtx and the Rust parser both read {len(ours)} records, ids 1..{len(ours)}{xml}")


# ---------------------------------------------------------------- Event XML from the sample

def sample_events(path):
    """python-evtx's XML of every record of the sample, parsed: [(EventID, Element)]."""
    read_evtx(path)
    evtx = need_python_evtx()
    out = []
    with evtx.Evtx(path) as log:
        for r in log.records():
            e = ET.fromstring(r.xml())
            out.append((int(e.find(f"{Q}System/{Q}EventID").text), e))
    return out


def templates(path):
    evs = sample_events(path)
    t = {}
    for eid, e in evs:
        if eid == 4625 and 4625 not in t:
            t[4625] = e
        # the interactive user logon (LogonType 2) rather than SYSTEM's service logon
        if eid == 4624 and data_value(e, "LogonType") == "2" and 4624 not in t:
            t[4624] = e
    for eid in (4624, 4625):
        if eid not in t:
            die(f"{path}: no {eid} record to take as the template")
    return t


def data_value(e, name):
    for d in e.iter(f"{Q}Data"):
        if d.get("Name") == name:
            return d.text or ""
    return None


def strip_ws(e):
    """python-evtx puts a newline after each element; one event a line has none."""
    for x in e.iter():
        if x.text is not None and not x.text.strip() and len(x):
            x.text = None
        x.tail = None
    return e


def shape(e):
    """An element's shape: tag, attribute names, Data's Name value, children's shapes in order."""
    name = e.get("Name") if e.tag == f"{Q}Data" else None
    return (e.tag, tuple(sorted(e.attrib)), name, tuple(shape(c) for c in e))


POOLS = ["192.0.2.", "198.51.100.", "203.0.113.", "10."]
SPRAY_USERS = ["administrator", "admin", "backup", "scanner", "info", "postmaster", "sales", "test",
               "webmaster", "support", "office", "mail", "user", "guest", "j.smith", "m.jones"]


def rand_ip(rng, pool=None):
    p = pool or rng.choice(POOLS)
    if p == "10.":
        return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    return p + str(rng.randrange(1, 255))


def scenario(kind, n, seed, start):
    """The attack as a list of dicts: the values that differ from the template."""
    rng = random.Random(seed)
    t = start
    evs = []

    def step():
        nonlocal t
        t += datetime.timedelta(microseconds=rng.randrange(200_000, 3_000_000))
        return t

    if kind == "spray":
        ip = rand_ip(rng, "203.0.113.")
        users = SPRAY_USERS + [f"user{i:03d}" for i in range(max(0, n - len(SPRAY_USERS)))]
        for i in range(max(0, n - 1)):
            user = users[i % len(users)]
            known = user in SPRAY_USERS[:8]
            evs.append(dict(id=4625, time=step(), user=user, ip=ip, port=rng.randrange(49152, 65536),
                            logon_type=rng.choice([3, 8]), status="0xc000006d",
                            substatus="0xc000006a" if known else "0xc0000064",
                            workstation=rng.choice(["-", "WIN-SPRAY01", ""])))
        if n >= 1:
            evs.append(dict(id=4624, time=step(), user=SPRAY_USERS[6], ip=ip, port=rng.randrange(49152, 65536),
                            logon_type=3, workstation="WIN-SPRAY01"))
    elif kind == "botnet":
        for _ in range(n):
            evs.append(dict(id=4625, time=step(), user="administrator", ip=rand_ip(rng),
                            port=rng.randrange(1024, 65536), logon_type=rng.choice([3, 8]),
                            status="0xc000006d", substatus="0xc000006a",
                            workstation=rng.choice(["-", "", "DESKTOP-" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(7))])))
    else:
        die(f"unknown scenario {kind}")
    return evs


def windows_time(t):
    """TimeCreated SystemTime as Windows writes it: 100 ns digits and Z."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}0Z"


def build_event(tmpl, v, record_id, domain, computer):
    e = strip_ws(ET.fromstring(ET.tostring(tmpl[v["id"]])))
    sys_ = e.find(f"{Q}System")
    sys_.find(f"{Q}TimeCreated").set("SystemTime", windows_time(v["time"]))
    sys_.find(f"{Q}EventRecordID").text = str(record_id)
    if computer:
        sys_.find(f"{Q}Computer").text = computer
    network = v["logon_type"] in (3, 8)
    values = {
        "TargetUserName": v["user"], "TargetDomainName": domain,
        "IpAddress": v["ip"], "IpPort": str(v["port"]), "LogonType": str(v["logon_type"]),
        "WorkstationName": v["workstation"],
    }
    if network:
        # What a network logon through NTLM records: no calling process, no subject.
        values.update({"SubjectUserSid": "S-1-0-0", "SubjectUserName": "-", "SubjectDomainName": "-",
                       "SubjectLogonId": "0x0", "LogonProcessName": "NtLmSsp ",
                       "AuthenticationPackageName": "NTLM", "ProcessId": "0x0", "ProcessName": "-"})
    if v["id"] == 4625:
        values.update({"Status": v["status"], "SubStatus": v["substatus"], "TargetUserSid": "S-1-0-0"})
    else:
        values.update({"TargetLogonId": f"0x{record_id * 7919:016x}", "LmPackageName": "NTLM V2",
                       "KeyLength": "128", "TargetUserSid": "S-1-5-21-3461203602-4096304019-2269080069-1104"})
    for d in e.iter(f"{Q}Data"):
        if d.get("Name") in values:
            d.text = values[d.get("Name")]
    return e


def generated(a):
    tmpl = templates(a.sample)
    start = datetime.datetime(2020, 9, 9, 13, 18, 23, tzinfo=datetime.timezone.utc)
    vals = scenario(a.scenario, a.events, a.seed, start)
    return [(v, build_event(tmpl, v, a.first_record_id + i, a.domain, a.computer)) for i, v in enumerate(vals)]


def opener(path):
    return sys.stdout if path == "-" else open(path, "w", encoding="utf-8")


def cmd_xml(a):
    ET.register_namespace("", NS)
    evs = generated(a)
    with opener(a.out) as f:
        if a.root:
            f.write('<?xml version="1.0" encoding="UTF-8"?>\n<Events>')
        for _, e in evs:
            f.write(ET.tostring(e, encoding="unicode"))
            f.write("\n")
        if a.root:
            f.write("</Events>\n")
    if a.out != "-":
        print(f"{a.out}: {len(evs)} events ({a.scenario}, seed {a.seed}{', in <Events>' if a.root else ''})", file=sys.stderr)
        if a.check:
            check_xml(a.out, a.sample)


def check_xml(path, sample):
    if not os.path.isfile(path):
        die(f"{path}: no such file")
    want = {eid: shape(strip_ws(e)) for eid, e in sample_events(sample)}
    text = open(path, encoding="utf-8").read()
    body = text.split("?>", 1)[1] if text.startswith("<?xml") else text
    try:
        root = ET.fromstring(body if "<Events>" in body[:200] else f"<Events>{body}</Events>")
    except ET.ParseError as err:
        die(f"--check: {path} does not parse: {err}", 1)
    events = list(root)
    bad = 0
    for i, e in enumerate(events):
        if e.tag != f"{Q}Event":
            die(f"--check: {path} element {i + 1} is {e.tag}, not an Event", 1)
        eid = int(e.find(f"{Q}System/{Q}EventID").text)
        got = shape(e)
        if got != want.get(eid):
            bad += 1
            if bad <= 5:
                sys.stderr.write(f"evtx-build: --check: event {i + 1} (EventID {eid}) differs in shape from python-evtx's for the sample: {first_difference(got, want.get(eid))}\n")
    if bad or not events:
        die(f"--check FAILED: {bad} of {len(events)} events differ in shape from python-evtx's reading of {sample}", 1)
    print(f"--check: all {len(events)} events have the shape python-evtx gives the sample's 4624 and 4625", file=sys.stderr)


def first_difference(got, want, path="Event"):
    if want is None:
        return "the sample has no event with this EventID"
    if got[0] != want[0]:
        return f"{path}: element {got[0]}, the sample's {want[0]}"
    if got[1] != want[1]:
        return f"{path}: attributes {list(got[1])}, the sample's {list(want[1])}"
    if got[2] != want[2]:
        return f"{path}: Data Name {got[2]!r}, the sample's {want[2]!r}"
    for n, (g, w) in enumerate(zip(got[3], want[3])):
        label = w[0].split("}")[-1] + (f"[{w[2]}]" if w[2] else "")
        if g != w:
            return first_difference(g, w, f"{path}/{label} (child {n + 1})")
    if len(got[3]) != len(want[3]):
        names = [w[0].split("}")[-1] + (f"[{w[2]}]" if w[2] else "") for w in want[3]]
        return f"{path}: {len(got[3])} children, the sample's {len(want[3])} ({' '.join(names)})"
    return "no difference"


# ---------------------------------------------------------------- forwarded JSON

LOGON_TYPES = {2: "Interactive", 3: "Network", 4: "Batch", 5: "Service", 7: "Unlock",
               8: "NetworkCleartext", 9: "NewCredentials", 10: "RemoteInteractive", 11: "CachedInteractive"}


def fields(e):
    s = e.find(f"{Q}System")
    data = {d.get("Name"): d.text or "" for d in e.iter(f"{Q}Data")}
    return s, data


def winlogbeat(v, e):
    s, data = fields(e)
    eid = int(s.find(f"{Q}EventID").text)
    failed = eid == 4625
    ts = v["time"].strftime("%Y-%m-%dT%H:%M:%S.") + f"{v['time'].microsecond:06d}0Z"
    doc = {
        "@timestamp": ts,
        "event": {"code": str(eid), "kind": "event", "provider": s.find(f"{Q}Provider").get("Name"),
                  "action": "logon-failed" if failed else "logged-in", "category": ["authentication"],
                  "type": ["start"], "outcome": "failure" if failed else "success"},
        "winlog": {
            "event_id": eid, "channel": s.find(f"{Q}Channel").text,
            "computer_name": s.find(f"{Q}Computer").text,
            "record_id": int(s.find(f"{Q}EventRecordID").text),
            "provider_name": s.find(f"{Q}Provider").get("Name"),
            "provider_guid": s.find(f"{Q}Provider").get("Guid").upper(),
            "task": "Logon", "opcode": "Info", "keywords": ["Audit Failure" if failed else "Audit Success"],
            "process": {"pid": int(s.find(f"{Q}Execution").get("ProcessID")),
                        "thread": {"id": int(s.find(f"{Q}Execution").get("ThreadID"))}},
            "event_data": data,
            "logon": {"type": LOGON_TYPES.get(int(data["LogonType"]), data["LogonType"])},
        },
        "source": {"ip": data["IpAddress"], "port": int(data["IpPort"])},
        "user": {"name": data["TargetUserName"], "domain": data["TargetDomainName"]},
        "host": {"name": s.find(f"{Q}Computer").text},
        "log": {"level": "information"},
    }
    if failed:
        doc["winlog"]["logon"]["failure"] = {"status": data["Status"], "sub_status": data["SubStatus"]}
    return doc


def nxlog(v, e, offset):
    s, data = fields(e)
    eid = int(s.find(f"{Q}EventID").text)
    failed = eid == 4625
    local = v["time"] + datetime.timedelta(minutes=offset)
    doc = {
        "EventTime": local.strftime("%Y-%m-%d %H:%M:%S"),
        "Hostname": s.find(f"{Q}Computer").text,
        "Keywords": int(s.find(f"{Q}Keywords").text, 16) - (1 << 64),
        "EventType": "AUDIT_FAILURE" if failed else "AUDIT_SUCCESS",
        "SeverityValue": 4 if failed else 2,
        "Severity": "ERROR" if failed else "INFO",
        "EventID": eid,
        "SourceName": s.find(f"{Q}Provider").get("Name"),
        "ProviderGuid": s.find(f"{Q}Provider").get("Guid").upper(),
        "Version": int(s.find(f"{Q}Version").text),
        "Task": int(s.find(f"{Q}Task").text),
        "OpcodeValue": int(s.find(f"{Q}Opcode").text),
        "RecordNumber": int(s.find(f"{Q}EventRecordID").text),
        "ActivityID": s.find(f"{Q}Correlation").get("ActivityID").upper(),
        "ProcessID": int(s.find(f"{Q}Execution").get("ProcessID")),
        "ThreadID": int(s.find(f"{Q}Execution").get("ThreadID")),
        "Channel": s.find(f"{Q}Channel").text,
        "Category": "Logon",
        "Opcode": "Info",
    }
    for k, val in data.items():
        doc[k] = int(val) if k == "LogonType" else val
    doc["EventReceivedTime"] = (local + datetime.timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S")
    doc["SourceModuleName"] = "eventlog"
    doc["SourceModuleType"] = "im_msvistalog"
    return doc


def cmd_json(a):
    evs = generated(a)
    with opener(a.out) as f:
        for v, e in evs:
            doc = winlogbeat(v, e) if a.format == "winlogbeat" else nxlog(v, e, a.nxlog_utc_offset)
            f.write(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n")
    if a.out != "-":
        print(f"{a.out}: {len(evs)} {a.format} events ({a.scenario}, seed {a.seed})", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("repeat")
    r.add_argument("src")
    r.add_argument("out")
    g = r.add_mutually_exclusive_group(required=True)
    g.add_argument("--size-mb", type=float)
    g.add_argument("--chunks", type=int)
    r.add_argument("--fill", action="store_true")
    r.add_argument("--keep-xml-ids", action="store_true")
    d = sub.add_parser("damage")
    d.add_argument("src")
    d.add_argument("out")
    d.add_argument("--chunk", type=int, required=True)
    k = sub.add_parser("check")
    k.add_argument("file")
    k.add_argument("--sample", default=SAMPLE)
    v = sub.add_parser("verify")
    v.add_argument("file")
    v.add_argument("--expect", type=int)
    v.add_argument("--xml-ids", action="store_true", help="the XML EventRecordIDs must go up one by one too")
    for name in ("xml", "json"):
        x = sub.add_parser(name)
        x.add_argument("out")
        x.add_argument("--events", type=int, required=True)
        x.add_argument("--scenario", choices=["spray", "botnet"], required=True)
        x.add_argument("--seed", type=int, default=1)
        x.add_argument("--first-record-id", type=int, default=137226)
        x.add_argument("--domain", default="CONTOSO")
        x.add_argument("--computer", default="", help="System/Computer (default: the sample's)")
        x.add_argument("--sample", default=SAMPLE)
        if name == "xml":
            x.add_argument("--root", action="store_true")
            x.add_argument("--check", action="store_true")
        else:
            x.add_argument("--format", choices=["winlogbeat", "nxlog"], required=True)
            x.add_argument("--nxlog-utc-offset", type=int, default=0, metavar="MINUTES",
                           help="NXLog's EventTime is the sender's local time, without an offset (default UTC)")
    a = p.parse_args()
    if getattr(a, "events", 1) < 1 or getattr(a, "events", 1) > 10_000_000:
        die("--events must be 1 to 10,000,000")
    {"repeat": cmd_repeat, "damage": cmd_damage, "verify": cmd_verify, "check": lambda a: check_xml(a.file, a.sample), "xml": cmd_xml, "json": cmd_json}[a.cmd](a)


if __name__ == "__main__":
    main()
