package yum

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"

	"github.com/mirrord/mirrord/internal/store"
)

// publish writes the metadata of a filtered mirror into set: primary,
// filelists and other for exactly the selected packages, the updateinfo
// and modules entries that still apply, the comps (group) files as they
// are, and a new repomd.xml signed with mirrord's key.
func (r *run) publish(ctx context.Context, set entrySet, p *pin, data map[string]*dataFile, sel []*pkg) error {
	if r.env.Signer == nil {
		return fmt.Errorf("a filtered yum mirror is re-signed, but mirrord has no signing key")
	}
	// No revision or timestamps: the new repomd.xml depends only on what
	// it lists, so an unchanged selection republishes it byte for byte
	// (and keeps its signature).
	md := &repomd{}
	ids := map[string]bool{}
	for _, pk := range append(slices.Clone(sel), r.old...) {
		ids[pk.Checksum.Hex] = true
	}
	gens := []struct {
		typ string
		gen func(io.Reader, io.Writer) error
	}{
		{"primary", func(rd io.Reader, w io.Writer) error { return writePrimary(rd, w, sel, r.oldDoc(ctx, "primary")) }},
		{"filelists", func(rd io.Reader, w io.Writer) error { return writeByPkgid(rd, w, ids, r.oldDoc(ctx, "filelists")) }},
		{"other", func(rd io.Reader, w io.Writer) error { return writeByPkgid(rd, w, ids, r.oldDoc(ctx, "other")) }},
		{"updateinfo", func(rd io.Reader, w io.Writer) error {
			return writeUpdateinfo(rd, w, nevraSet(sel), r.s.opt.Advisories)
		}},
		{"modules", func(rd io.Reader, w io.Writer) error { return writeModules(rd, w, nevraSet(sel)) }},
	}
	for _, g := range gens {
		df := data[g.typ]
		if df == nil {
			continue
		}
		e, info, err := r.regenerate(ctx, df, g.gen)
		if err != nil {
			return err
		}
		if err := set.add(e.Href, info); err != nil {
			return err
		}
		md.Data = append(md.Data, e)
	}
	for _, e := range p.md.Data {
		if df := data[e.Type]; df != nil && strings.HasPrefix(e.Type, "group") {
			if err := set.add(df.path, df.info); err != nil {
				return err
			}
			e.Href, e.Base, e.Timestamp = df.path, "", ""
			md.Data = append(md.Data, e)
		}
	}
	return r.signRepomd(ctx, set, md)
}

// regenerate runs gen over the decompressed upstream file df and stores
// the gzip-compressed result as repodata/<sha256>-<type>.xml.gz.
func (r *run) regenerate(ctx context.Context, df *dataFile, gen func(io.Reader, io.Writer) error) (dataEntry, store.Info, error) {
	b, err := r.openBlob(ctx, df.info.Digest)
	if err != nil {
		return dataEntry{}, store.Info{}, err
	}
	defer b.Close()
	rc, _, err := decompress(b, df.path)
	if err != nil {
		return dataEntry{}, store.Info{}, badMetadata(df.what(), df.url, err)
	}
	defer rc.Close()
	e, info, err := r.putGzip(ctx, func(w io.Writer) error {
		if err := gen(rc, w); err != nil {
			return badMetadata(df.what(), df.url, err)
		}
		return nil
	})
	if err != nil {
		return dataEntry{}, store.Info{}, fmt.Errorf("regenerating %s: %w", df.what(), err)
	}
	ext := ".xml.gz"
	if df.entry.Type == "modules" {
		ext = ".yaml.gz"
	}
	e.Type = df.entry.Type
	e.Href = "repodata/" + string(info.Digest) + "-" + df.entry.Type + ext
	return e, info, nil
}

// putGzip stores what write produces, gzip-compressed (deterministically:
// no name or time in the header), and describes it as a repomd entry.
func (r *run) putGzip(ctx context.Context, write func(io.Writer) error) (dataEntry, store.Info, error) {
	pr, pw := io.Pipe()
	open := sha256.New()
	var openSize countWriter
	done := make(chan error, 1)
	go func() {
		zw, _ := gzip.NewWriterLevel(pw, gzip.DefaultCompression)
		err := write(io.MultiWriter(zw, open, &openSize))
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
		pw.CloseWithError(err)
		done <- err
	}()
	info, err := r.env.Blobs.Put(ctx, pr, store.Expect{})
	stopped := errors.New("the store stopped reading")
	pr.CloseWithError(stopped) // unblocks the writer if Put gave up early
	if werr := <-done; werr != nil && !errors.Is(werr, stopped) {
		return dataEntry{}, store.Info{}, werr // the generator's error, not its echo from Put
	}
	if err != nil {
		return dataEntry{}, store.Info{}, err
	}
	openSum := Checksum{Type: "sha256", Hex: hex.EncodeToString(open.Sum(nil))}
	return dataEntry{
		Checksum:     Checksum{Type: "sha256", Hex: string(info.Digest)},
		OpenChecksum: &openSum,
		Size:         info.Size,
		OpenSize:     int64(openSize),
	}, info, nil
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}

