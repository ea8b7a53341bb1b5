// Package s3 is the S3 implementation of store.Store, for any S3-compatible
// server (AWS, Ceph RGW, MinIO, versitygw), on aws-sdk-go-v2 service/s3.
//
// Layout under the bucket and the configured key prefix:
//
//	<prefix>blobs/sha256/ab/ab12…ef   one object per blob, named by its digest
//	<prefix>meta/snapshots/2024…      metadata value for key "snapshots/2024…"
//	<prefix>locks/<name>              lease object of a held lock (lease.go)
//	<prefix>tmp/probe-<random>        conditional-write probe, deleted at once
//
// Contracts (beyond those of package store):
//   - A blob object only ever holds content whose sha256 is its name. Put
//     with a known digest and size streams straight to the final key: the
//     request is signed with the digest as x-amz-content-sha256 and carries
//     it as x-amz-checksum-sha256, so the server refuses other content, and
//     the body withholds its last bytes until the stream has been hashed and
//     checked, so a server that checks neither still sees an incomplete
//     request. Blobs larger than the multipart threshold, or with a known
//     digest but no size, go up as a multipart upload from memory parts,
//     completed only after the whole stream matched. With no digest, Put
//     spools to a local temp file (bounded by Expect.MaxSize) while hashing,
//     then uploads the verified file. Nothing is visible before it is
//     complete and verified.
//   - When Expect.Digest is set and the blob is present, Put returns at once
//     without reading r. S3 cannot refresh an object's mtime cheaply, so a
//     re-Put keeps the original ModTime: gc's safety rests on SyncLock,
//     which is exclusive across processes (leases or Consul), not on the
//     grace period.
//   - Meta.Put is one PutObject (S3 replaces objects atomically);
//     Meta.Create uses If-None-Match: *. A server that ignores conditional
//     writes is detected by a probe on first use; Create then falls back to
//     HEAD-then-PUT, which is only exclusive with a single writer (logged).
//   - CleanTemp aborts multipart uploads under the prefix that were started
//     more than age ago, and removes stale local spool files.
//   - Transient failures (5xx, throttling, connection errors) are retried
//     by the SDK's standard retryer with backoff; errors name the bucket,
//     the key and the endpoint.
package s3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/mirrord/mirrord/internal/store"
)

// Options configures a Store.
type Options struct {
	// Endpoint is the server's URL; "" uses AWS's endpoint for Region.
	Endpoint  string
	Region    string
	Bucket    string
	Prefix    string // key prefix: "" or ending in "/"
	PathStyle bool
	// AccessKeyID and SecretAccessKey are static credentials; when empty
	// the standard AWS environment / shared-credentials chain is used.
	AccessKeyID     string
	SecretAccessKey string
	// HTTPClient is used for every request; nil means a default client.
	HTTPClient *http.Client
	// MaxAttempts bounds the tries of one request (default 6);
	// MaxBackoff the wait between two (default 5s).
	MaxAttempts int
	MaxBackoff  time.Duration

	// TempDir holds spool files of Puts without a known digest (required).
	TempDir string
	// PartSize is the multipart part size (default 16 MiB, minimum 5 MiB
	// except in tests); blobs larger than MultipartThreshold (default
	// 64 MiB) are uploaded in parts.
	PartSize           int64
	MultipartThreshold int64
	// LeaseTTL is how long a lock's lease lasts without renewal
	// (default 30s); see lease.go.
	LeaseTTL time.Duration
	// WriterLock names the lock every blob writer holds (the sync
	// lock); "" disables the presence filter (index.go).
	WriterLock string
	Logger     *slog.Logger
}

const (
	defaultPartSize    = 16 << 20
	defaultThreshold   = 64 << 20
	defaultLeaseTTL    = 30 * time.Second
	defaultMaxAttempts = 6
)

// Store is a store.Store in an S3 bucket.
type Store struct {
	c     *s3.Client
	opt   Options
	l     layout
	log   *slog.Logger
	blobs *Blobs
	meta  *Meta

	condMu    sync.Mutex
	condKnown bool
	condOK    bool // the server honours If-None-Match / If-Match
	createMu  sync.Mutex
}

var _ store.Store = (*Store)(nil)

// New returns a store for opt. It does not contact the server.
func New(ctx context.Context, opt Options) (*Store, error) {
	if opt.Bucket == "" {
		return nil, errors.New("s3 store: bucket is required")
	}
	if opt.Prefix != "" && !strings.HasSuffix(opt.Prefix, "/") {
		opt.Prefix += "/"
	}
	if opt.TempDir == "" {
		return nil, errors.New("s3 store: a local temp directory is required")
	}
	if err := os.MkdirAll(opt.TempDir, 0o755); err != nil {
		return nil, fmt.Errorf("s3 store: temp directory: %w", err)
	}
	if opt.PartSize <= 0 {
		opt.PartSize = defaultPartSize
	}
	if opt.MultipartThreshold <= 0 {
		opt.MultipartThreshold = defaultThreshold
	}
	opt.MultipartThreshold = max(opt.MultipartThreshold, opt.PartSize)
	if opt.LeaseTTL <= 0 {
		opt.LeaseTTL = defaultLeaseTTL
	}
	if opt.MaxAttempts <= 0 {
		opt.MaxAttempts = defaultMaxAttempts
	}
	if opt.MaxBackoff <= 0 {
		opt.MaxBackoff = 5 * time.Second
	}
	if opt.Region == "" {
		opt.Region = "us-east-1"
	}
	c, err := newClient(ctx, opt)
	if err != nil {
		return nil, err
	}
	s := &Store{c: c, opt: opt, l: layout(opt.Prefix), log: opt.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.blobs = &Blobs{s: s, q: newBehind()}
	s.meta = &Meta{s: s}
	return s, nil
}

func newClient(ctx context.Context, opt Options) (*s3.Client, error) {
	load := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(opt.Region),
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = opt.MaxAttempts
				o.MaxBackoff = opt.MaxBackoff
				// A mirror sync would rather wait out throttling than
				// fail: no client-side retry quota.
				o.RateLimiter = ratelimit.None
			})
		}),
	}
	if opt.HTTPClient != nil {
		load = append(load, awsconfig.WithHTTPClient(opt.HTTPClient))
	} else {
		// Enough idle connections for the write-behind uploads, so they
		// reuse connections instead of dialling anew.
		load = append(load, awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.MaxIdleConns = 4 * uploadConcurrency
			tr.MaxIdleConnsPerHost = 2 * uploadConcurrency
		})))
	}
	if opt.AccessKeyID != "" {
		load = append(load, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(opt.AccessKeyID, opt.SecretAccessKey, "")))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("s3 store: loading AWS configuration: %w", err)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if opt.Endpoint != "" {
			o.BaseEndpoint = aws.String(opt.Endpoint)
		}
		o.UsePathStyle = opt.PathStyle
		// mirrord sends its own sha256 checksums; no CRC trailers.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.DisableLogOutputChecksumValidationSkipped = true
	}), nil
}

