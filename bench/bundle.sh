#!/usr/bin/env bash
# make bench, bundle part (bench/run.sh calls it): on the apt fixture of
# bench/apt.sh (APT_BENCH_PACKAGES synthetic packages, synced by mirrord),
# in the same run and interleaved:
#   - `mirrord export ID -o FILE` against `tar -cf - BLOBS | zstd -3 -T0`
#     of the very same blob files;
#   - `mirrord import FILE` into an empty store (signature, every digest,
#     blob writes, syncfs, the record) against `zstd -dc | tar -xf -` of the
#     anchor's archive into an empty directory.
# Knobs: BUNDLE_BENCH_PACKAGES (default 5000), BUNDLE_BENCH_PAYLOAD (bytes
# per package, 4096, as bench/apt.sh), BUNDLE_BENCH_ROUNDS (3), BUNDLE_BENCH_OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BIN:-$ROOT/bin/mirrord}
N=${BUNDLE_BENCH_PACKAGES:-5000}
PAYLOAD=${BUNDLE_BENCH_PAYLOAD:-4096}
ROUNDS=${BUNDLE_BENCH_ROUNDS:-3}
OUT=${BUNDLE_BENCH_OUT:-$ROOT/bench/out/bundle}
rm -rf "$OUT"; mkdir -p "$OUT"

need() { # need CMD:PACKAGE ...
  local missing=()
  for pair in "$@"; do command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}"); done
  if ((${#missing[@]})); then
    echo "bench/bundle: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}
need gpg:gpg zstd:zstd tar:tar apt-ftparchive:apt-utils curl:curl /usr/bin/time:time

[ -x "$BIN" ] || go build -o "$BIN" ./cmd/mirrord
go build -o "$OUT/aptgen" ./bench/aptgen

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)); }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b-a}'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

