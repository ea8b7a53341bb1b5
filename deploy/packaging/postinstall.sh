#!/bin/sh
# mirrord package: the state directory (systemd's StateDirectory= also
# creates it) and systemd's view of the unit. The service is not started:
# configure /etc/mirrord/mirrord.yaml, then `systemctl enable --now mirrord`.
set -e
install -d -o mirrord -g mirrord -m 0750 /var/lib/mirrord
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
fi
exit 0
