#!/usr/bin/env bash
# make bench, yum part: a cold `mirrord sync` of a fixture yum repository
# (>= 2,000 signed packages) against `dnf reposync --download-metadata` of
# the same repository, served by nginx on 127.0.0.1, in the same run; then
# the no-op re-sync. Prints wall time and peak RSS (/usr/bin/time -v) and
# the mirrord/reposync ratio.
#
# Environment:
#   BENCH_YUM_PACKAGES  packages in the fixture (default 2000)
#   BENCH_YUM_KB        random payload per package, KiB (default 16)
#   BENCH_YUM_RUNS      cold runs of each tool; the median is reported (default 3)
#   BENCH_YUM_DIR       where the repos and data dirs go (default bench/out/yum;
#                       point it at a tmpfs to leave the disk out)
#   MIRRORD_BIN         the binary (default bin/mirrord, built when missing)
# The signed rpms are cached in ~/.cache/mirrord-bench (building and signing
# 2,000 packages takes a couple of minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${BENCH_YUM_PACKAGES:-2000}
KB=${BENCH_YUM_KB:-16}
RUNS=${BENCH_YUM_RUNS:-3}
OUT=${BENCH_YUM_DIR:-$ROOT/bench/out/yum}
BIN=${MIRRORD_BIN:-$ROOT/bin/mirrord}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/mirrord-bench/yum-$N-$KB

need() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if ((${#missing[@]})); then
    echo "bench: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}
need rpm createrepo-c dnf dnf-plugins-core gpg nginx time
if [[ ! -x $BIN ]]; then
  mkdir -p "$(dirname "$BIN")"
  go build -o "$BIN" ./cmd/mirrord
fi

rm -rf "$OUT"; mkdir -p "$OUT"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)); }

