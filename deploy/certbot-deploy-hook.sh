#!/bin/sh
# certbot deploy hook for SMTPGuard: after certbot renews the guard's certificate, copy it to
# /etc/smtpguard/tls/ (fullchain.pem and privkey.pem, owner root, group smtpguard, mode 0640:
# the guard's user cannot read /etc/letsencrypt/live or archive, which are 0700) and reload the
# units that use it (SIGHUP: new sessions get the new certificate, open ones keep theirs).
#
# Install (README.md, "Install"), then set name= below to the guard's name (smtp.hostname):
#   install -D -m 0755 deploy/certbot-deploy-hook.sh /etc/letsencrypt/renewal-hooks/deploy/smtpguard.sh
# certbot runs every script in renewal-hooks/deploy/ after each renewal, with RENEWED_LINEAGE
# set to /etc/letsencrypt/live/NAME. For the first copy, run it by hand:
#   RENEWED_LINEAGE=/etc/letsencrypt/live/mail.example.org /etc/letsencrypt/renewal-hooks/deploy/smtpguard.sh
set -eu
name=mail.example.org              # the certificate name certbot uses for the guard
dir=/etc/smtpguard/tls

case "${RENEWED_LINEAGE:-}" in
  */"$name") ;;
  *) exit 0 ;;                     # another certificate: not the guard's
esac
install -d -m 0750 -o root -g smtpguard "$dir"
# Copied beside the old files, then renamed over them: the guard never reads a half-written one.
install -m 0640 -o root -g smtpguard "$RENEWED_LINEAGE/fullchain.pem" "$dir/.fullchain.pem.new"
install -m 0640 -o root -g smtpguard "$RENEWED_LINEAGE/privkey.pem" "$dir/.privkey.pem.new"
mv -f "$dir/.privkey.pem.new" "$dir/privkey.pem"
mv -f "$dir/.fullchain.pem.new" "$dir/fullchain.pem"
for unit in smtpguard.service smtpguard-policy.service; do
  if systemctl is-active --quiet "$unit"; then systemctl reload "$unit"; fi
done