// Blobs returns the blob store; its dynamic type is *Blobs.
func (s *Store) Blobs() store.Blobs { return s.blobs }

// Meta returns the metadata store; its dynamic type is *Meta.
func (s *Store) Meta() store.Meta { return s.meta }

// String names the store in messages: s3://bucket/prefix at endpoint.
func (s *Store) String() string {
	at := s.opt.Endpoint
	if at == "" {
		at = "AWS " + s.opt.Region
	}
	return "s3://" + s.opt.Bucket + "/" + s.opt.Prefix + " at " + at
}

// layout computes object keys under the prefix. Its methods do not validate
// their arguments.
type layout string

const blobsDir = "blobs/sha256/"

func (l layout) blobs() string              { return string(l) + blobsDir }
func (l layout) blob(d store.Digest) string { return l.blobs() + string(d[:2]) + "/" + string(d) }
func (l layout) metaRoot() string           { return string(l) + "meta/" }
func (l layout) meta(key string) string     { return l.metaRoot() + key }
func (l layout) lock(name string) string    { return string(l) + "locks/" + name }
func (l layout) probe(token string) string  { return string(l) + "tmp/probe-" + token }
func (l layout) digestOf(key string) (store.Digest, bool) {
	rest, ok := strings.CutPrefix(key, l.blobs())
	if !ok || len(rest) != 3+64 || rest[2] != '/' {
		return "", false
	}
	d, err := store.ParseDigest(rest[3:])
	if err != nil || rest[:2] != string(d[:2]) {
		return "", false
	}
	return d, true
}

// wrap adds the bucket, key and store to err, mapping a missing object to
// store.ErrNotFound.
func (s *Store) wrap(op, key string, err error) error {
	if errors.Is(err, store.ErrNotFound) || isNotFound(err) {
		return fmt.Errorf("%s s3://%s/%s: %w", op, s.opt.Bucket, key, store.ErrNotFound)
	}
	if unavailable(err) {
		return fmt.Errorf("%s s3://%s/%s: %w: %s: %w", op, s.opt.Bucket, key, store.ErrUnavailable, s, err)
	}
	return fmt.Errorf("%s s3://%s/%s (store %s): %w", op, s.opt.Bucket, key, s, err)
}

// unavailable reports errors that say nothing about the request itself:
// the server could not be reached, or kept failing (5xx, throttling) after
// the retries.
func unavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	if code := httpStatus(err); code >= 500 || code == http.StatusTooManyRequests {
		return true
	}
	var ae smithy.APIError
	return !errors.As(err, &ae) && httpStatus(err) == 0
}

func isNotFound(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound", "NoSuchUpload":
			return true
		}
	}
	return httpStatus(err) == http.StatusNotFound
}

// isPrecondition reports a failed If-None-Match / If-Match.
func isPrecondition(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "PreconditionFailed" {
		return true
	}
	return httpStatus(err) == http.StatusPreconditionFailed
}

// isConflict reports a 409 on a conditional write (AWS: concurrent
// conditional requests on one key); retrying resolves it.
func isConflict(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "ConditionalRequestConflict" {
		return true
	}
	return httpStatus(err) == http.StatusConflict
}

func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func randomToken() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// createSpool creates a new local spool file in TempDir.
func (s *Store) createSpool() (*os.File, error) {
	f, err := os.CreateTemp(s.opt.TempDir, spoolPrefix+"*"+spoolSuffix)
	if err != nil {
		return nil, fmt.Errorf("create spool file in %s: %w", s.opt.TempDir, err)
	}
	return f, nil
}

const (
	spoolPrefix = "s3put-"
	spoolSuffix = ".tmp"
)

func isSpoolName(name string) bool {
	return strings.HasPrefix(name, spoolPrefix) && strings.HasSuffix(name, spoolSuffix)
}

// cleanSpool removes local spool files older than age.
func (s *Store) cleanSpool(age time.Duration) (int, error) {
	entries, err := os.ReadDir(s.opt.TempDir)
	if err != nil {
		return 0, fmt.Errorf("clean spool %s: %w", s.opt.TempDir, err)
	}
	n := 0
	cutoff := time.Now().Add(-age)
	for _, e := range entries {
		if !isSpoolName(e.Name()) {
			continue
		}
		fi, err := e.Info()
		if err != nil || fi.ModTime().After(cutoff) {
			continue
		}
		if os.Remove(filepath.Join(s.opt.TempDir, e.Name())) == nil {
			n++
		}
	}
	return n, nil
}

func hasCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}
