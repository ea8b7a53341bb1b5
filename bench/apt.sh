#!/usr/bin/env bash
# make bench, apt part (bench/run.sh calls it): on the same synthetic
# upstream in the same run,
#   - cold `mirrord sync` against aptly (mirror create + mirror update +
#     snapshot create + publish snapshot; Debian's aptly package, with its
#     own -config and rootDir in the work dir, verifying with the same
#     keyring and downloading 4 files at a time, as mirrord does);
#   - the no-op re-sync of the unchanged upstream;
#   - a filtered subset (FILTER, default bench-pkg-04*: 1,000 packages
#     whose dependency chains pull in about as many again) with its
#     dependency closure: mirrord's filter + filter_with_deps against
#     aptly's -filter -filter-with-deps on the same pattern;
#   - mirrord's peak RSS (/usr/bin/time -v) syncing a 65,000-stanza
#     Packages index (the size of Debian main amd64).
# Knobs: APT_BENCH_PACKAGES (default 5000), APT_BENCH_BIG (65000),
# APT_BENCH_PAYLOAD (bytes per package, 4096), APT_BENCH_OUT (the work
# dir, bench/out/apt), APT_BENCH_KEEP=1 (keep the generated repositories
# and stores there).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BIN:-$ROOT/bin/mirrord}
N=${APT_BENCH_PACKAGES:-5000}
BIG=${APT_BENCH_BIG:-65000}
PAYLOAD=${APT_BENCH_PAYLOAD:-4096}
OUT=${APT_BENCH_OUT:-$ROOT/bench/out/apt}
FILTER=${APT_BENCH_FILTER:-bench-pkg-04*}
rm -rf "$OUT"; mkdir -p "$OUT"

need() { # need CMD:PACKAGE ...
  local missing=()
  for pair in "$@"; do command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}"); done
  if ((${#missing[@]})); then
    echo "bench/apt: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}
need aptly:aptly gpg:gpg gpgv:gpgv xz:xz-utils apt-ftparchive:apt-utils curl:curl /usr/bin/time:time

[ -x "$BIN" ] || go build -o "$BIN" ./cmd/mirrord
go build -o "$OUT/aptgen" ./bench/aptgen

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)); }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b-a}'; }

# --- the upstream's signing key
export GNUPGHOME
GNUPGHOME=$(mktemp -d /tmp/aptbench-gpg.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  gpgconf --kill gpg-agent 2>/dev/null || true
  rm -rf "$GNUPGHOME"
  # Keep the logs; the repositories and stores are big (APT_BENCH_KEEP=1 keeps them).
  [ "${APT_BENCH_KEEP:-0}" = 1 ] || rm -rf "$OUT"/up "$OUT"/up-big "$OUT"/data "$OUT"/data-big "$OUT"/data-subset "$OUT"/aptly
}
trap cleanup EXIT
gpg --batch --quiet --passphrase '' --quick-gen-key "mirrord bench <bench@example.invalid>" rsa3072 sign never 2>/dev/null
gpg --check-trustdb >/dev/null 2>&1 || true
FPR=$(gpg --with-colons --list-keys | awk -F: '/^fpr/ {print $10; exit}')
gpg --export "$FPR" > "$OUT/upstream.gpg"
# mirrord's own signing key (RSA-3072 like the one it would generate),
# made here so that key generation is not part of the timed first sync.
gpg --batch --quiet --passphrase '' --quick-gen-key "mirrord bench signer <signer@example.invalid>" rsa3072 sign never 2>/dev/null
SIGNER=$(gpg --with-colons --list-keys signer@example.invalid | awk -F: '/^fpr/ {print $10; exit}')
gpg --batch --pinentry-mode loopback --passphrase '' --armor --export-secret-keys "$SIGNER" > "$OUT/mirrord-signing.asc"

# make_repo DIR N EXTRA-APTGEN-FLAGS...: a signed repository with suite
# "bench"; keep_plain=0 drops the plain Packages (listed in the Release
# but not served, like Debian).
make_repo() {
  local dir=$1 n=$2 keep_plain=$3; shift 3
  "$OUT/aptgen" gen -dir "$dir" -n "$n" -payload "$PAYLOAD" "$@"
  local idx=$dir/dists/bench/main/binary-amd64
  xz -T0 -6 -k "$idx/Packages"
  gzip -9 -n -k "$idx/Packages"
  (cd "$dir/dists/bench" && apt-ftparchive -o APT::FTPArchive::Release::Origin=bench -o APT::FTPArchive::Release::Label=bench \
     -o APT::FTPArchive::Release::Suite=bench -o APT::FTPArchive::Release::Codename=bench \
     -o APT::FTPArchive::Release::Architectures=amd64 -o APT::FTPArchive::Release::Components=main release . > ../Release.tmp)
  mv "$dir/dists/Release.tmp" "$dir/dists/bench/Release"
  gpg --batch --yes --quiet -u "$FPR" --digest-algo SHA256 --clearsign -o "$dir/dists/bench/InRelease" "$dir/dists/bench/Release"
  gpg --batch --yes --quiet -u "$FPR" --digest-algo SHA256 -abs -o "$dir/dists/bench/Release.gpg" "$dir/dists/bench/Release"
  [ "$keep_plain" = 1 ] || rm "$idx/Packages"
}

serve() { # serve DIR VAR: start a static server, set VAR to its URL
  local port; port=$(free_port)
  "$OUT/aptgen" serve -dir "$1" -addr "127.0.0.1:$port" >/dev/null 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$port/dists/bench/InRelease" && break; sleep 0.05; done
  printf -v "$2" 'http://127.0.0.1:%s' "$port"
}

