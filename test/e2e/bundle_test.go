package e2e

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/mirrord/mirrord/internal/apt/apttest"
	"github.com/mirrord/mirrord/internal/gitcache/gittest"
	"github.com/mirrord/mirrord/internal/signing"
)

// bundleManifest is the part of a bundle's manifest.json the tests read.
type bundleManifest struct {
	Snapshot string `json:"snapshot"`
	Base     string `json:"base"`
	Blobs    []struct {
		Digest string `json:"digest"`
		Size   int64  `json:"size"`
	} `json:"blobs"`
	Bytes int64 `json:"blob_bytes"`
}

// bundleEntry is one tar entry of a bundle.
type bundleEntry struct {
	name string
	data []byte
}

// readBundle decompresses a (small) bundle file into its tar entries, with
// the stock format: zstd around tar.
func readBundle(t *testing.T, path string) []bundleEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	var out []bundleEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, bundleEntry{h.Name, data})
	}
}

// writeBundle writes entries as a bundle file.
func writeBundle(t *testing.T, path string, entries []bundleEntry) {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.name, Size: int64(len(e.data)), Mode: 0o444}); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.data)
	}
	tw.Close()
	zw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func manifestOf(t *testing.T, path string) bundleManifest {
	t.Helper()
	entries := readBundle(t, path)
	if len(entries) < 3 || entries[0].name != "manifest.json" || entries[1].name != "manifest.json.asc" {
		t.Fatalf("%s does not start with manifest.json and its signature", path)
	}
	var m bundleManifest
	if err := json.Unmarshal(entries[0].data, &m); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3+len(m.Blobs) {
		t.Errorf("%s: %d entries, want manifest, signature, record and %d blobs", path, len(entries), len(m.Blobs))
	}
	return m
}

// snapBlobs lists what snapshot id needs, read straight from the store's
// files (tree and item blobs, and every file its trees name): digest → size.
func (e *env) snapBlobs(id string) map[string]int64 {
	e.t.Helper()
	out := map[string]int64{}
	blobFile := func(d string) string { return filepath.Join(e.dir, "data", "blobs", "sha256", d[:2], d) }
	add := func(d string) {
		fi, err := os.Stat(blobFile(d))
		if err != nil {
			e.t.Fatal(err)
		}
		out[d] = fi.Size()
	}
	for _, s := range e.show(id).Sources {
		add(s.Tree)
		if s.Items != "" {
			add(s.Items)
		}
		f, err := os.Open(blobFile(s.Tree))
		if err != nil {
			e.t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			parts := strings.SplitN(sc.Text(), " ", 3)
			n, _ := strconv.ParseInt(parts[1], 10, 64)
			out[parts[0]] = n
		}
		f.Close()
	}
	return out
}

