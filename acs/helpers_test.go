package acs

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
)

// Ids used across the tests.
const (
	tenant  = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	alice   = "0b9f1b0e-3c2d-4a5e-8f6a-1d2c3b4a5e6f"
	bob     = "5d6e7f80-9a0b-4c1d-8e2f-3a4b5c6d7e8f"
	appA    = "11111111-2222-3333-4444-555555555555"
	appB    = "66666666-7777-8888-9999-aaaaaaaaaaaa"
	testKey = "c2VjcmV0LWtleS1mb3ItdGVzdHM=" // base64("secret-key-for-tests")
)

// newTestClient returns an HMAC client for srv with fast retries; edit adjusts the options.
func newTestClient(t *testing.T, srv *acstest.Server, edit func(*Options)) *Client {
	t.Helper()
	o := &Options{}
	o.Retry.RetryDelay = time.Millisecond
	if edit != nil {
		edit(o)
	}
	c, err := NewClientFromConnectionString(srv.ConnectionString(), o)
	if err != nil {
		t.Fatalf("NewClientFromConnectionString() error = %v", err)
	}
	return c
}

// captured is one request seen by captureTransport, with its body as sent.
type captured struct {
	Method string
	URL    string
	Host   string
	Header http.Header
	Body   []byte
}

// captureTransport records requests and answers each with the next status in statuses
// (the last one repeats), with an assignment body for 200/201.
type captureTransport struct {
	mu       sync.Mutex
	statuses []int
	seen     []captured
}

func (c *captureTransport) Do(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
	}
	c.mu.Lock()
	c.seen = append(c.seen, captured{Method: r.Method, URL: r.URL.String(), Host: r.URL.Host, Header: r.Header.Clone(), Body: body})
	status := http.StatusOK
	if len(c.statuses) > 0 {
		status = c.statuses[0]
		if len(c.statuses) > 1 {
			c.statuses = c.statuses[1:]
		}
	}
	c.mu.Unlock()
	out := ""
	if status == http.StatusOK || status == http.StatusCreated {
		out = `{"objectId":"` + alice + `","tenantId":"` + tenant + `","principalType":"user","clientIds":["` + appA + `"]}`
	}
	return &http.Response{
		StatusCode: status,
		Header:     http.Header{"Ms-Cv": {"cv-test.0"}},
		Body:       io.NopCloser(bytes.NewReader([]byte(out))),
		Request:    r,
	}, nil
}

func (c *captureTransport) requests() []captured {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]captured(nil), c.seen...)
}

// fixedClock returns a clock stuck at t.
func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// steppingClock returns a clock that advances by step on every read.
func steppingClock(start time.Time, step time.Duration) func() time.Time {
	var mu sync.Mutex
	next := start
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now := next
		next = next.Add(step)
		return now
	}
}
