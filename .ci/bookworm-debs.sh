#!/usr/bin/env bash
# Downloads the .debs of a minimal Debian bookworm node (debootstrap's
# minbase plus curl, git, ca-certificates, procps and systemd, and hello
# for an install test) once, with `debootstrap --download-only`, and caches them under
# ~/.cache/mirrord-test/bookworm-debs-VERSION/. test/e2e/deploy_test.go
# publishes them as a local apt repository, mirrors it with mirrord and
# debootstraps a node root from the mirror. The archive is the first deb
# URI of this host's own apt sources (so no host is written here), or
# $BOOKWORM_MIRROR. Prints the directory holding the .debs.
set -euo pipefail
VERSION=2 # bump to download a fresh set
CACHE=${MIRRORD_TEST_CACHE:-$HOME/.cache/mirrord-test}
DEST=$CACHE/bookworm-debs-$VERSION
if [[ -f $DEST/.complete ]]; then
  echo "$DEST"; exit 0
fi
mirror=${BOOKWORM_MIRROR:-}
if [[ -z $mirror ]]; then
  mirror=$( ({ cat /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } | sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p';
             { cat /etc/apt/sources.list 2>/dev/null || true; } | sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\).*/\2/p') |
            grep -v -- "-security" | head -n1 || true)
fi
[[ -n $mirror ]] || { echo "bookworm-debs.sh: no Debian archive URI in this host's apt sources; set BOOKWORM_MIRROR" >&2; exit 1; }
WORK=$CACHE/bookworm-debs-build.$$
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK"
debootstrap --download-only --variant=minbase --include=curl,git,ca-certificates,procps,systemd,hello \
  --keyring=/usr/share/keyrings/debian-archive-keyring.gpg bookworm "$WORK/root" "$mirror" >&2
rm -rf "$DEST"
mkdir -p "$DEST"
mv "$WORK"/root/var/cache/apt/archives/*.deb "$DEST"/
touch "$DEST/.complete"
echo "$DEST"
