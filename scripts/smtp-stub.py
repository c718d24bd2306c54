#!/usr/bin/env python3
"""A minimal SMTP server for benchmarks that hold many connections (smtp-sink stops
accepting near a thousand) and for cluster tests: greets, answers EHLO/HELO with 250 (AUTH
PLAIN LOGIN offered), AUTH with 535 (every password is wrong), DATA with 354 and takes the
message, QUIT with 221, everything else with 250. asyncio, one process, loopback only.

    scripts/smtp-stub.py 127.0.0.1:12529
"""
import asyncio
import sys


async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 stub ESMTP\r\n")
    in_data = False
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
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                writer.write(b"250-stub\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")
            elif verb == b"AUTH":
                writer.write(b"535 5.7.8 Error: authentication failed\r\n")
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
    host, port = sys.argv[1].rsplit(":", 1)
    if not host.startswith("127."):
        sys.exit("smtp-stub: loopback only")
    server = await asyncio.start_server(session, host, int(port), backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
