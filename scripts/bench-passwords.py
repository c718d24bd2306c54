#!/usr/bin/env python3
"""Candidate checks per second of `smtpguard audit-passwords`, per hash scheme, side by side
with John the Ripper (Debian's john, 1.9.0) on the same accounts and the same wordlist, in the
same run (BENCHMARKS.md, "Password audit").

For each scheme, ACCOUNTS accounts with strong passwords (so that every candidate is tried) are
hashed by Dovecot's own `doveadm pw`; both tools get the first WORDS words of John's
password.lst. smtpguard tries a few dozen more candidates per account (the username's forms
and the default list) and says how many it tried; John reports its own c/s (candidate checks
per second, over all salts). Each tool runs on one core, then on all cores (smtpguard --jobs N,
John's OpenMP threads). John 1.9.0 (not jumbo) has no {SSHA256}, {SSHA512} or {PLAIN} format:
those rows have smtpguard only.

  scripts/bench-passwords.py BIN [ACCOUNTS] [WORDS]       (defaults 4 and 1000)
"""
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile

BIN = sys.argv[1]
ACCOUNTS = int(sys.argv[2]) if len(sys.argv) > 2 else 4
WORDS = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
CORES = os.cpu_count()
# Dovecot scheme -> John's format (None: John 1.9.0 has none).
SCHEMES = [("SHA512-CRYPT", "crypt"), ("SHA256-CRYPT", "crypt"), ("BLF-CRYPT", "bcrypt"), ("MD5-CRYPT", "md5crypt"),
           ("DES-CRYPT", "descrypt"), ("SSHA512", None), ("SSHA256", None), ("PLAIN", None)]


def hashed(scheme, password):
    return subprocess.run(["doveadm", "pw", "-s", scheme, "-p", password], check=True, capture_output=True, text=True).stdout.strip()


def ours(passwd_file, wordlist, jobs):
    out = subprocess.run([BIN, "audit-passwords", passwd_file, "--wordlist", wordlist, "--jobs", str(jobs), "--json"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"smtpguard audit-passwords exited {out.returncode}: {out.stderr[-500:]}")
    summary = json.loads(out.stdout)["summary"]
    return summary["candidate_checks"] / float(summary["seconds"]), summary["candidate_checks"]


def john(john_file, wordlist, john_format, threads, work):
    home = tempfile.mkdtemp(dir=work)  # John keeps its pot file and session in ~/.john
    env = dict(os.environ, HOME=home, OMP_NUM_THREADS=str(threads))
    out = subprocess.run(["john", f"--format={john_format}", f"--wordlist={wordlist}", f"--session={home}/s", john_file],
                         capture_output=True, text=True, env=env)
    status = re.findall(r"([0-9.]+)c/s", out.stdout + out.stderr)
    if out.returncode != 0 or not status:
        sys.exit(f"john exited {out.returncode}: {(out.stdout + out.stderr)[-500:]}")
    return float(status[-1])


def main():
    work = tempfile.mkdtemp(prefix="smtpguard-bench-passwords.")
    words = [w for w in open("/usr/share/john/password.lst", encoding="latin-1").read().splitlines() if w and not w.startswith("#!comment:")]
    wordlist = os.path.join(work, "words.lst")
    with open(wordlist, "w", encoding="latin-1") as f:
        f.write("\n".join(words[:WORDS]) + "\n")
    version = subprocess.run(["john"], capture_output=True, text=True).stdout.splitlines()[0]
    print(f"machine: {CORES} cores; {version}; {ACCOUNTS} accounts per scheme, {WORDS} words")
    print(f"| scheme | smtpguard, 1 core | John, 1 core | smtpguard, {CORES} cores | John, {CORES} cores | candidates per account |")
    print("|---|---:|---:|---:|---:|---:|")
    for scheme, john_format in SCHEMES:
        passwd_file = os.path.join(work, f"{scheme}.passwd")
        john_file = os.path.join(work, f"{scheme}.john")
        with open(passwd_file, "w") as p, open(john_file, "w") as j:
            for i in range(ACCOUNTS):
                stored = hashed(scheme, "Strong-" + secrets.token_urlsafe(12))
                p.write(f"user{i}:{stored}::::::\n")
                j.write(f"user{i}:{stored.split('}', 1)[1]}\n")
        one, checks = ours(passwd_file, wordlist, 1)
        many, _ = ours(passwd_file, wordlist, CORES)
        if john_format:
            john_one = f"{john(john_file, wordlist, john_format, 1, work):,.0f}"
            john_many = f"{john(john_file, wordlist, john_format, CORES, work):,.0f}"
        else:
            john_one = john_many = "no format"
        print(f"| {scheme} | {one:,.0f} | {john_one} | {many:,.0f} | {john_many} | {checks // ACCOUNTS:,} |", flush=True)
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
