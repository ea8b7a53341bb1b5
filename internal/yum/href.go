package yum

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/mirrord/mirrord/internal/snapshot"
)

// upstream is the repository base URL (the directory holding repodata/).
type upstream struct {
	base *url.URL // absolute, path ending in "/", no query or fragment
}

func parseUpstream(raw string) (upstream, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return upstream{}, fmt.Errorf("url %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return upstream{}, fmt.Errorf("url %q: want an absolute http(s) URL", raw)
	}
	u.RawQuery, u.Fragment = "", ""
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		u.RawPath = ""
	}
	return upstream{base: u}, nil
}

func (u upstream) String() string { return u.base.String() }

// url returns the URL of a tree path (relative to the base).
func (u upstream) url(rel string) string {
	ref := &url.URL{Path: rel}
	return u.base.ResolveReference(ref).String()
}

// locate maps a metadata location (href, and the xml:base it may carry)
// to the file's path in the tree, relative to the base, and its URL. It
// refuses hrefs that are absolute, carry a scheme, or climb with "..", and
// an xml:base that leads off the upstream: mirroring those would fetch
// (and later serve) files from outside the repository.
func (u upstream) locate(href, xmlBase string) (rel, fetchURL string, err error) {
	if err := checkHref(href); err != nil {
		return "", "", err
	}
	rel = href
	if xmlBase != "" {
		prefix, err := u.basePrefix(xmlBase)
		if err != nil {
			return "", "", err
		}
		rel = prefix + href
	}
	if _, err := snapshot.CleanPath(rel); err != nil {
		return "", "", fmt.Errorf("%w: location %q (xml:base %q): %v", ErrUnsafeLocation, href, xmlBase, err)
	}
	return rel, u.url(rel), nil
}

// checkHref refuses hrefs that could name something outside the tree.
func checkHref(href string) error {
	fail := func(why string) error {
		return fmt.Errorf("%w: location href %q %s; refusing to mirror it (the repository metadata is broken or malicious)", ErrUnsafeLocation, href, why)
	}
	switch {
	case href == "":
		return fail("is empty")
	case strings.HasPrefix(href, "/"):
		return fail("is an absolute path")
	case strings.ContainsAny(href, "\\\x00\r\n?#"):
		return fail("contains a backslash, NUL, newline, '?' or '#'")
	case strings.Contains(href, "://") || strings.HasPrefix(strings.ToLower(href), "file:"):
		return fail("is a URL, not a path inside the repository")
	}
	for _, seg := range strings.Split(href, "/") {
		if seg == ".." {
			return fail("climbs out of the repository with \"..\"")
		}
	}
	if _, err := snapshot.CleanPath(href); err != nil {
		return fail("is not a clean relative path")
	}
	return nil
}

// basePrefix resolves an xml:base against the upstream and returns it as
// a path prefix relative to the base ("" or "dir/"), or an error when it
// points anywhere else.
func (u upstream) basePrefix(xmlBase string) (string, error) {
	b, err := url.Parse(xmlBase)
	if err != nil {
		return "", fmt.Errorf("%w: xml:base %q: %v", ErrUnsafeLocation, xmlBase, err)
	}
	abs := u.base.ResolveReference(b)
	off := func() error {
		return fmt.Errorf("%w: xml:base %q points off the upstream %s; refusing to fetch packages from another location", ErrUnsafeLocation, xmlBase, u.base)
	}
	if abs.Scheme != u.base.Scheme || !strings.EqualFold(abs.Host, u.base.Host) || abs.User != nil {
		return "", off()
	}
	p := abs.Path
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	if !strings.HasPrefix(p, u.base.Path) {
		return "", off()
	}
	return strings.TrimPrefix(p, u.base.Path), nil
}
