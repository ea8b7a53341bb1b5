package yum

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/mirrord/mirrord/internal/fetch"
	"github.com/mirrord/mirrord/internal/signing"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/source"
	"github.com/mirrord/mirrord/internal/store"
)

// Size caps of what a sync reads into memory or the store.
const (
	maxRepomdSize   = 16 << 20
	maxSigSize      = 1 << 20
	maxMetadataSize = 4 << 30  // a data file whose repomd entry has no size
	maxOpenSize     = 32 << 30 // decompressed metadata without an open-size
	maxPackageSize  = 64 << 30 // a package whose primary entry has no size
)

// Meta keys of the snapshot record.
const (
	metaRepomd   = "repomd_sha256"
	metaConfig   = "config"
	metaRevision = "revision"
)

// run is one Sync of one source.
type run struct {
	s    *Source
	env  *source.Env
	log  *slog.Logger
	fp   string    // fingerprint of the config that shapes the tree
	keys *keyring  // nil without gpgkey; loaded once needed
	prev *prevTree // the previous snapshot's tree, when fp matches
	ret  *retained // retain: what the previous snapshot offers
	old  []*pkg    // retain: the previous snapshot's packages kept
}

// pin is one read of repomd.xml: the upstream state a sync mirrors.
type pin struct {
	raw    []byte
	digest store.Digest
	md     *repomd
	asc    []byte // repomd.xml.asc; nil when the upstream has none
}

// Sync implements source.Source.
func (s *Source) Sync(ctx context.Context, env *source.Env) (*source.Result, error) {
	fp, err := s.fingerprint(env)
	if err != nil {
		return nil, err
	}
	log := env.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &run{s: s, env: env, log: log.With("upstream", s.up.String()), fp: fp}
	return r.sync(ctx)
}

func (r *run) sync(ctx context.Context) (*source.Result, error) {
	p, err := r.fetchRepomd(ctx)
	if err != nil {
		return nil, err
	}
	if r.unchanged(p) {
		return r.reuse(ctx, p)
	}
	if r.keys, err = loadKeyring(ctx, r.env.Fetch, r.s.opt.GPGKey); err != nil {
		return nil, err
	}
	if r.prev, err = r.loadPrev(ctx); err != nil {
		return nil, err
	}
	if err := r.verifyRepomd(ctx, p); err != nil {
		return nil, err
	}
	return r.syncRepinning(ctx, p)
}

// syncRepinning mirrors p; when a failure looks like the upstream updating
// itself meanwhile and repomd.xml did change, it re-pins to the new state
// once, then gives up with a clear error.
func (r *run) syncRepinning(ctx context.Context, p *pin) (*source.Result, error) {
	for attempt := 1; ; attempt++ {
		res, err := r.syncPinned(ctx, p)
		if err == nil || !isChanged(err) {
			return res, err
		}
		fresh, ferr := r.fetchRepomd(ctx)
		if ferr != nil {
			return nil, fmt.Errorf("%w (re-reading repomd.xml to check for an upstream update also failed: %v)", err, ferr)
		}
		if fresh.digest == p.digest {
			return nil, err // not an update in progress: the upstream is broken
		}
		if attempt == 2 {
			return nil, fmt.Errorf("upstream %s changed again during the sync (repomd.xml is now %s); sync again once it has settled: %w", r.s.up, fresh.digest, err)
		}
		r.log.Warn("upstream changed during the sync; re-pinning to its new repomd.xml", "old", p.digest, "new", fresh.digest, "cause", err)
		if err := r.verifyRepomd(ctx, fresh); err != nil {
			return nil, err
		}
		p = fresh
	}
}

// fetchRepomd reads and parses repomd.xml. It is always fetched whole
// (it is small): a conditional request would trust the upstream's
// one-second Last-Modified resolution to notice every change.
func (r *run) fetchRepomd(ctx context.Context) (*pin, error) {
	u := r.s.up.url("repodata/repomd.xml")
	resp, err := r.env.Fetch.Get(ctx, fetch.Request{URL: u, MaxSize: maxRepomdSize})
	if err != nil {
		return nil, fmt.Errorf("repomd.xml: %w", err)
	}
	p := &pin{raw: resp.Body, digest: store.DigestOf(resp.Body)}
	if p.md, err = parseRepomd(p.raw); err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	return p, nil
}

