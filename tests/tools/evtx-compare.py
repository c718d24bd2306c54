#!/usr/bin/env python3
"""Compares SMTPGuard's reading of an .evtx file with python-evtx's, record for record:

  evtx-compare.py FILE.evtx DUMP.xml [--skip-damaged] [--strip-leaf-text] [--show N]

DUMP.xml is `smtpguard windows dump FILE.evtx --format xml` output: one record's XML a line.
Each python-evtx record and each dump line are parsed with xml.etree and must have the same
element tree: tag with namespace, attributes (as dicts), text (stripped of surrounding white
space in elements with children; exact in leaves, whose text is the value, unless
--strip-leaf-text), children in order. The one thing normalised is a time attribute: python-evtx writes
"2020-09-09 13:18:23.627951+00:00", the dump "2020-09-09T13:18:23.627951Z"; both are read as
an instant, to the microsecond python-evtx keeps; and an attribute python-evtx writes empty (a
null optional substitution: Qualifiers="") is taken as absent, as Windows renders it. With --skip-damaged, python-evtx's records
from chunks whose checksums fail are left out (the dump skips those chunks).
Prints the first N (default 10) differences with their record numbers and exits 1 on any;
prints "N records agree with python-evtx" otherwise. Exit status 2 on bad input."""
import argparse
import datetime
import os
import re
import sys
import xml.etree.ElementTree as ET

PY_TIME = re.compile(r"^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?\+00:00$")
ISO_TIME = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$")


def die(msg, status=2):
    sys.stderr.write(f"evtx-compare: {msg}\n")
    sys.exit(status)

def need_python_evtx():
    try:
        import Evtx.Evtx
        return Evtx.Evtx
    except ImportError:
        die("python-evtx (PyPI python-evtx, module Evtx) is not installed: bash scripts/install-deps.sh")




def instant(value):
    """A time attribute as (date, time, microseconds), or None when it is not one."""
    m = PY_TIME.match(value) or ISO_TIME.match(value)
    if not m:
        return None
    try:
        datetime.datetime.strptime(m.group(1) + " " + m.group(2), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    frac = (m.group(3) or "").ljust(6, "0")[:6]
    return ("time", m.group(1), m.group(2), int(frac))


def norm_attrs(attrs):
    # An empty attribute and an absent one are the same: python-evtx writes an optional
    # substitution that is null as Qualifiers="" (UserID="", RelatedActivityID=""); Windows'
    # own rendering, the Rust parser and SMTPGuard leave the attribute out.
    out = {}
    for k, v in attrs.items():
        if v == "":
            continue
        t = instant(v)
        out[k] = t if t else v
    return out


STRIP_LEAVES = False


def tree(e):
    # An element's own text: stripped where it is only layout (python-evtx writes a newline
    # after each element), kept exactly in a leaf, whose text is the value ("Advapi  " keeps its
    # two trailing spaces in both parsers), unless --strip-leaf-text.
    text = e.text or ""
    if len(e) or STRIP_LEAVES:
        text = text.strip()
    return (e.tag, norm_attrs(e.attrib), text, [tree(c) for c in e])


def short(tag):
    return tag.split("}")[-1]


def differences(a, b, path):
    """Where python-evtx's tree a and the dump's tree b differ, as readable lines."""
    ta, aa, xa, ca = a
    tb, ab, xb, cb = b
    if ta != tb:
        return [f"{path}: element {ta} in python-evtx, {tb} in the dump"]
    out = []
    if aa != ab:
        for k in sorted(set(aa) | set(ab)):
            if aa.get(k) != ab.get(k):
                out.append(f"{path} @{k}: python-evtx {show(aa.get(k))}, dump {show(ab.get(k))}")
    if xa != xb:
        out.append(f"{path} text: python-evtx {xa!r}, dump {xb!r}")
    for n, (x, y) in enumerate(zip(ca, cb)):
        name = short(x[0]) + (f"[{x[1]['Name']}]" if isinstance(x[1].get("Name"), str) else "")
        out += differences(x, y, f"{path}/{name}")
    if len(ca) != len(cb):
        out.append(f"{path}: {len(ca)} children in python-evtx ({' '.join(short(c[0]) for c in ca)}), "
                   f"{len(cb)} in the dump ({' '.join(short(c[0]) for c in cb)})")
    return out


def show(v):
    if v is None:
        return "(absent)"
    if isinstance(v, tuple):
        return f"{v[1]} {v[2]}.{v[3]:06d} UTC"
    return repr(v)


def python_evtx_records(path, skip_damaged, quiet=False):
    evtx = need_python_evtx()
    with evtx.Evtx(path) as log:
        if not quiet and not log.get_file_header().verify():
            sys.stderr.write(f"evtx-compare: warning: python-evtx finds {path}'s file header invalid\n")
        for ci, chunk in enumerate(log.chunks()):
            if skip_damaged and not chunk.verify():
                if not quiet:
                    sys.stderr.write(f"evtx-compare: chunk {ci} fails its checksums: its records left out (--skip-damaged)\n")
                continue
            for r in chunk.records():
                yield r


def check_evtx(path):
    if not os.path.isfile(path):
        die(f"{path}: no such file")
    with open(path, "rb") as f:
        head = f.read(8)
    if head != b"ElfFile\0":
        die(f"{path}: not an .evtx file (no ElfFile header)")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("evtx")
    p.add_argument("dump")
    p.add_argument("--skip-damaged", action="store_true")
    p.add_argument("--show", type=int, default=10)
    p.add_argument("--strip-leaf-text", action="store_true")
    a = p.parse_args()
    global STRIP_LEAVES
    STRIP_LEAVES = a.strip_leaf_text
    check_evtx(a.evtx)
    if not os.path.isfile(a.dump):
        die(f"{a.dump}: no such file")
    def dump_lines():
        with open(a.dump, encoding="utf-8", errors="strict") as f:
            try:
                for n, line in enumerate(f, 1):
                    if line.strip():
                        yield n, line
            except UnicodeDecodeError as err:
                die(f"{a.dump}: not UTF-8: {err}")

    # Counted first (cheap: no rendering), then compared as both stream by.
    n_ref = sum(1 for _ in python_evtx_records(a.evtx, a.skip_damaged, quiet=True))
    n_dump = sum(1 for _ in dump_lines())
    problems = []
    if n_ref != n_dump:
        problems.append(f"python-evtx reads {n_ref} records, the dump has {n_dump} lines")
    for i, (r, (lineno, line)) in enumerate(zip(python_evtx_records(a.evtx, a.skip_damaged), dump_lines())):
        where = f"record {i + 1} (record number {r.record_num()}, dump line {lineno})"
        try:
            xml = r.xml()
        except Exception as err:  # python-evtx fails on a record: that is a difference too
            problems.append(f"{where}: python-evtx cannot render it: {err}")
            continue
        try:
            theirs = ET.fromstring(line)
        except ET.ParseError as err:
            problems.append(f"{where}: the dump line is not XML: {err}")
            continue
        d = differences(tree(ET.fromstring(xml)), tree(theirs), short(theirs.tag))
        problems += [f"{where}: {x}" for x in d]
        if len(problems) > a.show >= 0:
            break
    if problems:
        for x in problems[: a.show]:
            print(x)
        if len(problems) > a.show:
            print(f"... (more; the first {a.show} shown)")
        print(f"evtx-compare: the dump DIFFERS from python-evtx's reading of {a.evtx}")
        sys.exit(1)
    print(f"{n_ref} records agree with python-evtx")


if __name__ == "__main__":
    main()
