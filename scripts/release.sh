#!/usr/bin/env bash
# Builds the release binary with the Swift standard library (and Foundation) linked in, so that
# it runs on a Linux host without a Swift toolchain: dist/smtpguard, plus the systemd units and
# the example configurations beside it. Prints what the binary still needs from the system.
# Usage: bash scripts/release.sh
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --static-swift-stdlib --product smtpguard
rm -rf dist
mkdir -p dist/examples dist/deploy
install -m 0755 .build/release/smtpguard dist/smtpguard
strip dist/smtpguard
install -m 0644 examples/*.yaml dist/examples/
install -m 0644 deploy/*.service dist/deploy/
install -m 0644 README.md docs/openapi.yaml dist/
echo "dist/smtpguard: $(dist/smtpguard --version), $(du -h dist/smtpguard | cut -f1)"
echo "shared libraries it needs (all from the C library, none from Swift):"
ldd dist/smtpguard | sed 's/^/  /'
if ldd dist/smtpguard | grep -q swift; then
  echo "release: the binary still needs a Swift library" >&2
  exit 1
fi