# --- fixture: one spec, N subpackages (each requires the previous one),
# built with one rpmbuild run, signed with rpmsign by a throwaway key.
spec() {
  printf 'Name: bench\nVersion: 1\nRelease: 1\nSummary: bench\nLicense: MIT\nBuildArch: noarch\n%%description\nbench\n'
  for i in $(seq -w 1 "$N"); do
    printf '%%package -n bench-pkg%s\nSummary: bench package %s\nVersion: 1.%d\nRelease: 1\nAutoReqProv: no\n' "$i" "$i" $((10#$i % 7))
    if ((10#$i > 1)); then printf 'Requires: bench-pkg%0*d\n' "${#N}" $((10#$i - 1)); fi
    printf '%%description -n bench-pkg%s\nBench package %s.\n' "$i" "$i"
  done
  printf '%%install\nfor i in $(seq -w 1 %s); do mkdir -p %%{buildroot}/usr/share/bench/$i; head -c %d /dev/urandom > %%{buildroot}/usr/share/bench/$i/data; done\n' "$N" $((KB * 1024))
  for i in $(seq -w 1 "$N"); do printf '%%files -n bench-pkg%s\n/usr/share/bench/%s/data\n' "$i" "$i"; done
}

build_fixture() {
  local tmp=$CACHE.tmp
  rm -rf "$tmp"; mkdir -p "$tmp/rpms" "$tmp/top"
  mkdir -m 700 "$tmp/gnupg"
  export GNUPGHOME=$tmp/gnupg
  gpg --batch --pinentry-mode loopback --passphrase '' --quick-gen-key "mirrord bench <bench@example.org>" rsa2048 sign never 2>/dev/null
  local fpr
  fpr=$(gpg --list-keys --with-colons | awk -F: '/^fpr/ {print $10; exit}')
  gpg --armor --export "$fpr" > "$tmp/key.asc"
  spec > "$tmp/bench.spec"
  local t0=$SECONDS
  rpmbuild --define "_topdir $tmp/top" --define "_rpmdir $tmp/rpms" \
    --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
    --define "__spec_install_post %{nil}" --define "__os_install_post %{nil}" --quiet -bb "$tmp/bench.spec"
  echo "bench: built $N rpms in $((SECONDS - t0))s" >&2
  t0=$SECONDS
  find "$tmp/rpms" -name '*.rpm' -print0 | xargs -0 -n 200 -P "$(nproc)" \
    rpmsign --define "__gpg $(command -v gpg)" --define "_gpg_name $fpr" --addsign >/dev/null 2>&1
  echo "bench: signed them in $((SECONDS - t0))s" >&2
  gpgconf --homedir "$tmp/gnupg" --kill gpg-agent 2>/dev/null || true
  rm -rf "$tmp/top"
  rm -rf "$CACHE"; mv "$tmp" "$CACHE"
}
if [[ ! -f $CACHE/key.asc || $(find "$CACHE/rpms" -name '*.rpm' | wc -l) -ne $N ]]; then
  echo "bench: building the yum fixture ($N packages, $KB KiB each) into $CACHE" >&2
  build_fixture
fi

REPO=$OUT/www
mkdir -p "$REPO/Packages"
cp "$CACHE"/rpms/*.rpm "$REPO/Packages/"
createrepo_c --quiet --workers 2 "$REPO"
GNUPGHOME=$CACHE/gnupg gpg --batch --yes --detach-sign --armor "$REPO/repodata/repomd.xml"
gpgconf --homedir "$CACHE/gnupg" --kill gpg-agent 2>/dev/null || true

# --- nginx serves the repository
PORT=$(free_port)
mkdir -p "$OUT/nginx"
cat > "$OUT/nginx/nginx.conf" <<NGINX
worker_processes 2;
pid $OUT/nginx/nginx.pid;
error_log $OUT/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 100000;
  default_type application/octet-stream;
  client_body_temp_path $OUT/nginx; proxy_temp_path $OUT/nginx; fastcgi_temp_path $OUT/nginx;
  uwsgi_temp_path $OUT/nginx; scgi_temp_path $OUT/nginx;
  server { listen 127.0.0.1:$PORT; root $REPO; }
}
NGINX
nginx -c "$OUT/nginx/nginx.conf" -p "$OUT/nginx"
trap 'nginx -c "$OUT/nginx/nginx.conf" -p "$OUT/nginx" -s stop 2>/dev/null || true' EXIT
URL=http://127.0.0.1:$PORT/

# The signing key lives outside the data dir: a real mirror generates it
# once, not on every cold sync.
cat > "$OUT/mirrord.yaml" <<YAML
data_dir: $OUT/data
signing: {key_file: $OUT/signing.asc}
yum:
  - name: bench
    url: $URL
    gpgkey: $CACHE/key.asc
YAML

# timed LABEL CMD...: runs CMD under /usr/bin/time -v; sets WALL (s) and RSS (MiB).
timed() {
  local label=$1; shift
  /usr/bin/time -v "$@" > "$OUT/$label.out" 2> "$OUT/$label.time" || { echo "bench: $label failed:" >&2; tail -20 "$OUT/$label.time" >&2; exit 1; }
  WALL=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$OUT/$label.time")
  RSS=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$OUT/$label.time")
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

mkdir -p "$OUT/empty"
reposync() {
  rm -rf "$OUT/reposync" "$OUT/dnfcache"
  dnf reposync -q --releasever=9 --setopt=reposdir="$OUT/empty" --setopt=cachedir="$OUT/dnfcache" \
    --repofrompath=bench,"$URL" --repo=bench --download-metadata -p "$OUT/reposync"
}
# Warm-up (untimed): creates mirrord's signing key and puts the repository
# in the page cache for both tools.
"$BIN" --config "$OUT/mirrord.yaml" --log-level warn sync >/dev/null
reposync
declare -a MW MR RW RR
for run in $(seq "$RUNS"); do
  rm -rf "$OUT/data"
  sync; timed "mirrord-cold-$run" "$BIN" --config "$OUT/mirrord.yaml" --log-level warn sync
  MW+=("$WALL"); MR+=("$RSS")
  rm -rf "$OUT/reposync" "$OUT/dnfcache"
  sync; timed "reposync-cold-$run" dnf reposync -q --releasever=9 --setopt=reposdir="$OUT/empty" \
    --setopt=cachedir="$OUT/dnfcache" --repofrompath=bench,"$URL" --repo=bench --download-metadata -p "$OUT/reposync"
  RW+=("$WALL"); RR+=("$RSS")
done
got=$(find "$OUT/reposync" -name '*.rpm' | wc -l)
[[ $got -eq $N ]] || { echo "bench: reposync fetched $got of $N packages" >&2; exit 1; }
timed mirrord-noop "$BIN" --config "$OUT/mirrord.yaml" --log-level warn sync
NW=$WALL NR=$RSS

mw=$(median "${MW[@]}"); rw=$(median "${RW[@]}")
printf '\nyum: %d packages (%d KiB payload each, %s), served by nginx on 127.0.0.1; median of %d cold runs\n' \
  "$N" "$KB" "$(du -sh "$REPO" | cut -f1)" "$RUNS"
printf '%-28s %10s %14s   %s\n' "" "wall s" "peak RSS MiB" "runs (s)"
printf '%-28s %10s %14s   %s\n' "mirrord sync (cold)" "$mw" "$(median "${MR[@]}")" "${MW[*]}"
printf '%-28s %10s %14s   %s\n' "dnf reposync (cold)" "$rw" "$(median "${RR[@]}")" "${RW[*]}"
printf '%-28s %10s %14s\n' "mirrord sync (no-op)" "$NW" "$NR"
awk -v m="$mw" -v r="$rw" 'BEGIN { printf "mirrord/reposync cold: %.2fx (goal <= 0.5x)\n", m / r }'
