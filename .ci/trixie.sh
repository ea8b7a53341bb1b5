#!/usr/bin/env bash
# Builds a minimal Debian trixie root (apt >= 2.7, which has
# `apt update --snapshot`) once with debootstrap and caches it under
# ~/.cache/mirrord-test/trixie-KEY/root, KEY being the version of trixie's
# "apt" package in the root. Prints the root's path. The archive is the one
# this host's own apt sources name (first deb URI), so no host is written
# here. Needs root (debootstrap, chroot).
set -euo pipefail
CACHE=${MIRRORD_TEST_CACHE:-$HOME/.cache/mirrord-test}
for d in "$CACHE"/trixie-*/root; do
  if [[ -x $d/usr/bin/apt ]] && [[ -f $d/.complete ]]; then
    echo "$d"; exit 0
  fi
done
mirror=${TRIXIE_MIRROR:-}
if [[ -z $mirror ]]; then
  mirror=$( (cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p';
             cat /etc/apt/sources.list 2>/dev/null | sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\).*/\2/p') |
            grep -v -- '-security' | head -n1 || true)
fi
if [[ -z $mirror ]]; then
  echo "trixie.sh: no Debian archive URI in this host's apt sources; set TRIXIE_MIRROR" >&2
  exit 1
fi
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
WORK=$CACHE/trixie-build.$$
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK"
debootstrap --variant=minbase --keyring="$keyring" trixie "$WORK/root" "$mirror" >&2
ver=$(chroot "$WORK/root" dpkg-query -W -f '${Version}' apt)
DEST=$CACHE/trixie-apt-$ver
rm -rf "$DEST"
mkdir -p "$DEST"
mv "$WORK/root" "$DEST/root"
touch "$DEST/root/.complete"
echo "$DEST/root"
