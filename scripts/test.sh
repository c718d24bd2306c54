#!/usr/bin/env bash
# The whole test suite: the Swift tests (engine, wire, proxy, command line), then the
# integration run against real Postfix + Dovecot driven by swaks. Installs the Debian
# packages it needs first (as root).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
swift build --build-tests
swift test --skip-build
bash tests/integration/run.sh
