#!/usr/bin/env bash
# make bench, s3 part (bench/run.sh calls it): on the same data in the
# same run,
#   - cold `mirrord sync` of the synthetic 5,000-package apt upstream into
#     the fs store vs into the s3 store on a local versitygw (goal: s3 <=
#     1.5x fs);
#   - serving a 1 MiB blob with wrk from a `mirrord serve` on the s3 store
#     whose read cache is warm vs nginx serving the same file (goal >= 0.9x).
# Knobs: S3_BENCH_PACKAGES (5000), S3_BENCH_PAYLOAD (4096 bytes per
# package), BENCH_DURATION (5s), BENCH_CONNS (64), BENCH_ROUNDS (3),
# MIRRORD_VERSITYGW_BIN (else .ci/versitygw.sh builds it).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BIN:-$ROOT/bin/mirrord}
N=${S3_BENCH_PACKAGES:-5000}
PAYLOAD=${S3_BENCH_PAYLOAD:-4096}
DUR=${BENCH_DURATION:-5s}
CONNS=${BENCH_CONNS:-64}
ROUNDS=${BENCH_ROUNDS:-3}
OUT=$ROOT/bench/out/s3
rm -rf "$OUT"; mkdir -p "$OUT"

need() { # need CMD:PACKAGE ...
  local missing=()
  for pair in "$@"; do command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}"); done
  if ((${#missing[@]})); then
    echo "bench/s3: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}
need gpg:gpg xz:xz-utils apt-ftparchive:apt-utils curl:curl nginx:nginx wrk:wrk /usr/bin/time:time

[ -x "$BIN" ] || go build -o "$BIN" ./cmd/mirrord
go build -o "$OUT/aptgen" ./bench/aptgen
VGW=${MIRRORD_VERSITYGW_BIN:-$(.ci/versitygw.sh)}

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)); }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b-a}'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

export GNUPGHOME
GNUPGHOME=$(mktemp -d /tmp/s3bench-gpg.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$OUT/nginx.conf" ] && nginx -c "$OUT/nginx.conf" -p "$OUT" -s stop 2>/dev/null || true
  gpgconf --kill gpg-agent 2>/dev/null || true
  rm -rf "$GNUPGHOME" "$OUT"/up "$OUT"/data-* "$OUT"/s3
}
trap cleanup EXIT

# --- the upstream: a signed repository (as bench/apt.sh builds it)
gpg --batch --quiet --passphrase '' --quick-gen-key "mirrord bench <bench@example.invalid>" rsa3072 sign never 2>/dev/null
FPR=$(gpg --with-colons --list-keys | awk -F: '/^fpr/ {print $10; exit}')
gpg --export "$FPR" > "$OUT/upstream.gpg"
gpg --batch --quiet --passphrase '' --quick-gen-key "mirrord bench signer <signer@example.invalid>" rsa3072 sign never 2>/dev/null
SIGNER=$(gpg --with-colons --list-keys signer@example.invalid | awk -F: '/^fpr/ {print $10; exit}')
gpg --batch --pinentry-mode loopback --passphrase '' --armor --export-secret-keys "$SIGNER" > "$OUT/mirrord-signing.asc"
echo "bench/s3: generating $N packages..." >&2
"$OUT/aptgen" gen -dir "$OUT/up" -n "$N" -payload "$PAYLOAD"
idx=$OUT/up/dists/bench/main/binary-amd64
xz -T0 -6 -k "$idx/Packages"; gzip -9 -n -k "$idx/Packages"
(cd "$OUT/up/dists/bench" && apt-ftparchive -o APT::FTPArchive::Release::Suite=bench -o APT::FTPArchive::Release::Codename=bench \
   -o APT::FTPArchive::Release::Architectures=amd64 -o APT::FTPArchive::Release::Components=main release . > ../Release.tmp)
mv "$OUT/up/dists/Release.tmp" "$OUT/up/dists/bench/Release"
gpg --batch --yes --quiet -u "$FPR" --digest-algo SHA256 --clearsign -o "$OUT/up/dists/bench/InRelease" "$OUT/up/dists/bench/Release"
UPORT=$(free_port)
"$OUT/aptgen" serve -dir "$OUT/up" -addr "127.0.0.1:$UPORT" >/dev/null 2>&1 &
PIDS+=($!)
URL=http://127.0.0.1:$UPORT
for _ in $(seq 100); do curl -fs -o /dev/null "$URL/dists/bench/InRelease" && break; sleep 0.05; done
head -c $((1<<20)) /dev/urandom > "$OUT/big.bin"
mkdir -p "$OUT/www/files"; cp "$OUT/big.bin" "$OUT/www/files/big.bin"

# --- the S3 server
SPORT=$(free_port)
mkdir -p "$OUT/s3/bench"
"$VGW" --access benchkey --secret benchsecret --port "127.0.0.1:$SPORT" posix "$OUT/s3" >"$OUT/versitygw.log" 2>&1 &
VGW_PID=$!
PIDS+=($VGW_PID)
# CPU seconds (user+system) a process has used.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14+$15)/hz}' "/proc/$1/stat"; }
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$SPORT/" && break; sleep 0.05; done
echo benchsecret > "$OUT/s3.secret"

