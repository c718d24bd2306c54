#!/usr/bin/env bash
# Installs the Debian packages the test suite and the benchmarks need: the real peers
# (Postfix, Dovecot, swaks with its TLS and IPv6 modules, hydra for the parallel guessing attack, HAProxy, PostgreSQL, nftables / ipset /
# iptables for the watcher's firewall tests, systemd for its journald test (systemd-journald,
# journalctl, systemd-cat; unshare, nsenter and logger come with util-linux and bsdutils, listed
# too), fail2ban for its benchmark), sqlite3 to dump the
# guard's state file in the leak sweep, openssl for test certificates, headless Chromium with
# a font for the dashboard's browser test, libcrypt's headers for the password audit and John
# the Ripper (its wordlist, and its speed to compare), logrotate for the shipped rotation file.
# Idempotent: does nothing when they are all present.
# Needs root (CI and the development machines run as root).
set -euo pipefail

packages=(postfix dovecot-core swaks hydra haproxy procps iproute2 openssl libnet-ssleay-perl libio-socket-ssl-perl libio-socket-inet6-perl postgresql sqlite3 nftables ipset iptables fail2ban python3-systemd curl systemd util-linux bsdutils chromium fonts-dejavu-core libcrypt-dev john john-data logrotate)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

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
