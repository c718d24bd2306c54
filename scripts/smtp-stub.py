#!/usr/bin/env python3
"""A minimal SMTP server for benchmarks that hold many connections (smtp-sink stops
accepting near a thousand) and for cluster and guess-budget tests: greets, answers EHLO/HELO
with 250 (AUTH PLAIN LOGIN offered), AUTH with 535 (every password is wrong), DATA with 354
and takes the message, QUIT with 221, everything else with 250. asyncio, one process,
loopback only.

    scripts/smtp-stub.py 127.0.0.1:12529 [--auth-reply "454 4.7.0 ..."] [--count FILE]

--auth-reply: the reply to every set of credentials (default 535 5.7.8 …), e.g. 454 for a
backend whose authentication service is penalising or gone. --count: a line is appended to
FILE for every set of credentials received (PLAIN with its initial response, or LOGIN's
password), so that a test can count the password checks that reached the backend.
"""
import argparse
import asyncio
import sys

AUTH_REPLY = b"535 5.7.8 Error: authentication failed\r\n"
COUNT_FILE = None


def credentials_received() -> bytes:
    if COUNT_FILE:
        with open(COUNT_FILE, "a") as f:
            f.write("credentials\n")
    return AUTH_REPLY


async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 stub ESMTP\r\n")
    in_data = False
    login_password = False
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            if in_data:
                if line == b".\r\n":
                    in_data = False
                    writer.write(b"250 2.0.0 Ok: queued\r\n")
                continue
            if login_password:
                login_password = False
                writer.write(credentials_received())
                await writer.drain()
                continue
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                writer.write(b"250-stub\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")
            elif verb == b"AUTH":
                words = line.split()
                mechanism = words[1].upper() if len(words) > 1 else b""
                if mechanism == b"LOGIN":
                    # The username (initial response or next line) is not a check; the password is.
                    if len(words) < 3:
                        writer.write(b"334 VXNlcm5hbWU6\r\n")
                        await writer.drain()
                        await reader.readline()
                    writer.write(b"334 UGFzc3dvcmQ6\r\n")
                    login_password = True
                elif mechanism == b"PLAIN" and len(words) >= 3:
                    writer.write(credentials_received())
                else:
                    writer.write(AUTH_REPLY)
            elif verb == b"DATA":
                in_data = True
                writer.write(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 2.0.0 Bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 2.0.0 Ok\r\n")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main() -> None:
    global AUTH_REPLY, COUNT_FILE
    parser = argparse.ArgumentParser(description="a minimal SMTP server on loopback")
    parser.add_argument("address", help="HOST:PORT (loopback)")
    parser.add_argument("--auth-reply", default="535 5.7.8 Error: authentication failed")
    parser.add_argument("--count", default=None)
    args = parser.parse_args()
    AUTH_REPLY = args.auth_reply.encode() + b"\r\n"
    COUNT_FILE = args.count
    host, port = args.address.rsplit(":", 1)
    if not host.startswith("127."):
        sys.exit("smtp-stub: loopback only")
    server = await asyncio.start_server(session, host, int(port), backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
