#!/usr/bin/env bash
# Builds goreleaser's nfpm packager from the Go module proxy and caches it
# under ~/.cache/mirrord-test/nfpm-VERSION/nfpm (`make deb` and `make rpm`
# package mirrord with it; deploy/nfpm.yaml is its config). Prints the
# binary's path.
set -euo pipefail
VERSION=${NFPM_VERSION:-v2.48.0}
CACHE=${MIRRORD_TEST_CACHE:-$HOME/.cache/mirrord-test}
BIN=$CACHE/nfpm-$VERSION/nfpm
if [[ -x $BIN ]] && "$BIN" --version >/dev/null 2>&1; then
  echo "$BIN"; exit 0
fi
mkdir -p "$(dirname "$BIN")"
GOBIN=$(mktemp -d)
trap 'rm -rf "$GOBIN"' EXIT
GOBIN=$GOBIN go install "github.com/goreleaser/nfpm/v2/cmd/nfpm@$VERSION" >&2
mv "$GOBIN/nfpm" "$BIN"
echo "$BIN"
