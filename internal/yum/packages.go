package yum

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/ProtonMail/go-crypto/openpgp"
	rpmutils "github.com/sassoftware/go-rpmutils"
	"golang.org/x/sync/errgroup"

	"github.com/mirrord/mirrord/internal/fetch"
	"github.com/mirrord/mirrord/internal/progress"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/store"
)

// locatePackages sets each package's tree path from its location, and
// returns the packages with one entry per path (the same file listed
// twice is fetched once; two different files at one path are an error).
func (r *run) locatePackages(pkgs []*pkg) ([]*pkg, error) {
	byPath := make(map[string]*pkg, len(pkgs))
	out := make([]*pkg, 0, len(pkgs))
	for _, p := range pkgs {
		rel, _, err := r.s.up.locate(p.Href, p.Base)
		if err != nil {
			return nil, fmt.Errorf("primary metadata, package %s: %w", p.NEVRA(), err)
		}
		if p.Base != "" && !r.s.filtered() {
			return nil, verbatimBaseErr("package "+p.NEVRA(), p.Base)
		}
		p.Path = rel
		if old := byPath[rel]; old != nil {
			if old.Checksum != p.Checksum {
				return nil, fmt.Errorf("%w: primary lists two different packages at %s (%s and %s)", ErrBadMetadata, rel, old.NEVRA(), p.NEVRA())
			}
			continue
		}
		byPath[rel] = p
		out = append(out, p)
	}
	return out, nil
}

// fetchPackages mirrors pkgs concurrently and returns their tree entries.
func (r *run) fetchPackages(ctx context.Context, pkgs []*pkg) ([]snapshot.Entry, error) {
	task := r.env.Progress.Task("yum/"+r.s.opt.Name+" packages", progress.Items("packages"), int64(len(pkgs)))
	out := make([]snapshot.Entry, len(pkgs))
	g, gctx := errgroup.WithContext(fetch.WithProgress(ctx, task.Fetched))
	g.SetLimit(r.s.opt.Concurrency)
	for i, p := range pkgs {
		g.Go(func() error {
			info, err := r.fetchPackage(gctx, p)
			if err != nil {
				return err
			}
			out[i] = snapshot.Entry{Path: p.Path, Digest: info.Digest, Size: info.Size}
			task.Add(1)
			return nil
		})
	}
	err := g.Wait()
	task.Done(err)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// fetchPackage downloads one package (checksum and size from primary) and
// checks the rpm itself: header digests, payload digest, the signature
// against the gpgkey, and that it is the package primary says it is. A
// package the previous snapshot already verified is taken as it is.
func (r *run) fetchPackage(ctx context.Context, p *pkg) (store.Info, error) {
	w := want{what: "package " + p.NEVRA(), path: p.Path, url: r.s.up.url(p.Path), sum: p.Checksum, size: p.Size, max: maxPackageSize}
	info, reused, err := r.download(ctx, w)
	if err != nil || reused {
		return info, err
	}
	if err := r.checkRPM(ctx, p, info.Digest); err != nil {
		return store.Info{}, fmt.Errorf("package %s (%s): %w", p.NEVRA(), w.url, err)
	}
	return info, nil
}

// checkRPM verifies the stored rpm d.
func (r *run) checkRPM(ctx context.Context, p *pkg, d store.Digest) error {
	b, err := r.openBlob(ctx, d)
	if err != nil {
		return err
	}
	defer b.Close()
	var keys openpgp.EntityList
	if r.keys != nil {
		keys = r.keys.entities
	}
	hdr, sigs, err := verifyRPM(bufio.NewReaderSize(b, 32<<10), keys)
	if err != nil {
		return explainRPMError(err, r.s.opt.GPGKey)
	}
	if keys != nil && len(sigs) == 0 {
		return fmt.Errorf("%w: the package is not signed, but a gpgkey is configured (dnf with gpgcheck=1 would refuse it)", ErrBadPackage)
	}
	return checkIdentity(hdr, p)
}

// verifyRPM runs go-rpmutils' verification, turning a panic on a
// malformed header into an error.
func verifyRPM(rd io.Reader, keys openpgp.EntityList) (hdr *rpmutils.RpmHeader, sigs []*rpmutils.Signature, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("malformed rpm header: %v", v)
		}
	}()
	return rpmutils.Verify(rd, keys)
}

func explainRPMError(err error, gpgkey string) error {
	var nk rpmutils.KeyNotFoundError
	if errors.As(err, &nk) {
		return fmt.Errorf("%w: signed by a key that is not in gpgkey %s (%v); configure the key the upstream signs with", ErrBadPackage, gpgkey, err)
	}
	return fmt.Errorf("%w: rpm verification failed (corrupt or tampered package): %v", ErrBadPackage, err)
}

// checkIdentity compares the rpm header's NEVRA with primary's entry.
func checkIdentity(hdr *rpmutils.RpmHeader, p *pkg) error {
	n, err := hdr.GetNEVRA()
	if err != nil {
		return fmt.Errorf("%w: reading name and version from the header: %v", ErrBadPackage, err)
	}
	epoch := p.EVR.Epoch
	if epoch == "" {
		epoch = "0"
	}
	hEpoch := n.Epoch
	if hEpoch == "" {
		hEpoch = "0"
	}
	if n.Name != p.Name || hEpoch != epoch || n.Version != p.EVR.Version || n.Release != p.EVR.Release || (n.Arch != p.Arch && p.Arch != "src") {
		return fmt.Errorf("%w: the header says %s-%s:%s-%s.%s, primary.xml says %s", ErrBadPackage, n.Name, hEpoch, n.Version, n.Release, n.Arch, p.NEVRA())
	}
	return nil
}

// items lists pkgs for snapshot diffs: "NAME.ARCH" → "[EPOCH:]VERSION-RELEASE".
func items(pkgs []*pkg) []snapshot.Item {
	out := make([]snapshot.Item, 0, len(pkgs))
	for _, p := range pkgs {
		out = append(out, snapshot.Item{Name: p.Name + "." + p.Arch, Version: p.itemVersion()})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Version < out[j].Version
	})
	return out
}
