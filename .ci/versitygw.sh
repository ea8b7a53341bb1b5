#!/usr/bin/env bash
# Builds versitygw (the S3 server the s3 store's tests run against) from the
# Go module proxy and caches it under
# ~/.cache/mirrord-test/versitygw-VERSION/versitygw. Kept out of go.mod: it is
# built with GOBIN and a throwaway module cache entry, like .ci/consul.sh.
# Prints the binary's path. Takes ~5 minutes on 2 cores the first time.
set -euo pipefail
VERSION=${VERSITYGW_VERSION:-v1.8.0}
CACHE=${MIRRORD_TEST_CACHE:-$HOME/.cache/mirrord-test}
DIR=$CACHE/versitygw-$VERSION
BIN=$DIR/versitygw
if [[ -x $BIN ]] && "$BIN" --version >/dev/null 2>&1; then
  echo "$BIN"; exit 0
fi
mkdir -p "$DIR"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
(
  cd "$WORK"
  GOBIN="$WORK/bin" GOFLAGS=-mod=mod go install "github.com/versity/versitygw/cmd/versitygw@$VERSION" >&2
)
mv "$WORK/bin/versitygw" "$BIN.tmp"
mv "$BIN.tmp" "$BIN"
echo "$BIN"
