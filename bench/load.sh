#!/usr/bin/env bash
# make bench, load part (bench/run.sh calls it): load through change.
# `mirrord serve` with a 2,000-file source in two snapshots; bench/load runs
# LOAD_CLIENTS concurrent clients (default 1000) fetching random files by
# snapshot and channel URL, checking each sha256 against the snapshot
# trees, while LOAD_IDLE idle/slowloris connections (default 1000) sit on
# the server, the channel is promoted and rolled back 50 times through the
# API, and a sync of a changed upstream runs. Prints errors, mismatches
# (both must be 0), p50/p99 latency and the server's peak RSS and fds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BIN:-$ROOT/bin/mirrord}
OUT=${LOAD_BENCH_OUT:-$ROOT/bench/out/load}
FILES=${LOAD_FILES:-2000}
rm -rf "$OUT"; mkdir -p "$OUT/up"
[ -x "$BIN" ] || go build -o "$BIN" ./cmd/mirrord
go build -o "$OUT/load" ./bench/load
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# version V of the upstream: every 5th file changes between versions
make_version() {
  local v=$1
  python3 - "$OUT/up" "$FILES" "$v" <<'PY'
import os, random, sys
root, n, v = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    r = random.Random(i * 1000 + (v if i % 5 == 0 else 0))
    size = r.choice([1024, 2048, 8192, 65536, 262144])
    d = os.path.join(root, "d%02d" % (i % 50))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%04d.bin" % i), "wb") as f:
        f.write(r.randbytes(size))
PY
  {
    echo "data_dir: data"
    echo "auth: {token_file: token}"
    echo "sync: {concurrency: 2}"
    echo "file:"
    echo "  - name: load"
    echo "    files:"
    (cd "$OUT/up" && find . -type f | sort | sed 's|^\./||' | xargs sha256sum) |
      awk -v up="$OUT/up" '{printf "      - {url: %s/%s, path: %s, sha256: %s}\n", up, $2, $2, $1}'
  } > "$OUT/mirrord.yaml"
}

echo "s3cret-load-token" > "$OUT/token"; chmod 600 "$OUT/token"
make_version 1; A=$("$BIN" --config "$OUT/mirrord.yaml" sync 2>>"$OUT/sync.log")
make_version 2; B=$("$BIN" --config "$OUT/mirrord.yaml" sync 2>>"$OUT/sync.log")
"$BIN" --config "$OUT/mirrord.yaml" snapshot promote "$A" production >/dev/null
PORT=$(free_port)
"$BIN" --config "$OUT/mirrord.yaml" --log-level info serve --listen "127.0.0.1:$PORT" 2>"$OUT/serve.log" &
SPID=$!
trap 'kill $SPID 2>/dev/null || true' EXIT
for i in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done

# A sync of a changed upstream while the load runs.
make_version 3
( sleep 5; s=$(date +%s.%N); C=$("$BIN" --config "$OUT/mirrord.yaml" sync 2>>"$OUT/sync.log");
  echo "concurrent sync: $C in $(awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s" ) > "$OUT/sync-during.txt" &
SYNC=$!
ulimit -n 65536 2>/dev/null || true
"$OUT/load" -base "http://127.0.0.1:$PORT" -data "$OUT/data" -snapshots "$A,$B" -token "$OUT/token" \
  -clients "${LOAD_CLIENTS:-1000}" -idle "${LOAD_IDLE:-1000}" -churn 50 -duration "${LOAD_DURATION:-30s}" -pid "$SPID"
rc=$?
wait $SYNC || echo "the concurrent sync failed (see $OUT/sync.log)"
cat "$OUT/sync-during.txt"
echo "server writes logged: $(grep -c 'api write' "$OUT/serve.log" || true) (50 expected)"
exit $rc
