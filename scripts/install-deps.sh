#!/usr/bin/env bash
# Installs the Debian packages the test suite and the benchmarks need: the real peers
# (Postfix, Dovecot, swaks with its TLS and IPv6 modules, hydra for the parallel guessing attack, HAProxy, PostgreSQL, nftables / ipset /
# iptables for the watcher's firewall tests, systemd for its journald test (systemd-journald,
# journalctl, systemd-cat; unshare, nsenter and logger come with util-linux and bsdutils, listed
# too), fail2ban for its benchmark), sqlite3 to dump the
# guard's state file in the leak sweep, openssl for test certificates, headless Chromium with
# a font for the dashboard's browser test, libcrypt's headers for the password audit and John
# the Ripper (its wordlist, and its speed to compare), logrotate for the shipped rotation file, tcpdump for a real capture that replay must refuse;
# then the two Python .evtx readers the Windows event log tools compare against
# (tests/tools/evtx-*.py, scripts/bench-evtx.sh):
# python-evtx (module Evtx) and the Rust parser's bindings (module evtx), from PyPI with pip
# (python3-pip, in the list above; with --break-system-packages when Debian's python refuses
# a plain install).
# Idempotent and quiet: does nothing when they are all present.
# Needs root (CI and the development machines run as root).
set -euo pipefail

packages=(postfix dovecot-core swaks hydra haproxy procps iproute2 openssl libnet-ssleay-perl libio-socket-ssl-perl libio-socket-inet6-perl postgresql sqlite3 nftables ipset iptables fail2ban python3-systemd curl systemd util-linux bsdutils chromium fonts-dejavu-core libcrypt-dev john john-data logrotate python3-pip tcpdump)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Postfix asks how it should be configured; the tests write their own configuration.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  echo "postfix postfix/mailname string smtpguard.test" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "install-deps: installed ${missing[*]}"
fi

# The Python .evtx readers (PyPI, not in Debian): python-evtx and the Rust evtx bindings.
if ! python3 -c 'import Evtx.Evtx, evtx' 2>/dev/null; then
  pypi=(python-evtx evtx)
  if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "install-deps: python3 has no pip (Debian package python3-pip) to install ${pypi[*]}" >&2
    exit 1
  fi
  if ! out=$(python3 -m pip install -q "${pypi[@]}" 2>&1); then
    if grep -q externally-managed <<<"$out"; then
      # Debian's python (PEP 668): pip refuses unless told to install beside the system packages.
      python3 -m pip install -q --break-system-packages "${pypi[@]}"
    else
      echo "$out" >&2
      exit 1
    fi
  fi
  python3 -c 'import Evtx.Evtx, evtx' || { echo "install-deps: ${pypi[*]} installed but do not import" >&2; exit 1; }
  echo "install-deps: installed ${pypi[*]} (pip)"
fi
