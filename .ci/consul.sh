#!/usr/bin/env bash
# Builds the Consul agent from the Go module proxy (Debian has no package)
# and caches it under ~/.cache/mirrord-test/consul-VERSION/consul.
# Prints the binary's path. Takes ~10 minutes on 2 cores the first time.
set -euo pipefail
VERSION=${CONSUL_VERSION:-v1.20.1}
CACHE=${MIRRORD_TEST_CACHE:-$HOME/.cache/mirrord-test}
BIN=$CACHE/consul-$VERSION/consul
if [[ -x $BIN ]] && "$BIN" version >/dev/null 2>&1; then
  echo "$BIN"; exit 0
fi
mkdir -p "$(dirname "$BIN")"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
(
  cd "$WORK"
  go mod init tmp >/dev/null 2>&1
  go get "github.com/hashicorp/consul@$VERSION" >&2
  go build -o "$BIN.tmp" github.com/hashicorp/consul >&2
)
mv "$BIN.tmp" "$BIN"
echo "$BIN"
