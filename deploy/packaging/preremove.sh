#!/bin/sh
# mirrord package: stop the service before its files go (removal only,
# not upgrades: dpkg passes "remove", rpm passes 0).
set -e
case "${1:-}" in
  remove|0)
    if [ -d /run/systemd/system ]; then
      systemctl disable --now mirrord.service || true
    fi
    ;;
esac
exit 0
