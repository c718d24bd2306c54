#!/usr/bin/env python3
"""A small DNS blocklist server for the test suite, on loopback UDP (standard library only).

    dnsbl_server.py PORT LOGFILE

Zones it answers (every other name: NXDOMAIN):
  bl.test       192.0.2.2 and 2001:db8::5 listed (127.0.0.2, and 127.0.0.4 for the IPv6 one),
                with a TXT reason; everything else not listed
  refuse.test   every name answered 127.255.255.254 (Spamhaus's "public resolver" refusal)
  hijack.test   every name answered 198.51.100.7 (a resolver that rewrites NXDOMAIN)
  fail.test     SERVFAIL
  silent.test   no answer at all
Every question is appended to LOGFILE as "TYPE NAME". Stops after 10 minutes at most.
"""
import socket
import struct
import sys
import time

LISTED = {
    "2.2.0.192.bl.test": ([b"\x7f\x00\x00\x02"], "192.0.2.2 is listed for testing"),
    ".".join(reversed("20010db8000000000000000000000005")) + ".bl.test": ([b"\x7f\x00\x00\x04"], "IPv6 test listing"),
}


def parse_question(data):
    labels, offset = [], 12
    while data[offset]:
        length = data[offset]
        labels.append(data[offset + 1:offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    qtype = struct.unpack("!H", data[offset + 1:offset + 3])[0]
    return ".".join(labels).lower(), qtype, data[12:offset + 5]


def answer(data):
    name, qtype, question = parse_question(data)
    ident = data[:2]
    rcode, records = 0, []
    if name.endswith(".silent.test"):
        return name, qtype, None
    if name.endswith(".fail.test"):
        rcode = 2
    elif name.endswith(".refuse.test"):
        records = [(1, b"\x7f\xff\xff\xfe")] if qtype == 1 else []
    elif name.endswith(".hijack.test"):
        records = [(1, bytes([198, 51, 100, 7]))] if qtype == 1 else []
    elif name in LISTED:
        addresses, reason = LISTED[name]
        if qtype == 1:
            records = [(1, a) for a in addresses]
        elif qtype == 16:
            text = reason.encode()
            records = [(16, bytes([len(text)]) + text)]
    else:
        rcode = 3
    header = ident + struct.pack("!BBHHHH", 0x81, 0x80 | rcode, 1, len(records), 0, 0)
    body = b"".join(b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, 60, len(rdata)) + rdata for rtype, rdata in records)
    return name, qtype, header + question + body


def main():
    port, logfile = int(sys.argv[1]), sys.argv[2]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    sock.settimeout(1)
    deadline = time.time() + 600
    with open(logfile, "a", buffering=1) as log:
        while time.time() < deadline:
            try:
                data, peer = sock.recvfrom(512)
            except socket.timeout:
                continue
            try:
                name, qtype, reply = answer(data)
            except (IndexError, struct.error):
                continue
            log.write(f"{ {1: 'A', 16: 'TXT'}.get(qtype, qtype) } {name}\n")
            if reply is not None:
                sock.sendto(reply, peer)


if __name__ == "__main__":
    main()
