package acs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
)

func TestWrongKeyIsAClearSystemicError(t *testing.T) {
	srv := acstest.NewServer(t, acstest.WithAccessKey(testKey))
	wrong := "bm90LXRoZS1yaWdodC1rZXk=" // base64("not-the-right-key")
	c, err := NewClientFromConnectionString("endpoint="+srv.URL()+";accesskey="+wrong, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(context.Background(), tenant, alice)
	var re *ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusUnauthorized {
		t.Fatalf("Get() error = %v, want a 401 *ResponseError", err)
	}
	if !IsSystemic(err) || IsTemporary(err) || IsNotFound(err) {
		t.Errorf("401 classified (systemic %v, temporary %v, notFound %v), want systemic only", IsSystemic(err), IsTemporary(err), IsNotFound(err))
	}
	msg := err.Error()
	for _, want := range []string{"401 Unauthorized", "signature does not match", "check the access key"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Error() = %q, want it to say %q", msg, want)
		}
	}
	if n := srv.Counts()[http.MethodGet]; n != 1 {
		t.Errorf("GET sent %d times, want 1 (a 401 is not retried)", n)
	}
}

func TestKeyRotation(t *testing.T) {
	srv := acstest.NewServer(t)
	old := newTestClient(t, srv, nil)
	srv.SetAccessKey("cm90YXRlZC1rZXk=")
	if _, err := old.Get(context.Background(), tenant, alice); !IsSystemic(err) {
		t.Fatalf("Get() with the old key error = %v, want systemic", err)
	}
	fixed := newTestClient(t, srv, nil) // the connection string now carries the new key
	if _, err := fixed.Get(context.Background(), tenant, alice); !IsNotFound(err) {
		t.Fatalf("Get() with the new key error = %v, want an authenticated not-found", err)
	}
}

func TestSkewedClockIsRefused(t *testing.T) {
	srv := acstest.NewServer(t)
	for _, skew := range []time.Duration{-20 * time.Minute, 20 * time.Minute} {
		c := newTestClient(t, srv, func(o *Options) { o.Now = fixedClock(time.Now().Add(skew)) })
		_, err := c.Get(context.Background(), tenant, alice)
		if !IsSystemic(err) || !strings.Contains(err.Error(), "x-ms-date") {
			t.Errorf("skew %s: Get() error = %v, want a 401 naming x-ms-date", skew, err)
		}
	}
	c := newTestClient(t, srv, func(o *Options) { o.Now = fixedClock(time.Now().Add(-10 * time.Minute)) })
	if _, err := c.Get(context.Background(), tenant, alice); !IsNotFound(err) {
		t.Errorf("skew -10m: Get() error = %v, want accepted (not found)", err)
	}
}

// tamperTransport changes the body after the request was signed, as a faulty proxy would.
type tamperTransport struct{}

func (tamperTransport) Do(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		b, _ := io.ReadAll(r.Body)
		b = bytes.Replace(b, []byte(appA), []byte(appB), 1)
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
	}
	return http.DefaultClient.Do(r)
}

func TestTamperedBodyIsRejected(t *testing.T) {
	srv := acstest.NewServer(t)
	c := newTestClient(t, srv, func(o *Options) { o.Transport = tamperTransport{} })
	_, _, err := c.Put(context.Background(), tenant, Assignment{ObjectID: alice, PrincipalType: PrincipalUser, ClientIDs: []string{appA}})
	if !IsSystemic(err) || !strings.Contains(err.Error(), "x-ms-content-sha256 does not match") {
		t.Fatalf("Put() error = %v, want a 401 about the content hash", err)
	}
	if n := len(srv.Assignments()); n != 0 {
		t.Errorf("the tampered PUT stored %d assignments", n)
	}
}
