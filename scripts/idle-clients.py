#!/usr/bin/env python3
"""Idle SMTP clients, and the latency of new sessions while they wait (scripts/bench-idle.sh).

    scripts/idle-clients.py HOST:PORT --idle N [--per-address 100] [--sessions 500]
                            [--report FILE] [--hold-file FILE]

Opens N connections to HOST:PORT from many loopback source addresses (127.77.x.y, at most
--per-address from each, so per-address connection limits are not what is measured), reads
each greeting, says EHLO and reads its reply, then holds them all open doing nothing: idle
bots. When all are open it writes "ready" to --hold-file (if given), waits until that file
says "measure", then runs --sessions complete sessions one after another from 127.78.0.1
(connect, greeting, EHLO, MAIL FROM, RCPT TO, RSET, QUIT, each reply read) and writes their
latencies (ms) as JSON to --report: p50, p90, p99, max, and the sessions that failed. Then it
writes "done" and waits for "close" before closing the idle connections (so the caller can
count descriptors and backend connections while they are open). Every wait is bounded.
Loopback only.
"""
import argparse
import json
import os
import socket
import sys
import time

TIMEOUT = 10.0


def address(text):
    host, _, port = text.rpartition(":")
    if not host.startswith("127.") and host != "::1":
        raise SystemExit("idle-clients: loopback only, not " + host)
    return host, int(port)


def read_reply(sock, buffer=b""):
    """Reads one complete SMTP reply (multi-line included); returns (code, rest of buffer)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        while b"\r\n" in buffer:
            line, buffer = buffer.split(b"\r\n", 1)
            if len(line) >= 4 and line[3:4] == b" ":
                return int(line[:3]), buffer
            if len(line) < 4 or line[3:4] != b"-":
                raise IOError("not an SMTP reply: %r" % line[:80])
        if time.monotonic() > deadline:
            raise IOError("no complete reply within %.0fs" % TIMEOUT)
        chunk = sock.recv(65536)
        if not chunk:
            raise IOError("connection closed")
        buffer += chunk


def source(index, per_address):
    n = index // per_address
    return "127.77.%d.%d" % (n // 250, n % 250 + 1)


def open_idle(target, count, per_address):
    held = []
    began = time.monotonic()
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT)
        s.bind((source(i, per_address), 0))
        s.connect(target)
        code, rest = read_reply(s)
        if code != 220:
            raise IOError("connection %d: greeting %d" % (i, code))
        s.sendall(b"EHLO idle%d.example\r\n" % i)
        code, rest = read_reply(s, rest)
        if code != 250:
            raise IOError("connection %d: EHLO answered %d" % (i, code))
        held.append(s)
        if time.monotonic() - began > 600:
            raise IOError("opening the idle connections took over 600 s (%d open)" % len(held))
    return held, time.monotonic() - began


def one_session(target):
    began = time.perf_counter()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    try:
        s.bind(("127.78.0.1", 0))
        s.connect(target)
        code, rest = read_reply(s)
        expected = [(b"EHLO probe.example", 250), (b"MAIL FROM:<probe@example.org>", 250),
                    (b"RCPT TO:<postmaster@example.org>", 250), (b"RSET", 250), (b"QUIT", 221)]
        if code != 220:
            raise IOError("greeting %d" % code)
        for command, want in expected:
            s.sendall(command + b"\r\n")
            code, rest = read_reply(s, rest)
            if code != want:
                raise IOError("%s answered %d" % (command.decode(), code))
        return (time.perf_counter() - began) * 1000.0, None
    except (IOError, OSError) as error:
        return None, str(error)
    finally:
        s.close()


def wait_for(path, word, limit=900):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                if f.read().strip() == word:
                    return
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    raise SystemExit("idle-clients: %s never said %s" % (path, word))


def say(path, word):
    if path:
        with open(path, "w") as f:
            f.write(word + "\n")


def percentile(values, p):
    ordered = sorted(values)
    if not ordered:
        return None
    k = min(len(ordered) - 1, max(0, int(round(p / 100.0 * len(ordered) + 0.5)) - 1))
    return round(ordered[k], 3)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("target")
    parser.add_argument("--idle", type=int, required=True)
    parser.add_argument("--per-address", type=int, default=100)
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--report", default="-")
    parser.add_argument("--hold-file", default=None)
    args = parser.parse_args()
    target = address(args.target)
    try:
        held, took = open_idle(target, args.idle, args.per_address)
    except (IOError, OSError) as error:
        print("idle-clients: %s" % error, file=sys.stderr)
        sys.exit(1)
    print("idle-clients: %d idle connections open in %.1f s" % (len(held), took), file=sys.stderr)
    if args.hold_file:
        say(args.hold_file, "ready")
        wait_for(args.hold_file, "measure")
    latencies, failures = [], []
    for _ in range(args.sessions):
        ms, error = one_session(target)
        if ms is None:
            failures.append(error)
        else:
            latencies.append(ms)
    # The idle connections must still be open (not closed by the guard) after the sessions.
    alive = 0
    for s in held:
        try:
            s.setblocking(False)
            data = s.recv(1)
            alive += 0 if data == b"" else 1
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    report = {
        "idle": len(held), "idle_still_open": alive, "open_seconds": round(took, 1),
        "sessions": args.sessions, "completed": len(latencies), "failed": len(failures),
        "failures": failures[:5],
        "p50_ms": percentile(latencies, 50), "p90_ms": percentile(latencies, 90),
        "p99_ms": percentile(latencies, 99), "max_ms": round(max(latencies), 3) if latencies else None,
    }
    text = json.dumps(report)
    if args.report == "-":
        print(text)
    else:
        with open(args.report, "w") as f:
            f.write(text + "\n")
    if args.hold_file:
        say(args.hold_file, "done")
        wait_for(args.hold_file, "close")
    for s in held:
        s.close()


if __name__ == "__main__":
    main()
