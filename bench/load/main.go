// Command load is the load-through-change part of `make bench` (see
// bench/load.sh): many concurrent clients fetch random files of a source
// from a running `mirrord serve`, through snapshot URLs and a channel
// URL, and check every body's sha256 against the snapshot trees in the
// store, while the channel is promoted and rolled back through the API
// and idle and slowloris connections sit on the server. It prints
// requests, errors, mismatches, latency percentiles and the server's peak
// RSS and open file descriptors; it exits 1 on any error or mismatch.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/store/fs"
)

type config struct {
	base, data, channel, source, tokenFile string
	clients, idle, churn, pid              int
	duration                               time.Duration
	ids                                    []string
}

// corpus is what the store says each snapshot serves.
type corpus struct {
	ids    []string
	paths  []string                       // the source's paths (the same in every snapshot)
	digest map[string]map[string]string   // snapshot → path → sha256
	anyOf  map[string]map[string]struct{} // path → every digest it has in some snapshot
}

type result struct {
	requests, errors, mismatches, churnErrors atomic.Int64
	mu                                        sync.Mutex
	lat                                       []time.Duration
	firstErr                                  atomic.Value
}

func main() {
	var c config
	var ids string
	flag.StringVar(&c.base, "base", "http://127.0.0.1:8080", "mirrord serve URL")
	flag.StringVar(&c.data, "data", "data", "the server's data_dir (trees are read from its store)")
	flag.StringVar(&c.channel, "channel", "production", "channel to fetch through and to promote/roll back")
	flag.StringVar(&c.source, "source", "file/load", "KIND/NAME of the source to fetch")
	flag.StringVar(&c.tokenFile, "token", "", "bearer token file for promotes and rollbacks")
	flag.StringVar(&ids, "snapshots", "", "comma-separated snapshot IDs to fetch from and promote between (default: all)")
	flag.IntVar(&c.clients, "clients", 1000, "concurrent clients")
	flag.IntVar(&c.idle, "idle", 1000, "idle and slowloris connections held open meanwhile")
	flag.IntVar(&c.churn, "churn", 50, "promotes and rollbacks during the run")
	flag.IntVar(&c.pid, "pid", 0, "server process to sample for RSS and open fds")
	flag.DurationVar(&c.duration, "duration", 30*time.Second, "how long the clients run")
	flag.Parse()
	if ids != "" {
		c.ids = strings.Split(ids, ",")
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(c config) error {
	ctx := context.Background()
	cp, err := loadCorpus(ctx, c)
	if err != nil {
		return err
	}
	token := ""
	if c.tokenFile != "" {
		b, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return err
		}
		token = strings.TrimSpace(string(b))
	}
	stopIdle, idleCut := holdIdle(c.base, c.idle)
	defer stopIdle()
	var peakRSS, peakFDs atomic.Int64
	stopSample := sample(c.pid, &peakRSS, &peakFDs)
	tr := &http.Transport{MaxIdleConnsPerHost: c.clients, DisableCompression: true, IdleConnTimeout: time.Minute}
	client := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	var res result
	deadline := time.Now().Add(c.duration)
	var wg sync.WaitGroup
	for i := range c.clients {
		wg.Add(1)
		go func() { defer wg.Done(); fetchLoop(client, c, cp, &res, deadline, uint64(i)) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); churn(client, c, cp, token, &res, deadline) }()
	wg.Wait()
	stopSample()
	report(c, &res, peakRSS.Load(), peakFDs.Load(), idleCut())
	if n := res.errors.Load() + res.mismatches.Load() + res.churnErrors.Load(); n > 0 {
		return fmt.Errorf("%d errors and mismatches (first: %v)", n, res.firstErr.Load())
	}
	return nil
}

func loadCorpus(ctx context.Context, c config) (*corpus, error) {
	st, err := fs.Open(c.data)
	if err != nil {
		return nil, err
	}
	cat := snapshot.New(st)
	ids := c.ids
	if ids == nil {
		if ids, err = cat.IDs(ctx); err != nil {
			return nil, err
		}
	}
	cp := &corpus{ids: ids, digest: map[string]map[string]string{}, anyOf: map[string]map[string]struct{}{}}
	for _, id := range ids {
		rec, err := cat.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		src, ok := rec.Source(c.source)
		if !ok {
			return nil, fmt.Errorf("snapshot %s has no source %s", id, c.source)
		}
		tree, err := cat.Tree(ctx, src.Tree)
		if err != nil {
			return nil, err
		}
		m := map[string]string{}
		for _, e := range tree.Entries {
			m[e.Path] = string(e.Digest)
			if cp.anyOf[e.Path] == nil {
				cp.anyOf[e.Path] = map[string]struct{}{}
				cp.paths = append(cp.paths, e.Path)
			}
			cp.anyOf[e.Path][string(e.Digest)] = struct{}{}
		}
		cp.digest[id] = m
	}
	if len(cp.paths) == 0 {
		return nil, fmt.Errorf("no files in %s", c.source)
	}
	return cp, nil
}

// fetchLoop is one client: half its requests by snapshot URL (the body
// must be that snapshot's file), half by channel URL (the body must match
// its ETag, and the ETag be the path's digest in one of the snapshots).
func fetchLoop(client *http.Client, c config, cp *corpus, res *result, deadline time.Time, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 7))
	var lat []time.Duration
	buf := make([]byte, 64<<10)
	for time.Now().Before(deadline) {
		p := cp.paths[r.IntN(len(cp.paths))]
		id := cp.ids[r.IntN(len(cp.ids))]
		kind, name, _ := strings.Cut(c.source, "/")
		url := c.base + "/snapshots/" + id + "/" + kind + "/" + name + "/" + p
		byChannel := r.IntN(2) == 0
		if byChannel {
			url = c.base + "/channels/" + c.channel + "/" + kind + "/" + name + "/" + p
		}
		start := time.Now()
		sum, etag, err := get(client, url, buf)
		lat = append(lat, time.Since(start))
		res.requests.Add(1)
		switch {
		case err != nil:
			res.errors.Add(1)
			res.firstErr.CompareAndSwap(nil, err.Error())
		case byChannel && (sum != etag || !has(cp.anyOf[p], sum)):
			res.mismatches.Add(1)
			res.firstErr.CompareAndSwap(nil, "mismatch: "+url+" body "+sum+" etag "+etag)
		case !byChannel && sum != cp.digest[id][p]:
			res.mismatches.Add(1)
			res.firstErr.CompareAndSwap(nil, "mismatch: "+url+" body "+sum+" want "+cp.digest[id][p])
		}
	}
	res.mu.Lock()
	res.lat = append(res.lat, lat...)
	res.mu.Unlock()
}

