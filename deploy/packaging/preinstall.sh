#!/bin/sh
# mirrord package: create the mirrord system user and group (before the
# files are unpacked, so /etc/mirrord can belong to the group).
set -e
if ! getent group mirrord >/dev/null; then
  groupadd --system mirrord
fi
if ! getent passwd mirrord >/dev/null; then
  useradd --system --gid mirrord --home-dir /var/lib/mirrord --no-create-home \
    --shell /usr/sbin/nologin --comment "mirrord snapshot mirror" mirrord
fi
exit 0
