#!/usr/bin/env bash
# The whole test suite: the Swift tests (engine, wire, proxy, TLS, the golden transcripts,
# the fuzz corpus, the command line), the integration run against real Postfix + Dovecot
# driven by swaks and Python's smtplib, the guess budget under hydra -t 16 and -t 64 with Dovecot's
# auth penalty off and on (and a backend answering 454, and one that is down), two guards sharing a real PostgreSQL, the log watcher on
# the lab's real logs, with nftables in a network namespace and with a private systemd-journald,
# Windows Security events (the real .evtx sample against python-evtx, files built from its chunks, a
# spray as Event XML / Winlogbeat / NXLog JSON, forwarded over syslog into nftables), Dovecot and Postfix asking the
# guard through their policy protocols, the dashboard driven in headless Chromium against a
# guard under a scripted attack, the password audit on hashes Dovecot made and check-password,
# README's install recipes taken literally on a stock Debian Postfix + Dovecot with the units run
# as deploy/ gives them (first-install.sh),
# then each libFuzzer target for a short bounded time
# (FUZZ_SECONDS, default 20; 0 skips). Installs the Debian packages it needs first (as root).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
swift build --build-tests
swift test --skip-build
bash tests/integration/run.sh
bash tests/integration/budget.sh
bash tests/integration/cluster.sh
bash tests/integration/watch.sh
bash tests/tools/evtx-tools-selftest.sh
bash tests/integration/windows.sh
bash tests/integration/policy.sh
bash tests/integration/dashboard.sh
bash tests/integration/audit.sh
bash tests/integration/first-install.sh
if [ "${FUZZ_SECONDS:-20}" -gt 0 ]; then
  bash scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
fi