func has(set map[string]struct{}, k string) bool { _, ok := set[k]; return ok }

func get(client *http.Client, url string, buf []byte) (sum, etag string, err error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, resp.Body, buf); err != nil {
		return "", "", fmt.Errorf("%s: reading body: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("%s: %s", url, resp.Status)
	}
	return hex.EncodeToString(h.Sum(nil)), strings.Trim(resp.Header.Get("ETag"), `"`), nil
}

// churn spreads c.churn promotes and rollbacks of the channel over the
// run: promote to each snapshot in turn, every second move a rollback.
func churn(client *http.Client, c config, cp *corpus, token string, res *result, deadline time.Time) {
	if c.churn == 0 || token == "" {
		return
	}
	every := time.Until(deadline) / time.Duration(c.churn+1)
	for i := range c.churn {
		time.Sleep(every)
		url, body := c.base+"/api/v1/channels/"+c.channel+"/promote", `{"snapshot":"`+cp.ids[(i/2)%len(cp.ids)]+`"}`
		if i%2 == 1 {
			url, body = c.base+"/api/v1/channels/"+c.channel+"/rollback", ""
		}
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				err = fmt.Errorf("%s: %s %s", url, resp.Status, bytes.TrimSpace(b))
			}
		}
		if err != nil {
			res.churnErrors.Add(1)
			res.firstErr.CompareAndSwap(nil, err.Error())
		}
	}
}

// holdIdle opens n connections that never finish a request: half send
// nothing, half a slowloris trickle of header bytes. cut reports how many
// the server has closed.
func holdIdle(base string, n int) (stop func(), cut func() int64) {
	addr := strings.TrimPrefix(strings.TrimPrefix(base, "http://"), "https://")
	if i := strings.IndexByte(addr, '/'); i >= 0 {
		addr = addr[:i]
	}
	done := make(chan struct{})
	var closed atomic.Int64
	var conns []net.Conn
	for i := range n {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "load: idle connection %d: %v\n", i, err)
			break
		}
		conns = append(conns, conn)
		slow := i%2 == 1
		go func() {
			if slow {
				go func() {
					conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n"))
					t := time.NewTicker(time.Second)
					defer t.Stop()
					for {
						select {
						case <-done:
							return
						case <-t.C:
							if _, err := conn.Write([]byte("X")); err != nil {
								return
							}
						}
					}
				}()
			}
			// Any answer (a 400 to the trickle, or EOF) means the server
			// cut the connection loose.
			var b [1]byte
			conn.Read(b[:])
			select {
			case <-done:
			default:
				closed.Add(1)
			}
		}()
	}
	return func() {
			close(done)
			for _, c := range conns {
				c.Close()
			}
		}, func() int64 {
			return closed.Load()
		}
}

// sample polls /proc/PID for resident memory and open descriptors.
func sample(pid int, rss, fds *atomic.Int64) (stop func()) {
	if pid == 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if v := statusKB(pid, "VmHWM:"); v > rss.Load() {
				rss.Store(v)
			}
			if ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd"); err == nil && int64(len(ents)) > fds.Load() {
				fds.Store(int64(len(ents)))
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func statusKB(pid int, field string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func report(c config, res *result, rssKB, fds, cut int64) {
	slices.Sort(res.lat)
	pct := func(q float64) time.Duration {
		if len(res.lat) == 0 {
			return 0
		}
		return res.lat[min(len(res.lat)-1, int(q*float64(len(res.lat))))]
	}
	fmt.Printf("clients %d for %v, %d idle/slowloris connections held (%d cut by the server), %d promotes/rollbacks\n",
		c.clients, c.duration, c.idle, cut, c.churn)
	fmt.Printf("requests %d (%.0f/s)  errors %d  mismatches %d  churn errors %d\n",
		res.requests.Load(), float64(res.requests.Load())/c.duration.Seconds(), res.errors.Load(), res.mismatches.Load(), res.churnErrors.Load())
	fmt.Printf("latency p50 %v  p99 %v  max %v\n", pct(0.50).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond))
	if c.pid != 0 {
		fmt.Printf("server peak RSS %.1f MiB  peak open fds %d\n", float64(rssKB)/1024, fds)
	}
}
