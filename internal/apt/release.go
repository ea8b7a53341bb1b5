package apt

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/store"
)

// errWeakChecksums: the Release file has no SHA256 list.
var errWeakChecksums = errors.New("the Release lists no SHA256 checksums (only MD5Sum/SHA1, which cannot be trusted); mirrord requires SHA256")

// fileSum is one file listed in a Release file.
type fileSum struct {
	Size   int64
	SHA256 store.Digest
}

// release is a parsed Release file (the signed text of InRelease).
type release struct {
	fields map[string]string // single-line fields by lowercase name
	files  map[string]fileSum
}

// parseRelease parses a Release file. It requires a SHA256 list.
func parseRelease(data []byte) (*release, error) {
	p := newParagraphs(bytes.NewReader(data))
	ok, err := p.next()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("empty Release file")
	}
	r := &release{fields: map[string]string{}, files: map[string]fileSum{}}
	var sums []byte
	weak := false
	p.each(func(name, value []byte) {
		n := strings.ToLower(string(name))
		switch n {
		case "sha256":
			sums = value
		case "md5sum", "sha1":
			weak = true
		default:
			r.fields[n] = string(value)
		}
	})
	if sums == nil {
		if weak {
			return nil, errWeakChecksums
		}
		return nil, errors.New("the Release lists no files (no SHA256 field)")
	}
	if err := r.parseSums(sums); err != nil {
		return nil, err
	}
	return r, nil
}

// parseSums reads " <sha256> <size> <path>" lines.
func (r *release) parseSums(sums []byte) error {
	for _, line := range strings.Split(string(sums), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return fmt.Errorf("the Release's SHA256 line %q: want \"sha256 size path\"", line)
		}
		d, err := store.ParseDigest(strings.ToLower(f[0]))
		if err != nil {
			return fmt.Errorf("the Release's SHA256 entry for %s: %w", f[2], err)
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || size < 0 {
			return fmt.Errorf("the Release's SHA256 entry for %s: bad size %q", f[2], f[1])
		}
		if _, err := snapshot.CleanPath(f[2]); err != nil {
			return fmt.Errorf("the Release's SHA256 entry %q is not a safe relative path (%v); the upstream Release is malformed or malicious", f[2], err)
		}
		fs := fileSum{Size: size, SHA256: d}
		if prev, dup := r.files[f[2]]; dup && prev != fs {
			return fmt.Errorf("the Release lists %s twice with different checksums (%s %d and %s %d); the upstream Release is malformed or malicious, and no copy of it can be trusted", f[2], prev.SHA256, prev.Size, d, size)
		}
		r.files[f[2]] = fs
	}
	return nil
}

// field returns a single-line field ("" when absent).
func (r *release) field(name string) string { return r.fields[strings.ToLower(name)] }

// byHash reports whether the upstream serves by-hash files.
func (r *release) byHash() bool { return strings.EqualFold(r.field("Acquire-By-Hash"), "yes") }

// hasArch reports whether the Release's Architectures field lists arch.
func (r *release) hasArch(arch string) bool {
	return slices.Contains(strings.Fields(r.field("Architectures")), arch)
}

// needsArchAll reports whether arch-all packages live in binary-all
// indices of their own (Architectures lists "all"), rather than in every
// binary-ARCH index too (No-Support-for-Architecture-all: Packages).
func (r *release) needsArchAll() bool {
	return r.hasArch("all") && !strings.EqualFold(r.field("No-Support-for-Architecture-all"), "Packages")
}

// carried are the upstream fields a published Release keeps, in order.
// Valid-Until (a pinned snapshot must never expire), Signed-By (names the
// upstream's keys, not mirrord's) and the checksum lists are not carried.
var carried = []string{"Origin", "Label", "Suite", "Version", "Codename", "Date", "NotAutomatic", "ButAutomaticUpgrades"}

// releaseSpec is what a published Release says besides the carried fields.
type releaseSpec struct {
	Architectures []string
	Components    []string
	Snapshots     string // URL template with @SNAPSHOTID@
	Files         map[string]fileSum
}

// publish renders the Release mirrord signs for a snapshot: upstream's
// identity and Date (so an unchanged upstream renders the same bytes),
// Acquire-By-Hash, no expiry, and SHA256 of exactly the files served.
func (r *release) publish(s releaseSpec) []byte {
	var b bytes.Buffer
	for _, name := range carried {
		if v := r.field(name); v != "" {
			fmt.Fprintf(&b, "%s: %s\n", name, v)
		}
	}
	b.WriteString("Acquire-By-Hash: yes\n")
	fmt.Fprintf(&b, "Architectures: %s\n", strings.Join(s.Architectures, " "))
	fmt.Fprintf(&b, "Components: %s\n", strings.Join(s.Components, " "))
	if v := r.field("Description"); v != "" {
		fmt.Fprintf(&b, "Description: %s\n", v)
	}
	if s.Snapshots != "" {
		fmt.Fprintf(&b, "Snapshots: %s\n", s.Snapshots)
	}
	b.WriteString("SHA256:\n")
	paths := make([]string, 0, len(s.Files))
	for p := range s.Files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		f := s.Files[p]
		fmt.Fprintf(&b, " %s %16d %s\n", f.SHA256, f.Size, p)
	}
	return b.Bytes()
}
