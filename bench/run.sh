#!/usr/bin/env bash
# make bench: mirrord against its anchors, same data, same run.
# Core part: serve a 1 MiB and a 2 KiB file with wrk (64 connections) from
# `mirrord serve` and from nginx; print requests/s, MB/s and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/bin/mirrord
DUR=${BENCH_DURATION:-5s}
CONNS=${BENCH_CONNS:-64}
OUT=$ROOT/bench/out
rm -rf "$OUT"; mkdir -p "$OUT"

need() {
  local missing=()
  for p in "$@"; do command -v "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if ((${#missing[@]})); then
    echo "bench: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}" >/dev/null
  fi
}
need nginx wrk

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)); }

# --- data: the same two files for both servers
mkdir -p "$OUT/www/files"
head -c $((1<<20)) /dev/urandom > "$OUT/www/files/big.bin"
head -c 2048 /dev/urandom > "$OUT/www/files/small.bin"
cat > "$OUT/mirrord.yaml" <<YAML
data_dir: data
file:
  - name: bench
    files:
      - {url: www/files/big.bin, path: big.bin, sha256: $(sha256sum "$OUT/www/files/big.bin" | cut -d' ' -f1)}
      - {url: www/files/small.bin, path: small.bin, sha256: $(sha256sum "$OUT/www/files/small.bin" | cut -d' ' -f1)}
YAML
ID=$("$BIN" --config "$OUT/mirrord.yaml" sync 2>"$OUT/sync.log")

# --- mirrord
MPORT=$(free_port)
"$BIN" --config "$OUT/mirrord.yaml" --log-level warn serve --listen 127.0.0.1:$MPORT 2>"$OUT/serve.log" &
MPID=$!
# --- nginx
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
  default_type application/octet-stream;
  client_body_temp_path $OUT/tmp; proxy_temp_path $OUT/tmp; fastcgi_temp_path $OUT/tmp;
  uwsgi_temp_path $OUT/tmp; scgi_temp_path $OUT/tmp;
  server { listen 127.0.0.1:$NPORT; root $OUT/www; etag on; }
}
NGINX
mkdir -p "$OUT/tmp"
nginx -c "$OUT/nginx.conf" -p "$OUT"
trap 'kill $MPID 2>/dev/null; nginx -c "$OUT/nginx.conf" -p "$OUT" -s stop 2>/dev/null || true' EXIT

for i in $(seq 100); do curl -fs "http://127.0.0.1:$MPORT/healthz" >/dev/null && break; sleep 0.1; done

# CPU ticks (user+system) the server's processes have used so far.
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo "$t"; }
HZ=$(getconf CLK_TCK)

# wrk prints "Requests/sec: N" and "Transfer/sec: X"; normalise to MB/s.
# Also the server's CPU microseconds per request (the processes given
# after the URL): on a machine shared with other work, throughput swings
# with everyone's load, CPU per request much less.
measure() {
  local url=$1; shift
  local t0; t0=$(ticks "$@")
  wrk -t2 -c"$CONNS" -d"$DUR" --latency "$url" > "$OUT/wrk.txt"
  local t1; t1=$(ticks "$@")
  local rps tr n cpu
  n=$(awk '/requests in/ {print $1}' "$OUT/wrk.txt")
  cpu=$(awk -v n="$n" -v t=$((t1 - t0)) -v hz="$HZ" 'BEGIN{printf "%.1f", t/hz*1e6/n}')
  rps=$(awk '/Requests\/sec/ {print $2}' "$OUT/wrk.txt")
  tr=$(awk '/Transfer\/sec/ {print $2}' "$OUT/wrk.txt")
  local mbs
  mbs=$(echo "$tr" | awk '{v=$1; if (v ~ /GB$/) {sub(/GB/,"",v); v*=1024} else if (v ~ /MB$/) {sub(/MB/,"",v)} else if (v ~ /KB$/) {sub(/KB/,"",v); v/=1024} else {sub(/B/,"",v); v/=1048576}; printf "%.1f", v}')
  echo "$rps $mbs $cpu"
}

# Interleave rounds (nginx, mirrord, nginx, ...) and report the median of
# each, so background load hits both alike.
ROUNDS=${BENCH_ROUNDS:-3}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
NPIDS=$(pgrep -P "$(cat "$OUT/nginx.pid")" | tr '\n' ' ')
printf '\n%-8s %-8s %14s %10s %14s   (median of %s rounds of %s, %s connections)\n' file server "requests/s" "MB/s" "CPU us/req" "$ROUNDS" "$DUR" "$CONNS"
for f in small big; do
  : > "$OUT/n.$f"; : > "$OUT/m.$f"
  for r in $(seq "$ROUNDS"); do
    # shellcheck disable=SC2086
    measure "http://127.0.0.1:$NPORT/files/$f.bin" $NPIDS >> "$OUT/n.$f"
    measure "http://127.0.0.1:$MPORT/snapshots/$ID/file/bench/$f.bin" "$MPID" >> "$OUT/m.$f"
  done
  nrps=$(cut -d' ' -f1 "$OUT/n.$f" | median); nmbs=$(cut -d' ' -f2 "$OUT/n.$f" | median); ncpu=$(cut -d' ' -f3 "$OUT/n.$f" | median)
  mrps=$(cut -d' ' -f1 "$OUT/m.$f" | median); mmbs=$(cut -d' ' -f2 "$OUT/m.$f" | median); mcpu=$(cut -d' ' -f3 "$OUT/m.$f" | median)
  printf '%-8s %-8s %14s %10s %14s\n' "$f" nginx "$nrps" "$nmbs" "$ncpu"
  printf '%-8s %-8s %14s %10s %14s\n' "$f" mirrord "$mrps" "$mmbs" "$mcpu"
  printf '%-8s ratio mirrord/nginx: %.2fx requests/s (goal >= 0.90x), %.2fx CPU efficiency (nginx CPU/req / mirrord CPU/req)\n' "$f" \
    "$(echo "$mrps $nrps" | awk '{print $1/$2}')" "$(echo "$ncpu $mcpu" | awk '{print $1/$2}')"
done

# The other parts (each installs its own anchors and prints its ratios).
for part in apt yum git consul s3 bundle load; do
  if [[ -x bench/$part.sh && ${BENCH_ONLY:-$part} == "$part" ]]; then
    echo; echo "== $part"; bash "bench/$part.sh" || echo "bench/$part.sh failed (exit $?)"
  fi
done
