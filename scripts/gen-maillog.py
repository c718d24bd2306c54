#!/usr/bin/env python3
"""Writes a mixed Postfix + Dovecot syslog file for the watcher benchmarks.

   scripts/gen-maillog.py LINES OUT [--seed N]

About a fifth of the lines are AUTH failures (Postfix "SASL ... authentication failed" with
and without sasl_username, Dovecot "Password mismatch" / "unknown user" and "auth failed, N
attempts" on disconnect), spread over 5,000 attacking addresses in 2,000 networks, IPv4 and
IPv6; the rest is ordinary mail traffic: connect / disconnect, queue manager, deliveries,
rejections, TLS, IMAP logins. Times advance a little per line across one day.
"""
import random
import sys


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    total = int(sys.argv[1])
    out = sys.argv[2]
    seed = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--seed" else 7
    rnd = random.Random(seed)
    attackers = []
    for i in range(5000):
        if i % 10 == 0:
            attackers.append(f"2001:db8:{i % 2000:x}:{i:x}::{rnd.randrange(1, 65535):x}")
        else:
            attackers.append(f"{45 + i % 200}.{(i // 200) % 10 + 10}.{i % 250}.{rnd.randrange(1, 254)}")
    users = ["admin", "info", "test", "guest", "sales", "office", "alice", "bob", "webmaster", "postmaster", "support", "user"]
    clients = [f"192.0.2.{i}" for i in range(1, 200)] + [f"198.51.100.{i}" for i in range(1, 200)]
    months = "Nov"
    with open(out, "w") as f:
        second = 0
        for n in range(total):
            second += rnd.random() * 0.08
            s = int(second) % 86400
            ts = f"{months} {23 + int(second) // 86400:2d} {s // 3600:02d}:{(s // 60) % 60:02d}:{s % 60:02d}"
            pid = 1000 + n % 5000
            r = rnd.random()
            if r < 0.08:
                a = rnd.choice(attackers)
                u = rnd.choice(users)
                mech = rnd.choice(["PLAIN", "LOGIN"])
                tail = f", sasl_username={u}" if rnd.random() < 0.7 else ""
                reason = "UGFzc3dvcmQ6" if mech == "LOGIN" else "(reason unavailable)"
                f.write(f"{ts} mx postfix/smtpd[{pid}]: warning: unknown[{a}]: SASL {mech} authentication failed: {reason}{tail}\n")
            elif r < 0.16:
                a = rnd.choice(attackers)
                u = rnd.choice(users)
                what = "Password mismatch" if rnd.random() < 0.8 else "unknown user"
                f.write(f"{ts} mx dovecot: auth-worker({pid}): Info: passwd-file({u},{a},<{n:x}>): {what}\n")
            elif r < 0.19:
                a = rnd.choice(attackers)
                f.write(f"{ts} mx dovecot: imap-login: Info: Disconnected: Connection closed (auth failed, {rnd.randrange(1, 5)} attempts in 4 secs): user=<{rnd.choice(users)}>, method=PLAIN, rip={a}, lip=10.0.0.1, TLS, session=<{n:x}>\n")
            elif r < 0.20:
                a = rnd.choice(attackers)
                f.write(f"{ts} mx postfix/smtpd[{pid}]: lost connection after AUTH from unknown[{a}]\n")
            elif r < 0.35:
                c = rnd.choice(clients + attackers)
                f.write(f"{ts} mx postfix/smtpd[{pid}]: connect from unknown[{c}]\n")
            elif r < 0.50:
                c = rnd.choice(clients + attackers)
                f.write(f"{ts} mx postfix/smtpd[{pid}]: disconnect from unknown[{c}] ehlo=1 auth=0/1 quit=1 commands=2/3\n")
            elif r < 0.60:
                f.write(f"{ts} mx postfix/qmgr[900]: {n:010X}: from=<news@example.org>, size={rnd.randrange(900, 90000)}, nrcpt=1 (queue active)\n")
            elif r < 0.70:
                f.write(f"{ts} mx postfix/smtp[{pid}]: {n:010X}: to=<user{n % 999}@example.net>, relay=mx.example.net[203.0.113.5]:25, delay=0.4, delays=0.1/0/0.1/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as ABC{n})\n")
            elif r < 0.75:
                c = rnd.choice(clients)
                f.write(f"{ts} mx postfix/smtpd[{pid}]: {n:010X}: client=unknown[{c}], sasl_method=PLAIN, sasl_username={rnd.choice(users)}@example.org\n")
            elif r < 0.82:
                c = rnd.choice(clients + attackers)
                f.write(f"{ts} mx postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from unknown[{c}]: 554 5.7.1 <spam@example.com>: Relay access denied; from=<x@example.com> to=<spam@example.com> proto=ESMTP helo=<bot>\n")
            elif r < 0.90:
                f.write(f"{ts} mx postfix/smtpd[{pid}]: Anonymous TLS connection established from unknown[{rnd.choice(clients)}]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\n")
            else:
                f.write(f"{ts} mx dovecot: imap-login: Info: Login: user=<{rnd.choice(users)}@example.org>, method=PLAIN, rip={rnd.choice(clients)}, lip=10.0.0.1, mpid={pid}, TLS, session=<{n:x}>\n")


if __name__ == "__main__":
    main()