export GNUPGHOME
GNUPGHOME=$(mktemp -d /tmp/bundlebench-gpg.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  gpgconf --kill gpg-agent 2>/dev/null || true
  rm -rf "$GNUPGHOME" "$OUT"/up "$OUT"/data "$OUT"/in-* "$OUT"/*.bundle "$OUT"/anchor*
}
[ "${BUNDLE_BENCH_KEEP:-0}" = 1 ] || trap cleanup EXIT

# --- the fixture: a signed synthetic apt upstream (as bench/apt.sh makes it)
gpg --batch --quiet --passphrase "" --quick-gen-key "bundle bench <bench@example.invalid>" rsa3072 sign never >/dev/null 2>&1
FPR=$(gpg --with-colons --list-keys | awk -F: '/^fpr/ {print $10; exit}')
gpg --export "$FPR" > "$OUT/upstream.gpg" 2>/dev/null
gpg --batch --quiet --passphrase "" --quick-gen-key "bundle bench signer <signer@example.invalid>" rsa3072 sign never >/dev/null 2>&1
SIGNER=$(gpg --with-colons --list-keys signer@example.invalid | awk -F: '/^fpr/ {print $10; exit}')
gpg --batch --pinentry-mode loopback --passphrase '' --armor --export-secret-keys "$SIGNER" > "$OUT/mirrord-signing.asc" 2>/dev/null
gpg --armor --export "$SIGNER" > "$OUT/mirrord.asc" 2>/dev/null

UP=$OUT/up
"$OUT/aptgen" gen -dir "$UP" -n "$N" -payload "$PAYLOAD"
IDX=$UP/dists/bench/main/binary-amd64
xz -T0 -6 -k "$IDX/Packages"; gzip -9 -n -k "$IDX/Packages"
(cd "$UP/dists/bench" && apt-ftparchive -o APT::FTPArchive::Release::Suite=bench -o APT::FTPArchive::Release::Codename=bench \
   -o APT::FTPArchive::Release::Architectures=amd64 -o APT::FTPArchive::Release::Components=main release . > ../Release.tmp)
mv "$UP/dists/Release.tmp" "$UP/dists/bench/Release"
gpg --batch --yes --quiet -u "$FPR" --digest-algo SHA256 --clearsign -o "$UP/dists/bench/InRelease" "$UP/dists/bench/Release"
PORT=$(free_port)
"$OUT/aptgen" serve -dir "$UP" -addr "127.0.0.1:$PORT" >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$PORT/dists/bench/InRelease" && break; sleep 0.05; done
cat > "$OUT/a.yaml" <<YAML
data_dir: $OUT/data
signing: {key_file: $OUT/mirrord-signing.asc}
apt:
  - {name: bench, url: "http://127.0.0.1:$PORT", suites: [bench], components: [main], architectures: [amd64], keyring: $OUT/upstream.gpg}
YAML
ID=$("$BIN" --config "$OUT/a.yaml" --log-level warn sync 2>"$OUT/sync.log")
kill "${PIDS[@]}" 2>/dev/null || true; PIDS=()
BLOBS=$(find "$OUT/data/blobs" -type f | wc -l)
BYTES=$(du -sb "$OUT/data/blobs" | cut -f1)

# --- interleaved rounds: anchor, mirrord, anchor, ... Each step's wall
# time (the goal) and CPU time (user+sys, steadier on a loaded machine).
timed() { # timed NAME CMD...: run CMD, append wall to NAME.w and CPU to NAME.c
  local name=$1; shift
  /usr/bin/time -f "%e %U %S" -o "$OUT/time.tmp" "$@"
  awk '{print $1}' "$OUT/time.tmp" >> "$OUT/$name.w"
  awk '{printf "%.2f\n", $2+$3}' "$OUT/time.tmp" >> "$OUT/$name.c"
}
rm -f "$OUT"/*.w "$OUT"/*.c
for r in $(seq "$ROUNDS"); do
  rm -f "$OUT/anchor.tar.zst" "$OUT/b.bundle"; rm -rf "$OUT/anchor" "$OUT/in-$r"
  sync
  timed ex.a sh -c "tar -C '$OUT/data/blobs' -cf - sha256 | zstd -q -3 -T0 -o '$OUT/anchor.tar.zst'"
  sync
  timed ex.m "$BIN" --config "$OUT/a.yaml" --log-level warn export "$ID" -o "$OUT/b.bundle"
  sync
  mkdir -p "$OUT/anchor"
  timed im.a sh -c "zstd -q -dc '$OUT/anchor.tar.zst' | tar -C '$OUT/anchor' -xf -"
  rm -rf "$OUT/anchor"; mkdir -p "$OUT/anchor"; sync
  timed im.s sh -c "zstd -q -dc '$OUT/anchor.tar.zst' | tar -C '$OUT/anchor' -xf - && sync -f '$OUT/anchor'"
  printf 'data_dir: %s\n' "$OUT/in-$r" > "$OUT/b.yaml"
  sync
  timed im.m "$BIN" --config "$OUT/b.yaml" --log-level warn import "$OUT/b.bundle" --keyring "$OUT/mirrord.asc"
  rm -rf "$OUT/in-$r"
done >/dev/null
med() { median < "$OUT/$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2fx", a/b}'; }
printf '\nbundle: apt fixture, %d packages: %d blobs, %d MiB; bundle %d MiB, tar.zst %d MiB (median of %d rounds; wall s, cpu s)\n' \
  "$N" "$BLOBS" $((BYTES >> 20)) $(($(stat -c %s "$OUT/b.bundle") >> 20)) $(($(stat -c %s "$OUT/anchor.tar.zst") >> 20)) "$ROUNDS"
row() { printf '  %-52s %7s %7s\n' "$1" "$(med "$2.w")" "$(med "$2.c")"; }
row "tar -cf - | zstd -3 -T0" ex.a
row "mirrord export" ex.m
printf '  ratio export mirrord/tar+zstd: %s wall (goal <= 1.2x), %s cpu\n' "$(ratio "$(med ex.m.w)" "$(med ex.a.w)")" "$(ratio "$(med ex.m.c)" "$(med ex.a.c)")"
row "zstd -dc | tar -xf -" im.a
row "zstd -dc | tar -xf - && sync -f (durable, reference)" im.s
row "mirrord import (signature, digests, syncfs)" im.m
printf '  ratio import mirrord/zstd+tar: %s wall (goal <= 1.2x), %s cpu; against the durable tar: %s wall\n' \
  "$(ratio "$(med im.m.w)" "$(med im.a.w)")" "$(ratio "$(med im.m.c)" "$(med im.a.c)")" "$(ratio "$(med im.m.w)" "$(med im.s.w)")"