// signRepomd stores the new repomd.xml and its signature. When the
// previous snapshot published the same repomd.xml, its signature is
// reused, so an unchanged selection gives a byte-identical tree.
func (r *run) signRepomd(ctx context.Context, set entrySet, md *repomd) error {
	raw := md.encode()
	info, err := r.putBytes(ctx, raw)
	if err != nil {
		return err
	}
	if err := set.add("repodata/repomd.xml", info); err != nil {
		return err
	}
	prevMD, ok1 := r.prev.lookup("repodata/repomd.xml")
	prevSig, ok2 := r.prev.lookup("repodata/repomd.xml.asc")
	if ok1 && ok2 && prevMD.Digest == info.Digest {
		set["repodata/repomd.xml.asc"] = prevSig
		return nil
	}
	sig, err := r.env.Signer.DetachSign(raw)
	if err != nil {
		return fmt.Errorf("signing repomd.xml: %w", err)
	}
	if info, err = r.putBytes(ctx, sig); err != nil {
		return err
	}
	return set.add("repodata/repomd.xml.asc", info)
}

// writePrimary keeps the selected packages (by position) with their
// location rewritten to their path in the tree (no xml:base).
func writePrimary(rd io.Reader, w io.Writer, sel []*pkg, old *oldDoc) error {
	want := len(sel)
	f := primaryFilter(sel)
	if old != nil {
		want += len(old.pkgs)
		of := primaryFilter(old.pkgs)
		f.after = func(copyChildren func(io.Reader, childFilter) (int, error)) (int, error) {
			return old.copy(func(rd io.Reader) (int, error) { return copyChildren(rd, of) })
		}
	}
	f.rootAttrs = map[string]string{"packages": strconv.Itoa(want)}
	n, err := filterChildren(rd, w, f)
	if err == nil && n != want {
		err = fmt.Errorf("wrote %d packages, want %d", n, want)
	}
	return err
}

// primaryFilter keeps the packages of sel (by position) with their
// location rewritten to their path in the tree.
func primaryFilter(sel []*pkg) childFilter {
	byIndex := make(map[int]*pkg, len(sel))
	for _, p := range sel {
		byIndex[p.Index] = p
	}
	var cur *pkg
	return childFilter{
		keep: func(start xml.StartElement, i int) bool {
			cur = byIndex[i]
			return cur != nil && start.Name.Local == "package"
		},
		edit: func(tok xml.Token) xml.Token {
			if s, ok := tok.(xml.StartElement); ok && s.Name.Local == "location" {
				return xml.StartElement{Name: s.Name, Attr: []xml.Attr{{Name: xml.Name{Local: "href"}, Value: cur.Path}}}
			}
			return tok
		},
	}
}

// writeByPkgid keeps the <package pkgid=...> entries of filelists.xml or
// other.xml whose pkgid is selected, each once.
func writeByPkgid(rd io.Reader, w io.Writer, ids map[string]bool, old *oldDoc) error {
	seen := map[string]bool{}
	f := childFilter{
		rootAttrs: map[string]string{"packages": strconv.Itoa(len(ids))},
		keep: func(start xml.StartElement, _ int) bool {
			id := attr(start, "pkgid")
			if !ids[id] || seen[id] {
				return false
			}
			seen[id] = true
			return true
		},
	}
	if old != nil {
		f.after = func(copyChildren func(io.Reader, childFilter) (int, error)) (int, error) {
			return old.copy(func(rd io.Reader) (int, error) { return copyChildren(rd, childFilter{keep: f.keep}) })
		}
	}
	n, err := filterChildren(rd, w, f)
	if err == nil && n != len(ids) {
		err = fmt.Errorf("%w: lists %d of the %d selected packages", ErrBadMetadata, n, len(ids))
	}
	return err
}

// nevraSet keys packages as name-epoch:version-release.arch (epoch 0 when
// absent), the form updateinfo and modules refer to them by.
func nevraSet(pkgs []*pkg) map[string]bool {
	out := make(map[string]bool, len(pkgs))
	for _, p := range pkgs {
		out[nevraKey(p.Name, p.EVR.Epoch, p.EVR.Version, p.EVR.Release, p.Arch)] = true
	}
	return out
}

func nevraKey(name, epoch, version, release, arch string) string {
	if epoch == "" {
		epoch = "0"
	}
	return name + "-" + epoch + ":" + version + "-" + release + "." + arch
}
