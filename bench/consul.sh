#!/usr/bin/env bash
# make bench, consul part: promotion latency across replicas.
#
# Two `mirrord serve` replicas share one data_dir and one Consul agent
# (-dev, 127.0.0.1). BENCH_CONSUL_N times (default 50) the channel is moved
# between two snapshots whose file differs, alternately:
#   - by the CLI (`mirrord snapshot promote`, a new process each time), and
#     the time is measured from starting the CLI until replica B serves the
#     new file on the channel URL ("CLI start -> B"), and from the CLI's exit
#     ("CLI exit -> B": the propagation itself; 0 when B already served it);
#   - through replica A's API, until B serves it ("API on A -> B").
# B is polled over one keep-alive connection every 0.5 ms. Prints median
# and max of each. Goal: median <= 50 ms, max <= 1 s.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/bin/mirrord
N=${BENCH_CONSUL_N:-50}
OUT=${BENCH_CONSUL_OUT:-$ROOT/bench/out/consul}
rm -rf "$OUT"; mkdir -p "$OUT"

[[ -x $BIN ]] || go build -o "$BIN" ./cmd/mirrord
CONSUL=${MIRRORD_CONSUL_BIN:-$(.ci/consul.sh)}

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)); }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# --- Consul
HTTP=$(free_port)
"$CONSUL" agent -dev -bind 127.0.0.1 -client 127.0.0.1 -http-port "$HTTP" -https-port -1 -dns-port -1 \
  -grpc-port -1 -grpc-tls-port -1 -serf-lan-port "$(free_port)" -serf-wan-port "$(free_port)" \
  -server-port "$(free_port)" -log-level warn >"$OUT/consul.log" 2>&1 &
pids+=($!)
for _ in $(seq 600); do
  [[ $(curl -s "http://127.0.0.1:$HTTP/v1/status/leader" || true) == *:* ]] && break
  sleep 0.1
done

# --- two snapshots: hello.txt "one", then "two"
mkdir -p "$OUT/up"
echo one >"$OUT/up/one.txt"; echo two >"$OUT/up/two.txt"
config() {
  cat <<YAML
data_dir: data
auth: {token: bench}
consul: {address: "127.0.0.1:$HTTP"}
file:
  - name: bench
    files:
      - {url: up/$1.txt, path: hello.txt, sha256: $(sha256sum "$OUT/up/$1.txt" | cut -d' ' -f1)}
YAML
}
config one >"$OUT/mirrord.yaml"; ID1=$("$BIN" --config "$OUT/mirrord.yaml" sync 2>>"$OUT/sync.log")
config two >"$OUT/mirrord.yaml"; ID2=$("$BIN" --config "$OUT/mirrord.yaml" sync 2>>"$OUT/sync.log")
"$BIN" --config "$OUT/mirrord.yaml" snapshot promote "$ID1" production >/dev/null

# --- replicas A and B
PA=$(free_port); PB=$(free_port)
"$BIN" --config "$OUT/mirrord.yaml" --log-level warn serve --listen "127.0.0.1:$PA" 2>"$OUT/a.log" &
pids+=($!)
"$BIN" --config "$OUT/mirrord.yaml" --log-level warn serve --listen "127.0.0.1:$PB" 2>"$OUT/b.log" &
pids+=($!)
for p in $PA $PB; do
  for _ in $(seq 300); do curl -fs "http://127.0.0.1:$p/healthz" >/dev/null && break; sleep 0.1; done
done

# --- the measuring loop (Go: a tight keep-alive poller, no process per poll)
mkdir -p "$OUT/promolat"
cat >"$OUT/promolat/main.go" <<'GO'
package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	bin, cfg, a, b := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	ids := []string{os.Args[5], os.Args[6]}
	bodies := [][]byte{[]byte("one\n"), []byte("two\n")}
	n, _ := strconv.Atoi(os.Args[7])
	url := b + "/channels/production/file/bench/hello.txt"
	var cliStart, cliExit, api []time.Duration
	cur := 0 // production is at ids[0]
	for i := 0; i < 2*n; i++ {
		next := 1 - cur
		done := make(chan time.Time, 1)
		t0 := time.Now()
		go func() { done <- waitFor(url, bodies[next]) }()
		if i%2 == 0 {
			cmd := exec.Command(bin, "--config", cfg, "snapshot", "promote", ids[next], "production")
			if out, err := cmd.CombinedOutput(); err != nil {
				fail("promote: %v: %s", err, out)
			}
			t1 := time.Now()
			t2 := <-done
			cliStart = append(cliStart, t2.Sub(t0))
			cliExit = append(cliExit, max(0, t2.Sub(t1)))
		} else {
			req, _ := http.NewRequest("POST", a+"/api/v1/channels/production/promote", strings.NewReader(`{"snapshot":"`+ids[next]+`"}`))
			req.Header.Set("Authorization", "Bearer bench")
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 200 {
				fail("API promote: %v %v", err, resp)
			}
			resp.Body.Close()
			api = append(api, (<-done).Sub(t0))
		}
		cur = next
	}
	report("CLI start -> B serves", cliStart)
	report("CLI exit  -> B serves", cliExit)
	report("API on A  -> B serves", api)
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}

func waitFor(url string, want []byte) time.Time {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if bytes.Equal(body, want) {
				return time.Now()
			}
		}
		time.Sleep(500 * time.Microsecond)
	}
	fail("%s did not serve %q within 10s", url, want)
	return time.Time{}
}

func report(what string, d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	fmt.Printf("%-22s n=%d  median %7.1f ms  max %7.1f ms\n", what, len(d), ms(d[len(d)/2]), ms(d[len(d)-1]))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "promolat: "+format+"\n", args...)
	os.Exit(1)
}
GO
(cd "$OUT/promolat" && { [[ -f go.mod ]] || go mod init promolat >/dev/null 2>&1; } && go build -o promolat .)

echo "promotion latency: $N CLI promotions and $N API promotions, 2 replicas, 1 Consul agent (goal: median <= 50 ms, max <= 1 s)"
"$OUT/promolat/promolat" "$BIN" "$OUT/mirrord.yaml" "http://127.0.0.1:$PA" "http://127.0.0.1:$PB" "$ID1" "$ID2" "$N"
