#!/usr/bin/env bash
# make bench, git part: mirrord's git serving against C git's own
# `git http-backend` (as CGI, bench/githttp), same data, same run.
#
# A repository of BENCH_GIT_COMMITS commits (default 30000: about 120,000
# objects) is generated with git fast-import and served by both. Measured:
# full clone wall time (`git clone --bare`; the first mirrord clone is
# "cold", later ones may hit its full-clone pack cache), an incremental
# fetch of 100 new commits into a clone of the old state, a full clone from
# a second mirrord that never synced (its data_dir is the store alone, so it
# builds the repository from the store's packs first), and the peak RSS
# of each server's process tree (the server and its git children) during
# each phase. Prints medians of BENCH_GIT_RUNS runs and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/bin/mirrord
OUT=${BENCH_GIT_OUT:-$ROOT/bench/out/git}
COMMITS=${BENCH_GIT_COMMITS:-30000}
RUNS=${BENCH_GIT_RUNS:-7}
rm -rf "$OUT"; mkdir -p "$OUT"

command -v git >/dev/null || { echo "bench: git is required" >&2; exit 1; }
[[ -x $BIN ]] || go build -o "$BIN" ./cmd/mirrord
go build -o "$OUT/githttp" ./bench/githttp

# Client-side git: no user config. Servers run with their own environments.
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0
export GIT_COMMITTER_NAME=Bench GIT_COMMITTER_EMAIL=bench@example.invalid GIT_AUTHOR_NAME=Bench GIT_AUTHOR_EMAIL=bench@example.invalid

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)); }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

# stream FROM N TAG: a fast-import stream of N commits on main, the first
# one's parent FROM ("" for a root commit). Each commit rewrites one of 600
# files (about 2 KiB of text) in one of 20 directories: 4 objects a commit.
stream() {
  awk -v from="$1" -v n="$2" -v tag="$3" -v t0="$4" 'BEGIN {
    for (i = 0; i < n; i++) {
      msg = tag " commit " i "\n"
      printf "commit refs/heads/main\ncommitter Bench <bench@example.invalid> %d +0000\ndata %d\n%s", t0 + i, length(msg), msg
      if (i == 0 && from != "") printf "from %s\n", from
      body = ""
      for (l = 0; l < 40; l++) body = body sprintf("%s rev %d line %02d of file %d: the quick brown fox\n", tag, i, l, i % 600)
      printf "M 644 inline d%02d/f%03d.txt\ndata %d\n%s\n", i % 20, i % 600, length(body), body
    }
  }'
}

# --- data: one upstream bare repository, gc'd as a maintained server's is.
SRV=$OUT/srv
UP=$SRV/bench.git
git init -q --bare --initial-branch=main "$UP"
t=$(now_ms)
stream "" "$COMMITS" base 1700000000 | MALLOC_TOP_PAD_=67108864 git -C "$UP" fast-import --quiet
git -C "$UP" tag -a -m "release" v1.0 main~100
git -C "$UP" gc --quiet
OBJECTS=$(git -C "$UP" count-objects -v | awk '/^in-pack:/ {print $2}')
PACK=$(git -C "$UP" count-objects -vH | awk '/^size-pack:/ {print $2, $3}')
echo "repository: $COMMITS commits, $OBJECTS objects, pack $PACK (generated in $(( $(now_ms) - t )) ms)"

# --- mirrord mirrors it (by path) and serves it.
MPORT=$(free_port)
cat > "$OUT/mirrord.yaml" <<YAML
data_dir: data
public_url: http://127.0.0.1:$MPORT
git:
  repos:
    - {name: bench, url: srv/bench.git}
YAML
t=$(now_ms)
ID1=$("$BIN" --config "$OUT/mirrord.yaml" sync 2>"$OUT/sync1.log")
echo "mirrord: first sync $(( $(now_ms) - t )) ms (snapshot $ID1)"
"$BIN" --config "$OUT/mirrord.yaml" --log-level warn serve --listen 127.0.0.1:$MPORT 2>"$OUT/serve.log" &
MPID=$!
"$OUT/githttp" -root "$SRV" > "$OUT/githttp.addr" 2>"$OUT/githttp.log" &
GPID=$!
trap 'kill $MPID $GPID 2>/dev/null || true; touch "$OUT"/*.peak.stop 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$MPORT/healthz" >/dev/null && [[ -s $OUT/githttp.addr ]] && break; sleep 0.1; done
GADDR=$(cat "$OUT/githttp.addr")
M1=http://127.0.0.1:$MPORT/snapshots/$ID1/git/bench.git
C=http://$GADDR/bench.git