config() { # config FILE DATA STORE-YAML
  cat > "$1" <<YAML
data_dir: $2
signing: {key_file: $OUT/mirrord-signing.asc}
$3
apt:
  - {name: bench, url: $URL, suites: [bench], components: [main], architectures: [amd64], keyring: $OUT/upstream.gpg}
file:
  - name: files
    files: [{url: $OUT/big.bin, path: big.bin, sha256: $(sha256sum "$OUT/big.bin" | cut -d' ' -f1)}]
YAML
}
s3yaml() { # s3yaml PREFIX
  printf 'store: {kind: s3, endpoint: "http://127.0.0.1:%s", bucket: bench, prefix: %s, path_style: true, access_key_id: benchkey, secret_access_key_file: %s}\ncache: {max_size: 1GiB}\n' "$SPORT" "$1" "$OUT/s3.secret"
}

# --- cold syncs, alternating fs and s3 (fresh store each time)
: > "$OUT/fs.t"; : > "$OUT/s3.t"
for r in $(seq 2); do
  config "$OUT/fs$r.yaml" "$OUT/data-fs$r" ""
  t0=$(now); /usr/bin/time -f '%U %S' -o "$OUT/fcpu.$r" "$BIN" --config "$OUT/fs$r.yaml" --log-level warn sync >/dev/null 2>>"$OUT/sync.log"; t1=$(now)
  secs "$t0" "$t1" >> "$OUT/fs.t"; echo >> "$OUT/fs.t"
  awk '{printf "%.2f\n", $1+$2}' "$OUT/fcpu.$r" >> "$OUT/f.cpu"
  config "$OUT/s3-$r.yaml" "$OUT/data-s3-$r" "$(s3yaml "round$r/")"
  c0=$(cpu_of "$VGW_PID")
  t0=$(now); /usr/bin/time -f '%U %S' -o "$OUT/mcpu.$r" "$BIN" --config "$OUT/s3-$r.yaml" --log-level warn sync >/dev/null 2>>"$OUT/sync.log"; t1=$(now)
  secs "$t0" "$t1" >> "$OUT/s3.t"; echo >> "$OUT/s3.t"
  echo "$(cpu_of "$VGW_PID") $c0" | awk '{printf "%.2f\n", $1-$2}' >> "$OUT/vgw.cpu"
  awk '{printf "%.2f\n", $1+$2}' "$OUT/mcpu.$r" >> "$OUT/m.cpu"
done
FS=$(grep . "$OUT/fs.t" | median); S3=$(grep . "$OUT/s3.t" | median)

# --- serving 1 MiB: a fresh replica on the s3 store (warm cache) vs nginx
config "$OUT/replica.yaml" "$OUT/data-replica" "$(s3yaml "round1/")"
ID=$("$BIN" --config "$OUT/s3-1.yaml" snapshot list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])')
MPORT=$(free_port)
"$BIN" --config "$OUT/replica.yaml" --log-level warn serve --listen "127.0.0.1:$MPORT" 2>"$OUT/serve.log" &
PIDS+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$MPORT/healthz" >/dev/null && break; sleep 0.1; done
MURL=http://127.0.0.1:$MPORT/snapshots/$ID/file/files/big.bin
curl -fs -o /dev/null "$MURL" # fills the read cache
NPORT=$(free_port)
cat > "$OUT/nginx.conf" <<NGINX
worker_processes auto;
pid $OUT/nginx.pid;
error_log $OUT/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 100000;
  client_body_temp_path $OUT/tmp; proxy_temp_path $OUT/tmp; fastcgi_temp_path $OUT/tmp;
  uwsgi_temp_path $OUT/tmp; scgi_temp_path $OUT/tmp;
  server { listen 127.0.0.1:$NPORT; root $OUT/www; etag on; }
}
NGINX
mkdir -p "$OUT/tmp"
nginx -c "$OUT/nginx.conf" -p "$OUT"
rps() { wrk -t2 -c"$CONNS" -d"$DUR" "$1" | awk '/Requests\/sec/ {print $2}'; }
: > "$OUT/n.rps"; : > "$OUT/m.rps"
for r in $(seq "$ROUNDS"); do
  rps "http://127.0.0.1:$NPORT/files/big.bin" >> "$OUT/n.rps"
  rps "$MURL" >> "$OUT/m.rps"
done
NR=$(median < "$OUT/n.rps"); MR=$(median < "$OUT/m.rps")

printf '\ns3: %d packages, versitygw %s on 127.0.0.1\n' "$N" "$("$VGW" --version 2>/dev/null | head -1 | awk '{print $NF}')"
printf '  %-46s %8s s (median of 2)\n' "cold apt sync into the fs store" "$FS"
printf '  %-46s %8s s (median of 2)\n' "cold apt sync into the s3 store" "$S3"
printf '  ratio s3/fs: %.2fx (goal <= 1.5x)\n' "$(awk -v a="$S3" -v b="$FS" 'BEGIN{print a/b}')"
printf '  CPU (user+sys, median): fs sync: mirrord %s s; s3 sync: mirrord %s s + versitygw %s s (%s cores)\n' \
  "$(median < "$OUT/f.cpu")" "$(median < "$OUT/m.cpu")" "$(median < "$OUT/vgw.cpu")" "$(nproc)"
printf '  %-46s %8s req/s\n' "1 MiB from nginx" "$NR"
printf '  %-46s %8s req/s\n' "1 MiB from an s3 replica, warm read cache" "$MR"
printf '  ratio mirrord-s3/nginx: %.2fx (goal >= 0.90x), wrk -c%s, median of %s rounds of %s\n' "$(awk -v a="$MR" -v b="$NR" 'BEGIN{print a/b}')" "$CONNS" "$ROUNDS" "$DUR"