// unchanged reports whether the previous snapshot already holds exactly
// what this sync would produce.
func (r *run) unchanged(p *pin) bool {
	prev := r.env.Prev
	if prev == nil || prev.Meta[metaConfig] != r.fp {
		return false
	}
	return string(p.digest) == prev.Meta[metaRepomd]
}

// reuse returns the previous snapshot's tree and items as they are.
func (r *run) reuse(ctx context.Context, p *pin) (*source.Result, error) {
	prev := r.env.Prev
	t, err := r.env.Catalog.Tree(ctx, prev.Tree)
	if err != nil {
		return nil, fmt.Errorf("previous snapshot's tree: %w", err)
	}
	items, err := r.env.Catalog.Items(ctx, prev)
	if err != nil {
		return nil, fmt.Errorf("previous snapshot's items: %w", err)
	}
	if items == nil {
		items = []snapshot.Item{}
	}
	r.log.Info("upstream unchanged; reusing the previous snapshot", "repomd", p.digest)
	return &source.Result{Upstream: r.s.up.String(), Entries: t.Entries, Items: items, Meta: prev.Meta}, nil
}

// verifyRepomd fetches repomd.xml.asc and checks it against the gpgkey.
func (r *run) verifyRepomd(ctx context.Context, p *pin) error {
	ascURL := r.s.up.url("repodata/repomd.xml.asc")
	resp, err := r.env.Fetch.Get(ctx, fetch.Request{URL: ascURL, MaxSize: maxSigSize})
	switch {
	case errors.Is(err, fetch.ErrNotFound) && r.s.opt.InsecureSkipVerify:
		r.log.Warn("upstream has no repomd.xml.asc; metadata is not signature-checked (insecure_skip_verify)")
		return nil
	case errors.Is(err, fetch.ErrNotFound):
		return fmt.Errorf("%s is missing: the upstream does not sign its metadata; set insecure_skip_verify: true to mirror it anyway (packages are still checked against the gpgkey): %w", ascURL, err)
	case err != nil:
		return fmt.Errorf("repomd.xml.asc: %w", err)
	}
	p.asc = resp.Body
	if r.s.opt.InsecureSkipVerify || r.keys == nil {
		return nil
	}
	if _, err := signing.VerifyDetached(r.keys.entities, p.raw, p.asc); err != nil {
		return fmt.Errorf("%s does not verify repomd.xml (%s) with gpgkey %s: %w; check that the gpgkey is the repository's signing key, or the upstream may be tampered with",
			ascURL, p.digest, r.s.opt.GPGKey, err)
	}
	return nil
}

// fingerprint identifies everything besides the upstream that shapes the
// tree: a snapshot made with another fingerprint is not reused.
func (s *Source) fingerprint(env *source.Env) (string, error) {
	keyDigest, err := localKeyDigest(s.opt.GPGKey)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "format 1\nurl %s\ngpgkey %s %s\ninsecure %v\nverbatim %v\n", s.up, s.opt.GPGKey, keyDigest, s.opt.InsecureSkipVerify, s.opt.Verbatim)
	if s.filtered() {
		fmt.Fprintf(&b, "filter %q\nwith_deps %v\n", s.opt.Filter, s.opt.FilterWithDeps)
		if s.opt.FilterCheck {
			b.WriteString("check\n")
		}
		if s.opt.Retain > 0 {
			fmt.Fprintf(&b, "retain %d\n", s.opt.Retain)
		}
		if a := s.opt.Advisories; a != nil {
			fmt.Fprintf(&b, "advisories %q %q\n", a.Types, a.Severities)
		}
		if s.opt.FilterFrom != "" {
			data, err := os.ReadFile(s.opt.FilterFrom)
			if err != nil {
				return "", fmt.Errorf("filter_from: %w", err)
			}
			fmt.Fprintf(&b, "from %s\n", store.DigestOf(data))
		}
		if env.Signer != nil {
			fmt.Fprintf(&b, "signer %s\n", env.Signer.Fingerprint())
		}
	}
	return string(store.DigestOf([]byte(b.String()))), nil
}

// putBytes stores a small in-memory file.
func (r *run) putBytes(ctx context.Context, data []byte) (store.Info, error) {
	return r.env.Blobs.Put(ctx, bytes.NewReader(data), store.Expect{Digest: store.DigestOf(data), Size: int64(len(data))})
}

// openBlob opens a stored blob for reading.
func (r *run) openBlob(ctx context.Context, d store.Digest) (io.ReadCloser, error) {
	b, err := r.env.Blobs.Open(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("open stored blob %s: %w", d, err)
	}
	return b, nil
}