# --- peak RSS (KiB) of a process and its descendants, sampled every 20 ms.
rss_tree() {
  ps -eo pid=,ppid=,rss= | awk -v root="$1" '{pp[$1] = $2; rss[$1] = $3}
    END { for (p in pp) { x = p; while (x != root && (x in pp) && x > 1) x = pp[x]; if (x == root) s += rss[p] } print s + 0 }'
}
start_peak() { # PID FILE: sets SAMPLER
  ( peak=0; while [[ ! -e $2.stop ]]; do v=$(rss_tree "$1"); (( v > peak )) && peak=$v && echo $peak > "$2"; sleep 0.02; done ) &
  SAMPLER=$!
}
stop_peak() { touch "$1.stop"; wait "$2" 2>/dev/null || true; cat "$1" 2>/dev/null || echo 0; }

# compare NAME MIRRORD_URL CGIT_URL CMD...: RUNS rounds, each running CMD
# once against mirrord and once against C git (interleaved, so both see the
# same machine load), with @URL@ and @SIDE@ (mirrord, cgit) substituted
# and prep_NAME SIDE run untimed before each. Wall times (ms) go to
# OUT/NAME-SIDE.ms. Then one more round per side, untimed, samples the
# server's peak RSS (KiB) into OUT/NAME-SIDE.rss: sampling costs CPU, so it
# stays out of the timed runs.
compare() {
  local name=$1 murl=$2 curl=$3 side; shift 3
  for _ in $(seq "$RUNS"); do
    for side in mirrord cgit; do
      "prep_$name" "$side"
      once "$side" "$murl" "$curl" "$@" >> "$OUT/$name-$side.ms"
    done
  done
  for side in mirrord cgit; do
    local pid=$MPID; [[ $side == cgit ]] && pid=$GPID
    "prep_$name" "$side"
    start_peak "$pid" "$OUT/$name-$side.peak"
    once "$side" "$murl" "$curl" "$@" > /dev/null
    stop_peak "$OUT/$name-$side.peak" "$SAMPLER" > "$OUT/$name-$side.rss"
  done
}

# once SIDE MIRRORD_URL CGIT_URL CMD...: run CMD for SIDE, print its wall ms.
once() {
  local side=$1 url=$2 t; [[ $side == cgit ]] && url=$3; shift 3
  local cmd=("${@//@URL@/$url}"); cmd=("${cmd[@]//@SIDE@/$side}")
  t=$(now_ms)
  "${cmd[@]}" >/dev/null 2>>"$OUT/errors.log"
  echo $(( $(now_ms) - t ))
}

# --- full clone; each side's last clone is the base for the fetches
prep_clone() { rm -rf "$OUT/clone-$1"; }
compare clone "$M1" "$C" git clone -q --bare @URL@ "$OUT/clone-@SIDE@"

