#!/usr/bin/env bash
# `make run`: the main job on the embedded default (fs store, no Consul).
#  1. run/mirrord.yaml is written once: `mirrord init` reads this host's own
#     apt sources and yum repos ("mirror what this build node uses", filtered
#     to a few packages with their dependencies so the first sync is quick),
#     and examples/run-extra.yaml adds the bundled file and git examples.
#     Without usable host sources, only the bundled examples are mirrored.
#  2. sync it into a snapshot, promote that to "production", print the
#     client configuration, and serve it (Ctrl-C stops).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/mirrord}
DIR=run
CFG=$DIR/mirrord.yaml
mkdir -p "$DIR"
if [[ ! -f $CFG ]]; then
  if ! "$BIN" --config "$CFG" init >&2; then
    echo "make run: no usable host package sources; mirroring the bundled examples only" >&2
    printf 'data_dir: data\nlisten: 127.0.0.1:8080\n' > "$CFG"
  fi
  cat examples/run-extra.yaml >> "$CFG"
fi
ID=$("$BIN" --config "$CFG" sync)
"$BIN" --config "$CFG" snapshot promote "$ID" production
"$BIN" --config "$CFG" snapshot list
echo "--- client configuration (mirrord client-config --channel production)" >&2
"$BIN" --config "$CFG" client-config --channel production >&2
cat >&2 <<EOF
--- next, in another terminal (this one serves until Ctrl-C):
  $BIN --config $CFG snapshot list
  $BIN --config $CFG snapshot show $ID
  $BIN --config $CFG sync                      # again: prints $ID while nothing changed
  $BIN --config $CFG snapshot promote $ID staging
  $BIN --config $CFG client-config --channel production
  $BIN --config $CFG repos-yaml --channel production
  curl -s http://127.0.0.1:8080/api/v1/snapshots
EOF
exec "$BIN" --config "$CFG" serve
