package apt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"

	"github.com/mirrord/mirrord/internal/fetch"
	"github.com/mirrord/mirrord/internal/signing"
	"github.com/mirrord/mirrord/internal/source"
)

// maxRelease caps an InRelease/Release file (Debian's are about 200 KiB).
const maxRelease = 32 << 20

// upstream is one suite's Release as fetched and verified.
type upstream struct {
	suite string
	dist  string // URL of dists/SUITE/ (with the trailing slash)
	// inRelease is set when the upstream has one; otherwise release and
	// releaseGPG (nil when absent and verification is off) are.
	inRelease, release, releaseGPG []byte
	rel                            *release
}

// signedFile is the URL of the file the Release was read from.
func (u *upstream) signedFile() string {
	if u.inRelease != nil {
		return u.dist + "InRelease"
	}
	return u.dist + "Release"
}

// identity is a digest of everything fetched, to recognise an unchanged
// upstream.
func (u *upstream) identity() string {
	h := sha256.New()
	for _, b := range [][]byte{u.inRelease, u.release, u.releaseGPG} {
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// fetchRelease gets dists/SUITE/InRelease (or Release + Release.gpg when
// the upstream has no InRelease), verifies its signature against keyring
// (nil: verification disabled in the config) and parses it.
func (s *Source) fetchRelease(ctx context.Context, env *source.Env, suite string, keyring openpgp.EntityList) (*upstream, error) {
	u := &upstream{suite: suite, dist: s.base + "dists/" + suite + "/"}
	resp, err := env.Fetch.Get(ctx, fetch.Request{URL: u.dist + "InRelease", MaxSize: maxRelease})
	switch {
	case err == nil:
		u.inRelease = resp.Body
		err = u.verifyInRelease(keyring, s.cfg.Keyring)
	case errors.Is(err, fetch.ErrNotFound):
		err = s.fetchDetached(ctx, env, u, keyring)
	default:
		err = fmt.Errorf("suite %s: %w", suite, err)
	}
	if err != nil {
		return nil, err
	}
	s.sanityCheck(env, u)
	return u, nil
}

func (u *upstream) verifyInRelease(keyring openpgp.EntityList, keyFile string) error {
	what := u.dist + "InRelease"
	var text []byte
	if keyring == nil {
		block, _ := clearsign.Decode(u.inRelease)
		if block == nil {
			return fmt.Errorf("%s: not a clearsigned message", what)
		}
		text = block.Plaintext
	} else {
		var err error
		if text, _, err = signing.VerifyClearSigned(keyring, u.inRelease); err != nil {
			return signatureError(what, keyFile, err)
		}
	}
	rel, err := parseRelease(text)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	u.rel = rel
	return nil
}

// fetchDetached is the fallback for upstreams without InRelease.
func (s *Source) fetchDetached(ctx context.Context, env *source.Env, u *upstream, keyring openpgp.EntityList) error {
	what := u.dist + "Release"
	resp, err := env.Fetch.Get(ctx, fetch.Request{URL: what, MaxSize: maxRelease})
	if err != nil {
		return fmt.Errorf("suite %s: no InRelease, and Release failed too: %w", u.suite, err)
	}
	u.release = resp.Body
	sig, err := env.Fetch.Get(ctx, fetch.Request{URL: what + ".gpg", MaxSize: 1 << 20})
	switch {
	case err == nil:
		u.releaseGPG = sig.Body
	case errors.Is(err, fetch.ErrNotFound) && keyring == nil:
	default:
		return fmt.Errorf("suite %s: no InRelease, and Release.gpg failed: %w", u.suite, err)
	}
	if keyring != nil {
		if _, err := signing.VerifyDetached(keyring, u.release, u.releaseGPG); err != nil {
			return signatureError(what+".gpg", s.cfg.Keyring, err)
		}
	}
	rel, err := parseRelease(u.release)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	u.rel = rel
	return nil
}

func signatureError(what, keyFile string, err error) error {
	hint := "the file was altered after signing, or was not signed by the upstream; do not use this mirror until it serves a correctly signed file"
	if errors.Is(err, signing.ErrUnknownKey) {
		hint = "check that keyring " + keyFile + " holds the key that signs this repository (the upstream may have rotated its key)"
	}
	return fmt.Errorf("%s: signature check against keyring %s failed: %w; %s", what, keyFile, err, hint)
}

// sanityCheck logs what apt itself would warn about.
func (s *Source) sanityCheck(env *source.Env, u *upstream) {
	r := u.rel
	if suite, code := r.field("Suite"), r.field("Codename"); suite != "" && suite != u.suite && code != u.suite && !strings.HasSuffix(u.suite, "/"+code) {
		env.Log.Warn("upstream Release names another suite", "suite", u.suite, "release_suite", suite, "release_codename", code)
	}
	if vu := r.field("Valid-Until"); vu != "" {
		if t, err := time.Parse(time.RFC1123, vu); err == nil && t.Before(time.Now()) {
			env.Log.Warn("upstream Release has expired; apt would refuse it, mirrord's published copy has no expiry", "suite", u.suite, "valid_until", vu)
		}
	}
}