# --- the same full-clone request sent with curl: the server's work alone,
# no client-side indexing (the first mirrord round fills its pack cache).
pkt() { printf '%04x%s' $(( ${#1} + 4 )) "$1"; }
{
  first=1
  while read -r id ref; do
    [[ $ref == HEAD || $ref == *'^{}' ]] && continue
    if ((first)); then pkt "want $id multi_ack_detailed no-done side-band-64k thin-pack ofs-delta include-tag agent=git/bench"$'\n'; first=0
    else pkt "want $id"$'\n'; fi
  done < <(git ls-remote "$C")
  printf 0000; pkt "done"$'\n'
} > "$OUT/clone.req"
prep_resp() { :; }
compare resp "$M1/git-upload-pack" "$C/git-upload-pack" curl -fsS -o /dev/null -X POST \
  -H "Content-Type: application/x-git-upload-pack-request" --data-binary "@$OUT/clone.req" @URL@

# --- 100 new commits upstream; mirrord syncs a new snapshot.
stream "refs/heads/main^0" 100 new 1800000000 | git -C "$UP" fast-import --quiet
t=$(now_ms)
ID2=$("$BIN" --config "$OUT/mirrord.yaml" sync 2>"$OUT/sync2.log")
echo "mirrord: incremental sync $(( $(now_ms) - t )) ms (snapshot $ID2)"
M2=http://127.0.0.1:$MPORT/snapshots/$ID2/git/bench.git

# --- incremental fetch into a copy of the old clone
prep_fetch() { rm -rf "$OUT/fetch-$1"; cp -a "$OUT/clone-$1" "$OUT/fetch-$1"; }
compare fetch "$M2" "$C" git -C "$OUT/fetch-@SIDE@" fetch -q @URL@ "+refs/heads/*:refs/heads/*"
NEW=$(git -C "$OUT/fetch-cgit" rev-list --objects main --not main~100 | wc -l)

# --- a host that never synced: a second mirrord whose data_dir holds only
# the store (blobs/ and meta/, hard-linked), no state/. Each round deletes
# its state/ first, so every clone of the newest snapshot (a chain of two
# packs) starts by building the repository from the store's packs.
D2=$OUT/data2
mkdir -p "$D2"
cp -al "$OUT/data/blobs" "$D2/blobs"
cp -a "$OUT/data/meta" "$D2/meta"
M2PORT=$(free_port)
printf 'data_dir: data2\npublic_url: http://127.0.0.1:%s\n' "$M2PORT" > "$OUT/mirrord2.yaml"
"$BIN" --config "$OUT/mirrord2.yaml" --log-level warn serve --listen 127.0.0.1:$M2PORT 2>"$OUT/serve2.log" &
M2PID=$!
trap 'kill $MPID $GPID $M2PID 2>/dev/null || true; touch "$OUT"/*.peak.stop 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$M2PORT/healthz" >/dev/null && break; sleep 0.1; done
prep_cold() { [[ $1 == mirrord ]] && rm -rf "$D2/state"; rm -rf "$OUT/cold-$1"; }
SYNCPID=$MPID MPID=$M2PID
compare cold "http://127.0.0.1:$M2PORT/snapshots/$ID2/git/bench.git" "$C" git clone -q --bare @URL@ "$OUT/cold-@SIDE@"
MPID=$SYNCPID
git -C "$OUT/cold-mirrord" fsck --connectivity-only --no-progress 2>>"$OUT/errors.log" || echo "bench: the cold clone fails fsck" >&2

# --- report
med() { median < "$OUT/$1.ms"; }
first() { head -1 "$OUT/$1.ms"; }
rss() { cat "$OUT/$1.rss"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", (b > 0) ? a / b : 0 }'; }
echo
echo "git serving, $RUNS runs each (median wall time; peak RSS of the server process tree)"
printf '%-34s %12s %12s %8s %8s\n' metric mirrord "C git" ratio goal
row() { printf '%-34s %12s %12s %8s %8s\n' "$1" "$2" "$3" "$4" "$5"; }
row "full clone, first (cold) ms" "$(first clone-mirrord)" "$(first clone-cgit)" "$(ratio "$(first clone-mirrord)" "$(first clone-cgit)")" ""
row "full clone, median ms" "$(med clone-mirrord)" "$(med clone-cgit)" "$(ratio "$(med clone-mirrord)" "$(med clone-cgit)")" "<=1.00x"
row "full-clone response, server only ms" "$(med resp-mirrord)" "$(med resp-cgit)" "$(ratio "$(med resp-mirrord)" "$(med resp-cgit)")" ""
row "full clone, never-synced host ms" "$(med cold-mirrord)" "$(med cold-cgit)" "$(ratio "$(med cold-mirrord)" "$(med cold-cgit)")" "<=1.50x"
row "fetch of 100 commits ($NEW objects) ms" "$(med fetch-mirrord)" "$(med fetch-cgit)" "$(ratio "$(med fetch-mirrord)" "$(med fetch-cgit)")" "<=1.20x"
row "peak RSS during clones (MiB)" "$(( $(rss clone-mirrord) / 1024 ))" "$(( $(rss clone-cgit) / 1024 ))" "$(ratio "$(rss clone-mirrord)" "$(rss clone-cgit)")" ""
row "peak RSS, server-only response (MiB)" "$(( $(rss resp-mirrord) / 1024 ))" "$(( $(rss resp-cgit) / 1024 ))" "$(ratio "$(rss resp-mirrord)" "$(rss resp-cgit)")" ""
row "peak RSS during fetches (MiB)" "$(( $(rss fetch-mirrord) / 1024 ))" "$(( $(rss fetch-cgit) / 1024 ))" "$(ratio "$(rss fetch-mirrord)" "$(rss fetch-cgit)")" ""
echo "all runs (ms): clone mirrord $(tr '\n' ' ' < "$OUT/clone-mirrord.ms")| C git $(tr '\n' ' ' < "$OUT/clone-cgit.ms")"
echo "               response mirrord $(tr '\n' ' ' < "$OUT/resp-mirrord.ms")| C git $(tr '\n' ' ' < "$OUT/resp-cgit.ms")"
echo "               fetch mirrord $(tr '\n' ' ' < "$OUT/fetch-mirrord.ms")| C git $(tr '\n' ' ' < "$OUT/fetch-cgit.ms")"
echo "               never-synced clone mirrord $(tr '\n' ' ' < "$OUT/cold-mirrord.ms")| C git $(tr '\n' ' ' < "$OUT/cold-cgit.ms")"
