#!/usr/bin/env bash
# Builds consul-template from the Go module proxy and caches it under
# ~/.cache/mirrord-test/consul-template-VERSION/consul-template (the
# examples/consul-template test renders its templates with it).
# Prints the binary's path.
set -euo pipefail
VERSION=${CONSUL_TEMPLATE_VERSION:-v0.41.1}
CACHE=${MIRRORD_TEST_CACHE:-$HOME/.cache/mirrord-test}
BIN=$CACHE/consul-template-$VERSION/consul-template
if [[ -x $BIN ]] && "$BIN" -version >/dev/null 2>&1; then
  echo "$BIN"; exit 0
fi
mkdir -p "$(dirname "$BIN")"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
(
  cd "$WORK"
  go mod init tmp >/dev/null 2>&1
  go get "github.com/hashicorp/consul-template@$VERSION" >&2
  go build -o "$BIN.tmp" github.com/hashicorp/consul-template >&2
)
mv "$BIN.tmp" "$BIN"
echo "$BIN"
