package sinks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"trove/config"
)

// errExists means an object of that name is already stored: a put with
// If-None-Match: * was refused (412).
var errExists = errors.New("sinks: object already exists")

// objectStore is where a sink writes its files.
type objectStore interface {
	// PutNew stores body under key only if no object has that name
	// (If-None-Match: *); it returns errExists if one has.
	PutNew(ctx context.Context, key string, body []byte, contentType string) error
	// Put stores body under key, replacing any object there.
	Put(ctx context.Context, key string, body []byte, contentType string) error
}

// s3Store is an S3-compatible bucket.
type s3Store struct {
	cl     *minio.Client
	bucket string
}

// newS3Store connects to the sink's bucket with the credentials of the
// environment variables it names.
func newS3Store(c config.Sink, transport http.RoundTripper) (*s3Store, error) {
	u, err := url.Parse(c.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("sink %s: endpoint %q: %w", c.Name, c.Endpoint, err)
	}
	var ak, sk string
	if c.AccessKeyEnv != "" {
		ak, sk = os.Getenv(c.AccessKeyEnv), os.Getenv(c.SecretKeyEnv)
	}
	cl, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(ak, sk, ""),
		Secure:       u.Scheme == "https",
		Region:       c.Region,
		BucketLookup: minio.BucketLookupAuto,
		Transport:    transport,
		// The sink retries with its own back-off, and reports each failure.
		MaxRetries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("sink %s: cannot make an S3 client for %s: %w", c.Name, c.Endpoint, err)
	}
	return &s3Store{cl: cl, bucket: c.Bucket}, nil
}

func (s *s3Store) put(ctx context.Context, key string, body []byte, contentType string, onlyNew bool) error {
	opts := minio.PutObjectOptions{ContentType: contentType, DisableMultipart: true}
	if onlyNew {
		opts.SetMatchETagExcept("*")
	}
	_, err := s.cl.PutObject(ctx, s.bucket, key, bytes.NewReader(body), int64(len(body)), opts)
	if err == nil {
		return nil
	}
	if r := minio.ToErrorResponse(err); onlyNew && (r.StatusCode == http.StatusPreconditionFailed || r.Code == "PreconditionFailed") {
		return errExists
	}
	return fmt.Errorf("cannot put s3://%s/%s: %w", s.bucket, key, err)
}

func (s *s3Store) PutNew(ctx context.Context, key string, body []byte, contentType string) error {
	return s.put(ctx, key, body, contentType, true)
}

func (s *s3Store) Put(ctx context.Context, key string, body []byte, contentType string) error {
	return s.put(ctx, key, body, contentType, false)
}
