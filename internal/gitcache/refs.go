package gitcache

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/mirrord/mirrord/internal/snapshot"
)

// symrefPrefix marks a symbolic value in a RefSet ("HEAD" → "ref: refs/heads/main"),
// the form git itself writes in a HEAD file.
const symrefPrefix = "ref: "

// RefSet is the ref state of a repository at one moment: every branch and
// tag (refs/heads/*, refs/tags/*) with its object id, and HEAD. It is what a
// snapshot records (SourceRecord.Refs) and what a pin holds.
type RefSet struct {
	Refs map[string]string // full ref name → 40-hex object id
	// Head is HEAD's target branch ("refs/heads/main"), or "" when the
	// upstream has no HEAD or it names a ref outside the set.
	Head string
}

// mirrored reports whether ref is one mirrord keeps: branches and tags, not
// refs/pull/*, refs/changes/* or anything else.
func mirrored(ref string) bool {
	if !strings.HasPrefix(ref, "refs/heads/") && !strings.HasPrefix(ref, "refs/tags/") {
		return false
	}
	return plumbing.ReferenceName(ref).Validate() == nil && !strings.HasSuffix(ref, "^{}")
}

// newRefSet builds a RefSet from references as go-git lists or stores them:
// hash references under refs/heads and refs/tags, and HEAD when it is a
// symbolic reference to one of them.
func newRefSet(refs []*plumbing.Reference) RefSet {
	rs := RefSet{Refs: map[string]string{}}
	var head plumbing.ReferenceName
	for _, r := range refs {
		switch {
		case r.Name() == plumbing.HEAD && r.Type() == plumbing.SymbolicReference:
			head = r.Target()
		case r.Type() == plumbing.HashReference && mirrored(r.Name().String()):
			rs.Refs[r.Name().String()] = r.Hash().String()
		}
	}
	if _, ok := rs.Refs[head.String()]; ok {
		rs.Head = head.String()
	}
	return rs
}

// Len is the number of refs, HEAD included.
func (rs RefSet) Len() int {
	if rs.Head != "" {
		return len(rs.Refs) + 1
	}
	return len(rs.Refs)
}

// names returns the ref names, sorted.
func (rs RefSet) names() []string {
	out := make([]string, 0, len(rs.Refs))
	for n := range rs.Refs {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Pin is the content address of the set: a short digest of its sorted refs
// and HEAD. Two snapshots with the same refs share one pin (one namespace in
// the bare repo), so an unchanged upstream adds nothing.
func (rs RefSet) Pin() string {
	h := sha256.New()
	h.Write([]byte("mirrord git pin v1\n"))
	for _, n := range rs.names() {
		fmt.Fprintf(h, "%s %s\n", rs.Refs[n], n)
	}
	fmt.Fprintf(h, "HEAD %s\n", rs.Head)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Record is the set as a snapshot stores it: the refs, plus "HEAD" →
// "ref: <target>" when HEAD is known.
func (rs RefSet) Record() map[string]string {
	out := make(map[string]string, rs.Len())
	for n, id := range rs.Refs {
		out[n] = id
	}
	if rs.Head != "" {
		out["HEAD"] = symrefPrefix + rs.Head
	}
	return out
}

// Items are the set as `snapshot diff` compares it: one item per ref.
func (rs RefSet) Items() []snapshot.Item {
	items := make([]snapshot.Item, 0, rs.Len())
	for _, n := range rs.names() {
		items = append(items, snapshot.Item{Name: n, Version: rs.Refs[n]})
	}
	if rs.Head != "" {
		items = append(items, snapshot.Item{Name: "HEAD", Version: symrefPrefix + rs.Head})
	}
	return items
}

// RefSetOf reads the set back from a snapshot's SourceRecord.Refs.
func RefSetOf(rec map[string]string) RefSet {
	rs := RefSet{Refs: map[string]string{}}
	for n, v := range rec {
		if n == "HEAD" {
			rs.Head = strings.TrimPrefix(v, symrefPrefix)
			continue
		}
		rs.Refs[n] = v
	}
	return rs
}

// Equal reports whether two sets name the same refs, objects and HEAD.
func (rs RefSet) Equal(o RefSet) bool {
	if rs.Head != o.Head || len(rs.Refs) != len(o.Refs) {
		return false
	}
	for n, id := range rs.Refs {
		if o.Refs[n] != id {
			return false
		}
	}
	return true
}

// namespaceRef is where ref is pinned for pin inside the bare repo; git's
// GIT_NAMESPACE=<pin> makes exactly these refs the repo's refs.
func namespaceRef(pin, ref string) plumbing.ReferenceName {
	return plumbing.ReferenceName("refs/namespaces/" + pin + "/" + ref)
}

// namespacePrefix is the ref prefix of every ref pinned for pin.
func namespacePrefix(pin string) string { return "refs/namespaces/" + pin + "/" }

// pinOf returns the pin a namespaced ref belongs to, or "".
func pinOf(ref string) string {
	rest, ok := strings.CutPrefix(ref, "refs/namespaces/")
	if !ok {
		return ""
	}
	pin, _, ok := strings.Cut(rest, "/")
	if !ok {
		return ""
	}
	return pin
}

// validPin reports whether s has the form Pin returns.
func validPin(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// manifestPath is the one file of a git source's tree: the ref set in the
// format of `git ls-remote --symref` (without peeled lines), served at
// /snapshots/ID/git/NAME/refs.txt for people and scripts.
const manifestPath = "refs.txt"

// Manifest is the set in `git ls-remote --symref` format: HEAD's symref
// line, then "<id>\t<ref>" lines sorted by ref.
func (rs RefSet) Manifest() []byte {
	var b strings.Builder
	if rs.Head != "" {
		fmt.Fprintf(&b, "%s%s\tHEAD\n%s\tHEAD\n", symrefPrefix, rs.Head, rs.Refs[rs.Head])
	}
	for _, n := range rs.names() {
		fmt.Fprintf(&b, "%s\t%s\n", rs.Refs[n], n)
	}
	return []byte(b.String())
}