// publicKey writes the public half of e's signing key (what its
// /keys/mirrord.asc serves) to a file.
func publicKey(t *testing.T, keyFile string) string {
	t.Helper()
	k, err := signing.LoadOrCreate(keyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "mirrord.asc")
	if err := os.WriteFile(p, k.PublicArmored(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// importEnv is a mirrord with no sources at all: it only imports bundles
// and serves them.
func importEnv(t *testing.T, addr string) *env {
	e := newEnv(t)
	os.WriteFile(filepath.Join(e.dir, "token"), []byte("s3cret\n"), 0o600)
	e.writeConfig(fmt.Sprintf("data_dir: data\npublic_url: http://%s\nauth: {token_file: token}\n", addr))
	seedSigningKey(t, filepath.Join(e.dir, "data", "signing", "mirrord.asc"))
	return e
}

func (e *env) noSnapshots() {
	e.t.Helper()
	if out := strings.TrimSpace(e.must("snapshot", "list", "--json")); out != "[]" {
		e.t.Errorf("snapshots present: %s", out)
	}
}

// The air gap end to end: site A mirrors apt, yum, file and git upstreams;
// its bundles cross to site B, which has never seen an upstream (they are
// all stopped), and B serves stock apt and dnf; an incremental bundle
// carries only new blobs; the API streams the same bundle.
func TestBundleAirGap(t *testing.T) {
	t.Parallel()
	apt := demoUpstream(t)
	yum := newYumUpstream(t)
	files := newUpstream(t)
	img := fileSpec{"cirros.img", randBytes(1, 300<<10)}
	files.set(img.path, img.data)
	forge := gittest.NewServer(t)
	stdlib := forge.NewRepo(t, "puppetlabs/puppetlabs-stdlib.git")
	gittest.Populate(t, stdlib, 20)

	addrA := freePort(t)
	a := newAptEnv(t, apt, addrA, "")
	os.WriteFile(filepath.Join(a.dir, "repos.yaml"), []byte("g:\n  stdlib: {source: \""+stdlib.URL+"\"}\n"), 0o644)
	writeAConfig := func(imgs ...fileSpec) {
		cfg := aptYAML(apt, addrA, "")
		cfg += "yum:\n" + strings.SplitN(yumConfig("", yum.BaseURL(), yum.fix.Signer.PublicKeyFile), "yum:\n", 2)[1]
		cfg += "git:\n  repos_file: repos.yaml\n"
		cfg += "file:\n" + strings.SplitN(fileConfig(files.URL, imgs...), "file:\n", 2)[1]
		a.writeConfig(cfg)
	}
	writeAConfig(img)
	gen1 := a.sync()
	a.must("snapshot", "promote", gen1, "production")
	pub := publicKey(t, filepath.Join(a.dir, "data", "signing", "mirrord.asc"))
	work := t.TempDir()
	full := filepath.Join(work, "gen1.bundle")
	out := a.must("export", gen1, "-o", full)
	if !strings.Contains(out, "exported snapshot "+gen1) {
		t.Errorf("export printed %q", out)
	}
	if m := manifestOf(t, full); m.Base != "" || len(m.Blobs) != len(a.snapBlobs(gen1)) {
		t.Errorf("full bundle: base %q, %d blobs; want every one of the snapshot's %d", m.Base, len(m.Blobs), len(a.snapBlobs(gen1)))
	}
	if out := a.must("bundle", "verify", full, "--keyring", pub); !strings.Contains(out, "OK") {
		t.Errorf("bundle verify: %s", out)
	}

	// Every upstream stops; B takes the bundle over.
	apt.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "stopped", http.StatusServiceUnavailable)
		return true
	})
	yum.down.Store(true)
	files.Close()
	forge.Stop()
	addrB := freePort(t)
	b := importEnv(t, addrB)
	if r := b.run("import", full); r.code != 2 || !strings.Contains(r.stderr, "--keyring") {
		t.Errorf("import without any keyring: exit %d, %s", r.code, r.stderr)
	}
	if out := b.must("import", full, "--keyring", pub); !strings.Contains(out, "imported snapshot "+gen1) {
		t.Errorf("import printed %q", out)
	}
	// The keyring is installed: no --keyring from now on; twice is a no-op.
	if out := b.must("import", full); !strings.Contains(out, "present already") {
		t.Errorf("second import printed %q, want a no-op", out)
	}
	if !maps.Equal(b.snapBlobs(gen1), a.snapBlobs(gen1)) {
		t.Error("B's snapshot needs other blobs than A's")
	}
	var listed []struct{ Channels []string }
	json.Unmarshal([]byte(b.must("snapshot", "list", "--json")), &listed)
	if len(listed) != 1 || len(listed[0].Channels) != 0 {
		t.Errorf("B's snapshots: %+v; want gen1 alone, with no channel (channels do not travel)", listed)
	}
	b.must("verify")
	baseB := b.serve(addrB)
	checkAirGapClients(t, a, b, baseB, pub, gen1, apt, yum, img)

	// Incremental: new apt package, new file; gen2 --since gen1 holds
	// exactly the blobs gen2 needs and gen1 does not.
	apt.SetHook(nil)
	yum.down.Store(false)
	files2 := newUpstream(t)
	img2 := fileSpec{"fresh.img", randBytes(2, 200<<10)}
	files2.set(img.path, img.data)
	files2.set(img2.path, img2.data)
	files = files2
	apt.Add(t, apttest.Package{Name: "demo-new", Version: "1.0-1"})
	apt.Publish(t)
	forge2 := gittest.NewServer(t)
	stdlib2 := forge2.NewRepo(t, "puppetlabs/puppetlabs-stdlib.git")
	gittest.Populate(t, stdlib2, 20)
	os.WriteFile(filepath.Join(a.dir, "repos.yaml"), []byte("g:\n  stdlib: {source: \""+stdlib2.URL+"\"}\n"), 0o644)
	writeAConfig(img, img2)
	gen2 := a.sync()
	inc := filepath.Join(work, "gen2.bundle")
	a.must("export", gen2, "--since", gen1, "-o", inc)
	want := a.snapBlobs(gen2)
	var wantBytes int64
	for d := range a.snapBlobs(gen1) {
		delete(want, d)
	}
	for _, n := range want {
		wantBytes += n
	}
	m := manifestOf(t, inc)
	got := map[string]int64{}
	for _, bl := range m.Blobs {
		got[bl.Digest] = bl.Size
	}
	if m.Base != gen1 || !maps.Equal(got, want) || m.Bytes != wantBytes {
		t.Errorf("incremental bundle: base %q, %d blobs, %d bytes; want base %s, the %d new blobs, %d bytes", m.Base, len(got), m.Bytes, gen1, len(want), wantBytes)
	}
	if _, ok := got[sha(img2.data)]; !ok || len(want) >= len(a.snapBlobs(gen2)) {
		t.Errorf("incremental bundle lacks the new file or holds everything")
	}
	t.Logf("incremental bundle: %d blobs, %d bytes (gen2 needs %d blobs)", len(got), m.Bytes, len(a.snapBlobs(gen2)))

	// Without its base the incremental bundle is refused, naming it.
	c := importEnv(t, "127.0.0.1:1")
	if r := c.run("import", inc, "--keyring", pub); r.code != 3 || !strings.Contains(r.stderr, gen1) || !strings.Contains(r.stderr, "base snapshot missing") {
		t.Errorf("incremental import without its base: exit %d, %s", r.code, r.stderr)
	}
	c.noSnapshots()
	if len(c.blobs()) != 0 {
		t.Errorf("a refused import wrote %d blobs", len(c.blobs()))
	}
	if out := b.must("import", inc); !strings.Contains(out, fmt.Sprintf("(%d new, 0 present already)", len(want))) {
		t.Errorf("incremental import printed %q, want %d new blobs", out, len(want))
	}
	b.must("verify")
	if !maps.Equal(b.snapBlobs(gen2), a.snapBlobs(gen2)) {
		t.Error("B's gen2 needs other blobs than A's")
	}
	cl := apttest.NewClient(t, "", "b.sources", aptStanza(baseB+"/snapshots/"+gen2+"/apt/demo", pub))
	cl.Update()
	if v := cl.Candidate("demo-new"); v != "1.0-1" {
		t.Errorf("B's gen2 offers demo-new %s, want 1.0-1", v)
	}

	// The API streams the same bundle, with the token.
	baseA := a.serve(addrA)
	url := baseA + "/api/v1/snapshots/" + gen2 + "/export?since=" + gen1
	if resp, _ := get(t, url, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("export without a token: %d, want 401", resp.StatusCode)
	}
	if resp, _ := get(t, baseA+"/api/v1/snapshots/20000101T000000Z/export", map[string]string{"Authorization": "Bearer s3cret"}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("export of an unknown snapshot: %d, want 404", resp.StatusCode)
	}
	resp, body := get(t, url, map[string]string{"Authorization": "Bearer s3cret"})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/zstd" {
		t.Fatalf("API export: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	viaAPI := filepath.Join(work, "api.bundle")
	os.WriteFile(viaAPI, body, 0o644)
	if out := a.must("bundle", "verify", viaAPI, "--keyring", pub); !strings.Contains(out, "snapshot "+gen2+" since "+gen1) {
		t.Errorf("bundle verify of the API's bundle: %s", out)
	}
	if ma := manifestOf(t, viaAPI); len(ma.Blobs) != len(m.Blobs) || ma.Bytes != m.Bytes {
		t.Errorf("API bundle: %d blobs, %d bytes; the CLI's: %d, %d", len(ma.Blobs), ma.Bytes, len(m.Blobs), m.Bytes)
	}
}

func aptStanza(uri, key string) string {
	return fmt.Sprintf("Types: deb\nURIs: %s/\nSuites: stable\nComponents: main\nArchitectures: amd64\nSigned-By: %s\n", uri, key)
}

// checkAirGapClients: stock apt, dnf and plain HTTP against B's copy.
func checkAirGapClients(t *testing.T, a, b *env, baseB, pub, id string, apt *apttest.Repo, yum *yumUpstream, img fileSpec) {
	t.Helper()
	snap := baseB + "/snapshots/" + id
	c := apttest.NewClient(t, "", "b.sources", aptStanza(snap+"/apt/demo", pub))
	c.Update()
	checkDebs(t, apt.Debs(), c.Download("demo-app"), demoInstall...)

	root := t.TempDir()
	repos := writeRepo(t, repoStanza("b-base", snap+"/yum/base/", "file://"+yum.fix.Signer.PublicKeyFile)+
		repoStanza("b-subset", snap+"/yum/subset/", "file://"+yum.fix.Signer.PublicKeyFile, "file://"+pub))
	mustDnf(t, root, repos, "install", "foo")
	if got := installed(t, root); !strings.Contains(got, "foo-1.0-1") || !strings.Contains(got, "baz-1.2-1") {
		t.Errorf("dnf from B: installroot lacks foo or its dependencies:\n%s", got)
	}

	if resp, body := get(t, snap+"/file/images/"+img.path, nil); resp.StatusCode != 200 || !bytes.Equal(body, img.data) {
		t.Errorf("file from B: %d", resp.StatusCode)
	}

	// git: the record (refs, pin) and the tree (refs.txt) travel. Until
	// git objects are packs in the blob store (named by the tree), the
	// repository itself stays in A's state dir and B cannot serve clones.
	ga, gb := a.gitSource(id, "stdlib"), b.gitSource(id, "stdlib")
	if !maps.Equal(ga.Refs, gb.Refs) || ga.Meta["pin"] != gb.Meta["pin"] {
		t.Errorf("git refs on B %v, want A's %v", gb.Refs, ga.Refs)
	}
	if resp, body := get(t, snap+"/git/stdlib/refs.txt", nil); resp.StatusCode != 200 || !strings.Contains(string(body), ga.Refs["refs/heads/main"]) {
		t.Errorf("refs.txt from B: %d %s", resp.StatusCode, body)
	}
	packs := 0
	for _, s := range b.show(id).Sources {
		if s.Kind == "git" {
			tree, _ := os.ReadFile(filepath.Join(b.dir, "data", "blobs", "sha256", s.Tree[:2], s.Tree))
			packs += strings.Count(string(tree), ".pack\n")
		}
	}
	clone := filepath.Join(t.TempDir(), "clone")
	if packs == 0 {
		// Today: the objects stayed in A's state dir, and B says so.
		r := gittest.Run(t, "", "", nil, "clone", "--quiet", snap+"/git/stdlib.git", clone)
		if r.Err == nil {
			t.Error("git clone from B works, yet the tree names no .pack blobs: update this test's pack detection")
		} else if !strings.Contains(r.Stderr, "missing from") {
			t.Errorf("git clone from B: %v\n%s", r.Err, r.Stderr)
		}
		t.Logf("git: the tree names no pack blobs yet (objects live in the source's state dir); clone from B refused: %s", strings.TrimSpace(r.Stderr))
		return
	}
	gittest.Git(t, "", "clone", "--quiet", snap+"/git/stdlib.git", clone)
	gittest.Git(t, clone, "fsck", "--strict")
	if got := gittest.Git(t, clone, "rev-parse", "HEAD"); got != ga.Refs["refs/heads/main"] {
		t.Errorf("clone from B at %s, want %s", got, ga.Refs["refs/heads/main"])
	}
}

// tamperEnv is a mirrord with one file source: small bundles, made fast.
func tamperEnv(t *testing.T, n int) (e *env, id, pub string) {
	up := newUpstream(t)
	var specs []fileSpec
	for i := range n {
		f := fileSpec{fmt.Sprintf("f%d.bin", i), randBytes(int64(10+i), 40<<10)}
		up.set(f.path, f.data)
		specs = append(specs, f)
	}
	e = newEnv(t)
	e.writeConfig(fileConfig(up.URL, specs...))
	keyFile := filepath.Join(e.dir, "data", "signing", "mirrord.asc")
	seedSigningKey(t, keyFile)
	return e, e.sync(), publicKey(t, keyFile)
}

// Every kind of damage is refused with a message naming it; nothing is
// imported.
func TestBundleTampering(t *testing.T) {
	t.Parallel()
	a, id, pub := tamperEnv(t, 6)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.bundle")
	a.must("export", id, "-o", good)
	entries := readBundle(t, good)
	blob := entries[5] // a file's blob
	digest := strings.TrimPrefix(blob.name, "blobs/sha256/")

	otherKey := filepath.Join(t.TempDir(), "other.asc")
	other, err := signing.LoadOrCreate(otherKey, "someone else")
	if err != nil {
		t.Fatal(err)
	}

	split := filepath.Join(dir, "split")
	a.must("export", id, "-o", split, "--split", "32K")
	parts, _ := filepath.Glob(split + ".*")
	if len(parts) < 5 {
		t.Fatalf("--split 32K made %d parts", len(parts))
	}
	for _, p := range parts[:len(parts)-1] {
		if fi, _ := os.Stat(p); fi.Size() != 32<<10 {
			t.Errorf("part %s has %d bytes, want 32K", p, fi.Size())
		}
	}
	if out := a.must("bundle", "verify", split+".000", "--keyring", pub); !strings.Contains(out, "OK") {
		t.Errorf("verify of the split bundle: %s", out)
	}

	for _, tc := range []struct {
		name  string
		make  func(t *testing.T) string // returns the file to import
		want  []string
		clean bool // refused before any blob was written
	}{
		{"flipped byte in a blob", func(t *testing.T) string {
			es := append([]bundleEntry(nil), entries...)
			d := bytes.Clone(blob.data)
			d[len(d)/2] ^= 1
			es[5] = bundleEntry{blob.name, d}
			p := filepath.Join(t.TempDir(), "b")
			writeBundle(t, p, es)
			return p
		}, []string{"blob " + digest, "file/images/", "sha256 mismatch"}, false},
		{"flipped byte in the manifest", func(t *testing.T) string {
			es := append([]bundleEntry(nil), entries...)
			d := bytes.Clone(es[0].data)
			i := bytes.Index(d, []byte(`"size": `)) + 8
			d[i] ^= 1 // a digit of a size: still valid JSON
			es[0] = bundleEntry{es[0].name, d}
			p := filepath.Join(t.TempDir(), "b")
			writeBundle(t, p, es)
			return p
		}, []string{"manifest signature", "bad signature", "does not match"}, true},
		{"signed by another key", func(t *testing.T) string {
			es := append([]bundleEntry(nil), entries...)
			sig, err := other.DetachSign(es[0].data)
			if err != nil {
				t.Fatal(err)
			}
			es[1] = bundleEntry{es[1].name, sig}
			p := filepath.Join(t.TempDir(), "b")
			writeBundle(t, p, es)
			return p
		}, []string{"manifest signature", "not in keyring", other.Fingerprint()}, true},
		{"entry not in the manifest", func(t *testing.T) string {
			es := append(append([]bundleEntry(nil), entries...), bundleEntry{"blobs/sha256/" + sha([]byte("x")), []byte("x")})
			p := filepath.Join(t.TempDir(), "b")
			writeBundle(t, p, es)
			return p
		}, []string{"not in the manifest"}, false},
		{"truncated part", func(t *testing.T) string {
			p := copyParts(t, split, parts)
			os.Truncate(p+".002", 1000)
			return p + ".000"
		}, []string{"part ", ".002 is truncated: 1000 of 32768 bytes"}, true},
		{"flipped byte in a part", func(t *testing.T) string {
			p := copyParts(t, split, parts)
			f, err := os.OpenFile(p+".002", os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			b := []byte{0}
			f.ReadAt(b, 20000)
			b[0] ^= 0x40
			f.WriteAt(b, 20000)
			f.Close()
			return p
		}, []string{"corrupt)", "file/images/f", "sha256 mismatch"}, false},
		{"missing part", func(t *testing.T) string {
			p := copyParts(t, split, parts)
			os.Remove(p + ".001")
			return p + ".000"
		}, []string{".001 is missing"}, true},
		{"missing last part", func(t *testing.T) string {
			p := copyParts(t, split, parts)
			os.Remove(fmt.Sprintf("%s.%03d", p, len(parts)-1))
			return p
		}, []string{fmt.Sprintf(".%03d is missing", len(parts)-1)}, false},
		{"truncated last part", func(t *testing.T) string {
			p := copyParts(t, split, parts)
			os.Truncate(fmt.Sprintf("%s.%03d", p, len(parts)-1), 10)
			return p + ".000"
		}, []string{fmt.Sprintf(".%03d is truncated", len(parts)-1)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := tc.make(t)
			b := importEnv(t, "127.0.0.1:1")
			for _, cmd := range [][]string{{"bundle", "verify", file, "--keyring", pub}, {"import", file, "--keyring", pub}} {
				r := b.run(cmd...)
				if r.code == 0 {
					t.Fatalf("%s accepted it:\n%s", cmd[0], r.stdout)
				}
				for _, w := range tc.want {
					if !strings.Contains(r.stderr, w) {
						t.Errorf("%s: error lacks %q:\n%s", cmd[0], w, r.stderr)
					}
				}
			}
			if tc.name == "flipped byte in a part" {
				// The parts named must include the damaged .002.
				m := regexp.MustCompile(`parts? \S+\.(\d{3})(?: to \S+\.(\d{3}))?`).FindStringSubmatch(b.run("import", file, "--keyring", pub).stderr)
				if m == nil {
					t.Fatal("the error names no part")
				}
				from, _ := strconv.Atoi(m[1])
				to := from
				if m[2] != "" {
					to, _ = strconv.Atoi(m[2])
				}
				if from > 2 || to < 2 {
					t.Errorf("the error names parts %d to %d, the damage is in part 2", from, to)
				}
			}
			b.noSnapshots()
			if n := len(b.blobs()); tc.clean && n != 0 {
				t.Errorf("refused before reading blobs, yet %d blobs were written", n)
			}
			b.must("verify")
			if _, err := os.Stat(filepath.Join(b.dir, "data", "bundle", "trusted.gpg")); err == nil {
				t.Error("a refused import installed its keyring")
			}
		})
	}
}

func copyParts(t *testing.T, base string, parts []string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(base))
	for _, p := range parts {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(dst+strings.TrimPrefix(p, base), data, 0o644)
	}
	return dst
}

// kill -9 at random points of an import (fed through stdin, so the kill
// lands mid-stream): never a snapshot, always a clean store; then the
// full import succeeds, reusing the blobs written before.
func TestBundleImportKilled(t *testing.T) {
	t.Parallel()
	a, id, pub := tamperEnv(t, 24)
	file := filepath.Join(t.TempDir(), "b.bundle")
	a.must("export", id, "-o", file)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b := importEnv(t, "127.0.0.1:1")
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	cuts := make([]int, 6)
	for i := range cuts {
		cuts[i] = len(data)/10 + rng.Intn(len(data)*9/10)
	}
	slices.Sort(cuts) // so that each round gets further than the last
	for round, cut := range cuts {
		wait := time.Duration(rng.Intn(50)) * time.Millisecond
		cmd := exec.Command(mirrordBin, "--config", b.config, "import", "-", "--keyring", pub)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The write returns once the importer has read all but a pipe
		// buffer of it; the kill comes a random moment later.
		if _, err := stdin.Write(data[:cut]); err != nil {
			t.Fatalf("feeding the import: %v\n%s", err, stderr.String())
		}
		time.Sleep(wait)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		stdin.Close()
		t.Logf("round %d: killed after %d of %d bytes, %v; %d blobs in the store", round, cut, len(data), wait, len(b.blobs()))
		b.noSnapshots()
		if out := b.must("verify"); !strings.Contains(out, "0 problems") {
			t.Errorf("verify after kill: %s", out)
		}
	}
	before := len(b.blobs())
	out := b.must("import", file, "--keyring", pub)
	if !strings.Contains(out, "imported snapshot "+id) || !strings.Contains(out, fmt.Sprintf("%d present already", before)) {
		t.Errorf("import after kills printed %q (%d blobs were there before)", out, before)
	}
	b.must("verify", id)
	if !regexp.MustCompile(id).MatchString(b.must("snapshot", "list")) {
		t.Error("the snapshot is not listed after the full import")
	}
}
