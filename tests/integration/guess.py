#!/usr/bin/env python3
"""One attacking host guessing passwords through the guard: COUNT connections one after
another from SOURCE, each EHLO and one AUTH PLAIN with a new username and password (the
pair limit never helps), then QUIT. Prints one line per attempt: the reply code to AUTH,
"connect-NNN" when the greeting was not 220 (a ban: 554, an outage: 421), or "closed".

    guess.py SOURCE HOST:PORT COUNT [PREFIX]
"""
import base64
import smtplib
import socket
import sys


def main() -> None:
    source, target, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    prefix = sys.argv[4] if len(sys.argv) > 4 else source.replace(".", "-")
    host, port = target.rsplit(":", 1)
    if not (host.startswith("127.") and source.startswith("127.")):
        sys.exit("guess.py: loopback only")
    for i in range(count):
        user = f"{prefix}-user{i}"
        secret = f"Guess-{i}-{prefix}"
        payload = base64.b64encode(f"\0{user}\0{secret}".encode()).decode()
        try:
            client = smtplib.SMTP(timeout=60, source_address=(source, 0))
            code, _ = client.connect(host, int(port))
            if code != 220:
                print(f"connect-{code}", flush=True)
                client.close()
                continue
            client.ehlo("bot.test")
            code, _ = client.docmd("AUTH", "PLAIN " + payload)
            print(code, flush=True)
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                pass
        except smtplib.SMTPConnectError as error:
            print(f"connect-{error.smtp_code}", flush=True)
        except (smtplib.SMTPServerDisconnected, ConnectionError, socket.timeout, OSError):
            print("closed", flush=True)


if __name__ == "__main__":
    main()
