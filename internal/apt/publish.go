package apt

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/mirrord/mirrord/internal/signing"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/source"
	"github.com/mirrord/mirrord/internal/store"
)

// metadata adds every suite's index files (with their by-hash twins) and
// its Release files to the tree: the upstream's own when verbatim,
// otherwise a Release generated for exactly these files, signed by
// mirrord.
func (r *run) metadata(ctx context.Context) error {
	var prev *snapshot.Tree
	if r.env.Prev != nil && !r.s.cfg.Verbatim {
		t, err := r.env.Catalog.Tree(ctx, r.env.Prev.Tree)
		if err != nil {
			return fmt.Errorf("reading the previous snapshot's tree: %w", err)
		}
		prev = t
	}
	for _, u := range r.ups {
		files := r.indexEntries(u)
		var err error
		if r.s.cfg.Verbatim {
			err = r.putUpstreamRelease(ctx, u)
		} else {
			err = r.publishRelease(ctx, u, files, prev)
		}
		if err != nil {
			return fmt.Errorf("suite %s: %w", u.suite, err)
		}
	}
	return nil
}

// indexEntries adds the suite's served index files and their by-hash
// paths to the tree and returns them by path relative to dists/SUITE.
func (r *run) indexEntries(u *upstream) map[string]fileSum {
	files := map[string]fileSum{}
	for _, ix := range r.ixs {
		if ix.up != u {
			continue
		}
		for suf, info := range ix.out {
			rel := ix.path(suf)
			files[rel] = fileSum{Size: info.Size, SHA256: info.Digest}
			r.add("dists/"+u.suite+"/"+rel, info.Digest, info.Size)
			r.add(path.Join("dists", u.suite, ix.dir(), "by-hash", "SHA256", string(info.Digest)), info.Digest, info.Size)
		}
	}
	return files
}

func (r *run) add(p string, d store.Digest, size int64) {
	r.entries[p] = snapshot.Entry{Path: p, Digest: d, Size: size}
}

// putBlob stores small generated data and adds it to the tree at p.
func (r *run) putBlob(ctx context.Context, p string, data []byte) error {
	d := store.DigestOf(data)
	if _, err := r.env.Blobs.Put(ctx, bytes.NewReader(data), store.Expect{Digest: d, Size: int64(len(data))}); err != nil {
		return fmt.Errorf("storing %s: %w", p, err)
	}
	r.add(p, d, int64(len(data)))
	return nil
}

// putUpstreamRelease serves the upstream's signed files byte-identical.
func (r *run) putUpstreamRelease(ctx context.Context, u *upstream) error {
	for name, data := range map[string][]byte{"InRelease": u.inRelease, "Release": u.release, "Release.gpg": u.releaseGPG} {
		if data != nil {
			if err := r.putBlob(ctx, "dists/"+u.suite+"/"+name, data); err != nil {
				return err
			}
		}
	}
	return nil
}

// publishRelease generates, stores and signs the suite's Release. When
// the previous snapshot published the very same Release, signed by the
// current key, its InRelease and Release.gpg are reused: a signature
// carries its creation time, so re-signing would change the bytes of an
// unchanged repository.
func (r *run) publishRelease(ctx context.Context, u *upstream, files map[string]fileSum, prev *snapshot.Tree) error {
	spec := releaseSpec{Architectures: r.publishedArchs(u), Components: r.s.cfg.Components, Files: files}
	if r.env.PublicURL != "" {
		// apt --snapshot ID fills in the ID: stock apt pins natively.
		spec.Snapshots = r.env.PublicURL + "/snapshots/@SNAPSHOTID@/apt/" + r.s.cfg.Name + "/"
	}
	rel := u.rel.publish(spec)
	dir := "dists/" + u.suite + "/"
	if err := r.putBlob(ctx, dir+"Release", rel); err != nil {
		return err
	}
	if r.reuseSignatures(ctx, prev, dir, rel) {
		return nil
	}
	inRelease, err := r.env.Signer.ClearSign(rel)
	if err != nil {
		return err
	}
	detached, err := r.env.Signer.DetachSign(rel)
	if err != nil {
		return err
	}
	if err := r.putBlob(ctx, dir+"InRelease", inRelease); err != nil {
		return err
	}
	return r.putBlob(ctx, dir+"Release.gpg", detached)
}

// publishedArchs is the Architectures field: the configured ones, and
// "all" when binary-all indices are served.
func (r *run) publishedArchs(u *upstream) []string {
	archs := slices.Clone(r.s.cfg.Architectures)
	for _, ix := range r.ixs {
		if ix.up == u && ix.kind == kindPackages && ix.arch == "all" && !slices.Contains(archs, "all") {
			archs = append(archs, "all")
		}
	}
	return archs
}

// reuseSignatures adds the previous snapshot's InRelease and Release.gpg
// when they sign exactly rel with the current key.
func (r *run) reuseSignatures(ctx context.Context, prev *snapshot.Tree, dir string, rel []byte) bool {
	if prev == nil {
		return false
	}
	old, ok1 := prev.Lookup(dir + "Release")
	in, ok2 := prev.Lookup(dir + "InRelease")
	gpg, ok3 := prev.Lookup(dir + "Release.gpg")
	if !ok1 || !ok2 || !ok3 || old.Digest != store.DigestOf(rel) {
		return false
	}
	data, err := r.readBlob(ctx, in.Digest, maxRelease)
	if err != nil {
		return false
	}
	text, _, err := signing.VerifyClearSigned(openpgp.EntityList{r.env.Signer.Entity()}, data)
	if err != nil || !bytes.Equal(text, rel) {
		return false
	}
	r.add(dir+"InRelease", in.Digest, in.Size)
	r.add(dir+"Release.gpg", gpg.Digest, gpg.Size)
	return true
}

func (r *run) readBlob(ctx context.Context, d store.Digest, limit int64) ([]byte, error) {
	b, err := r.env.Blobs.Open(ctx, d)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	return io.ReadAll(io.LimitReader(b, limit))
}

// result assembles the tree (the metadata, then the pool files) and the
// items: one per mirrored binary package, "NAME:ARCH" or "NAME" for arch
// all, with its version.
func (r *run) result(sel *subset) *source.Result {
	entries := make([]snapshot.Entry, 0, len(r.entries)+len(r.pool))
	for _, e := range r.entries {
		entries = append(entries, e)
	}
	for _, f := range r.pool {
		entries = append(entries, snapshot.Entry{Path: f.Path, Digest: f.SHA256, Size: f.Size})
	}
	var items []snapshot.Item
	for _, ix := range r.ixs {
		for _, p := range ix.pkgs {
			if sel.hasPkg(p) {
				items = append(items, p.item())
			}
		}
	}
	// An arch-all package is listed once per architecture: keep one.
	slices.SortFunc(items, func(a, b snapshot.Item) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Version, b.Version))
	})
	items = slices.Compact(items)
	if items == nil {
		items = []snapshot.Item{}
	}
	return &source.Result{Entries: entries, Items: items}
}