mirrord_config() { # mirrord_config FILE DATA URL [EXTRA-YAML]
  cat > "$1" <<YAML
data_dir: $2
signing: {key_file: $OUT/mirrord-signing.asc}
apt:
  - name: bench
    url: $3
    suites: [bench]
    components: [main]
    architectures: [amd64]
    keyring: $OUT/upstream.gpg
${4:-}
YAML
}

echo "bench/apt: generating $N packages and a $BIG-stanza index..." >&2
make_repo "$OUT/up" "$N" 1
make_repo "$OUT/up-big" "$BIG" 0 -same -payload 512
serve "$OUT/up" URL
serve "$OUT/up-big" BIG_URL
SIZE_MB=$(du -sm "$OUT/up/pool" | cut -f1)

# --- mirrord: cold sync, then the no-op re-sync
mirrord_config "$OUT/mirrord.yaml" "$OUT/data" "$URL"
t0=$(now); "$BIN" --config "$OUT/mirrord.yaml" --log-level warn sync >"$OUT/mirrord-sync.out" 2>"$OUT/mirrord-sync.log"; t1=$(now)
M_COLD=$(secs "$t0" "$t1")
t0=$(now); "$BIN" --config "$OUT/mirrord.yaml" --log-level warn sync >/dev/null 2>>"$OUT/mirrord-sync.log"; t1=$(now)
M_NOOP=$(secs "$t0" "$t1")

# --- aptly, same data, same concurrency (4 downloads at once, both defaults)
cat > "$OUT/aptly.conf" <<JSON
{"rootDir": "$OUT/aptly", "downloadConcurrency": 4, "architectures": ["amd64"],
 "gpgProvider": "gpg", "skipContentsPublishing": true, "FileSystemPublishEndpoints": {}}
JSON
A="aptly -config=$OUT/aptly.conf"
t0=$(now)
{
  $A mirror create -keyring="$OUT/upstream.gpg" -architectures=amd64 bench "$URL/" bench main
  $A mirror update -keyring="$OUT/upstream.gpg" bench
  $A snapshot create bench-snap from mirror bench
  $A publish snapshot -batch -passphrase= -gpg-key="$FPR" -distribution=bench bench-snap
} >"$OUT/aptly.log" 2>&1
t1=$(now)
A_COLD=$(secs "$t0" "$t1")

# --- a filtered subset with its dependency closure, both tools, same pattern
mirrord_config "$OUT/subset.yaml" "$OUT/data-subset" "$URL" "    filter: [\"$FILTER\"]
    filter_with_deps: true"
t0=$(now); "$BIN" --config "$OUT/subset.yaml" --log-level info sync >/dev/null 2>"$OUT/mirrord-subset.log"; t1=$(now)
M_SUB=$(secs "$t0" "$t1")
M_SUB_N=$(grep -o 'filter selected packages.*packages=[0-9]*' "$OUT/mirrord-subset.log" | grep -o '[0-9]*$' | tail -1)
t0=$(now)
{
  $A mirror create -keyring="$OUT/upstream.gpg" -architectures=amd64 -filter="Name (% $FILTER)" -filter-with-deps bench-sub "$URL/" bench main
  $A mirror update -keyring="$OUT/upstream.gpg" bench-sub
  $A snapshot create bench-sub-snap from mirror bench-sub
  $A publish snapshot -batch -passphrase= -gpg-key="$FPR" -distribution=bench-sub bench-sub-snap
} >"$OUT/aptly-subset.log" 2>&1
t1=$(now)
A_SUB=$(secs "$t0" "$t1")
A_SUB_N=$($A mirror show bench-sub | awk -F': ' '/Number of packages/ {print $2}')

# --- peak RSS on a 65,000-stanza index
mirrord_config "$OUT/big.yaml" "$OUT/data-big" "$BIG_URL"
/usr/bin/time -v "$BIN" --config "$OUT/big.yaml" --log-level warn sync >/dev/null 2>"$OUT/big.time"
RSS_KB=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$OUT/big.time")
BIG_SECS=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$OUT/big.time")

printf '\napt: %d packages (%d MiB of .debs), served from 127.0.0.1\n' "$N" "$SIZE_MB"
printf '  %-52s %8s s\n' "mirrord cold sync" "$M_COLD"
printf '  %-52s %8s s\n' "aptly mirror create+update, snapshot create, publish" "$A_COLD"
printf '  ratio mirrord/aptly: %.2fx (goal <= 0.3x)\n' "$(awk -v a="$M_COLD" -v b="$A_COLD" 'BEGIN{print a/b}')"
printf '  %-52s %8s s (goal < 0.3 s)\n' "mirrord no-op re-sync" "$M_NOOP"
printf '  filtered subset %s with dependencies (mirrord %s packages, aptly %s)\n' "$FILTER" "$M_SUB_N" "$A_SUB_N"
printf '  %-52s %8s s\n' "mirrord cold sync, filter + filter_with_deps" "$M_SUB"
printf '  %-52s %8s s\n' "aptly -filter -filter-with-deps, snapshot, publish" "$A_SUB"
printf '  ratio mirrord/aptly: %.2fx (goal <= 0.3x)\n' "$(awk -v a="$M_SUB" -v b="$A_SUB" 'BEGIN{print a/b}')"
printf '  %-52s %8.1f MiB (goal <= 150 MiB; wall %s)\n' "mirrord peak RSS, $BIG-stanza Packages index" "$(awk -v k="$RSS_KB" 'BEGIN{print k/1024}')" "$BIG_SECS"
