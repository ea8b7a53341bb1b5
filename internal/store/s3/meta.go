package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mirrord/mirrord/internal/store"
)

// Meta is the metadata half of a Store: one object per key under meta/.
type Meta struct{ s *Store }

// Get implements store.Meta.
func (m *Meta) Get(ctx context.Context, key string) ([]byte, error) {
	if err := store.ValidKey(key); err != nil {
		return nil, fmt.Errorf("meta get: %w", err)
	}
	k := m.s.l.meta(key)
	out, err := m.s.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &m.s.opt.Bucket, Key: &k})
	if err != nil {
		return nil, m.s.wrap("meta get", k, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, m.s.wrap("meta get", k, err)
	}
	return b, nil
}

// Put implements store.Meta: S3 replaces an object atomically.
func (m *Meta) Put(ctx context.Context, key string, value []byte) error {
	if err := store.ValidKey(key); err != nil {
		return fmt.Errorf("meta put: %w", err)
	}
	k := m.s.l.meta(key)
	if err := m.s.putObject(ctx, k, value, nil, nil); err != nil {
		return m.s.wrap("meta put", k, err)
	}
	return nil
}

// Create implements store.Meta with If-None-Match: * (see the package
// comment for servers that ignore it).
func (m *Meta) Create(ctx context.Context, key string, value []byte) error {
	if err := store.ValidKey(key); err != nil {
		return fmt.Errorf("meta create: %w", err)
	}
	k := m.s.l.meta(key)
	err := m.s.createObject(ctx, k, value)
	if errors.Is(err, store.ErrExists) {
		return fmt.Errorf("meta create %s: %w", key, store.ErrExists)
	}
	if err != nil {
		return m.s.wrap("meta create", k, err)
	}
	return nil
}

// putObjectETag writes value to key, conditionally when ifMatch or
// ifNoneMatch is set, and returns the new object's ETag.
func (s *Store) putObjectETag(ctx context.Context, key string, value []byte, ifMatch, ifNoneMatch *string) (string, error) {
	out, err := s.c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &s.opt.Bucket, Key: &key, Body: bytes.NewReader(value),
		ContentLength: aws.Int64(int64(len(value))), IfMatch: ifMatch, IfNoneMatch: ifNoneMatch,
	}, withPayloadHash(string(store.DigestOf(value))))
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

func (s *Store) putObject(ctx context.Context, key string, value []byte, ifMatch, ifNoneMatch *string) error {
	_, err := s.putObjectETag(ctx, key, value, ifMatch, ifNoneMatch)
	return err
}

// createObjectETag writes key only if absent (the error wraps
// store.ErrExists otherwise) and returns the new object's ETag.
func (s *Store) createObjectETag(ctx context.Context, key string, value []byte) (string, error) {
	ok, err := s.conditional(ctx)
	if err != nil {
		return "", err
	}
	if !ok {
		// Documented fallback: exclusive only among this process's callers.
		s.createMu.Lock()
		defer s.createMu.Unlock()
		if _, err := s.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.opt.Bucket, Key: &key}); err == nil {
			return "", store.ErrExists
		} else if !isNotFound(err) {
			return "", err
		}
		return s.putObjectETag(ctx, key, value, nil, nil)
	}
	for {
		etag, err := s.putObjectETag(ctx, key, value, nil, aws.String("*"))
		switch {
		case err == nil:
			return etag, nil
		case isPrecondition(err):
			return "", store.ErrExists
		case isConflict(err) && ctx.Err() == nil:
			continue // a concurrent conditional write: ask again
		}
		return "", err
	}
}

func (s *Store) createObject(ctx context.Context, key string, value []byte) error {
	_, err := s.createObjectETag(ctx, key, value)
	return err
}

// conditional reports whether the server honours If-None-Match: * on
// PutObject, probing once: it creates a probe object, then tries to create
// it again; a server that lets the second write through ignores the header.
func (s *Store) conditional(ctx context.Context) (bool, error) {
	s.condMu.Lock()
	defer s.condMu.Unlock()
	if s.condKnown {
		return s.condOK, nil
	}
	key := s.l.probe(randomToken())
	put := func() error { return s.putObject(ctx, key, []byte("probe"), nil, aws.String("*")) }
	if err := put(); err != nil {
		return false, s.wrap("probe conditional writes with", key, err)
	}
	err := put()
	s.c.DeleteObject(context.WithoutCancel(ctx), &s3.DeleteObjectInput{Bucket: &s.opt.Bucket, Key: &key})
	switch {
	case err == nil:
		s.log.Warn("the S3 server ignores conditional writes (If-None-Match): creating snapshot records and leases is exclusive only within one process; run a single writer or configure consul", "store", s.String())
	case isPrecondition(err) || isConflict(err):
		s.condOK = true
	default:
		return false, s.wrap("probe conditional writes with", key, err)
	}
	s.condKnown = true
	return s.condOK, nil
}

// List implements store.Meta.
func (m *Meta) List(ctx context.Context, prefix string) ([]string, error) {
	dir := m.s.l.metaRoot()
	if prefix != "" {
		if err := store.ValidKey(prefix); err != nil {
			return nil, fmt.Errorf("meta list: %w", err)
		}
		dir = m.s.l.meta(prefix) + "/"
	}
	names := []string{}
	p := s3.NewListObjectsV2Paginator(m.s.c, &s3.ListObjectsV2Input{Bucket: &m.s.opt.Bucket, Prefix: &dir, Delimiter: aws.String("/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, m.s.wrap("meta list", dir, err)
		}
		for _, cp := range page.CommonPrefixes {
			names = appendName(names, strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), dir), "/"))
		}
		for _, o := range page.Contents {
			names = appendName(names, strings.TrimPrefix(aws.ToString(o.Key), dir))
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

func appendName(names []string, n string) []string {
	if n == "" || strings.Contains(n, "/") || store.ValidKey(n) != nil {
		return names
	}
	return append(names, n)
}

// Delete implements store.Meta.
func (m *Meta) Delete(ctx context.Context, key string) error {
	if err := store.ValidKey(key); err != nil {
		return fmt.Errorf("meta delete: %w", err)
	}
	k := m.s.l.meta(key)
	if _, err := m.s.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &m.s.opt.Bucket, Key: &k}); err != nil && !isNotFound(err) {
		return m.s.wrap("meta delete", k, err)
	}
	return nil
}
