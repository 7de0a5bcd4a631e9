package acs

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
)

// No error string and no log record may hold the access key (encoded or decoded), a
// signature or a bearer token, whatever goes wrong.
func TestSecretsNeverLeak(t *testing.T) {
	const (
		key      = "dG9wLXNlY3JldC1hY2Nlc3Mta2V5LTAxMjM0NTY3ODk=" // base64("top-secret-access-key-0123456789")
		rawKey   = "top-secret-access-key-0123456789"
		wrongKey = "YW5vdGhlci1zZWNyZXQta2V5LXdyb25nLWtleQ=="
		token    = "eyJhbGciOiJub25lIn0.secret-token-payload.sig"
	)
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := acstest.NewServer(t, acstest.WithAccessKey(key), acstest.WithBearerToken("the-right-token"))
	opts := func() *Options {
		o := &Options{Logger: logger, MaxThrottleWait: time.Second}
		o.Retry.RetryDelay, o.Retry.MaxRetries = time.Millisecond, 1
		return o
	}
	hmacClient := func(k string) *Client {
		c, err := NewClientFromConnectionString("endpoint="+srv.URL()+"/;accesskey="+k, opts())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	good, wrong := hmacClient(key), hmacClient(wrongKey)
	bearer, err := NewClient(srv.URL(), staticToken(token), opts())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	user := Assignment{ObjectID: alice, PrincipalType: PrincipalUser, ClientIDs: []string{appA}}

	var errs []error
	record := func(err error) {
		if err == nil {
			t.Error("scenario produced no error")
		}
		errs = append(errs, err)
	}
	_, err = wrong.Get(ctx, tenant, alice) // 401
	record(err)
	_, err = bearer.Get(ctx, tenant, alice) // 401 for a token
	record(err)
	_, err = NewClientFromConnectionString("endpoint=http://example.com;accesskey="+key, nil)
	record(err)
	_, err = NewClientFromConnectionString("endpoint=https://example.com;accesskey="+key+"%", nil)
	record(err)
	_, err = NewClientFromConnectionString(key, nil)
	record(err)
	srv.FailNext(http.StatusForbidden, 0)
	_, _, err = good.Put(ctx, tenant, user)
	record(err)
	srv.FailNext(http.StatusInternalServerError, 0)
	srv.FailNext(http.StatusInternalServerError, 0)
	_, _, err = good.Put(ctx, tenant, user)
	record(err)
	srv.FailNext(http.StatusTooManyRequests, time.Hour)
	_, err = good.Delete(ctx, tenant, alice)
	record(err)
	srv.ResetNext()
	srv.ResetNext()
	_, _, err = good.Put(ctx, tenant, user)
	record(err)
	_, _, err = good.Put(ctx, tenant, user) // success, logged too
	if err != nil {
		t.Fatal(err)
	}

	secrets := []string{key, rawKey, wrongKey, token, base64.StdEncoding.EncodeToString([]byte(rawKey))[:16], "Signature=", "HMAC-SHA256", "Bearer "}
	for _, err := range errs {
		if err == nil {
			continue
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("error %q contains secret material %q", err, s)
			}
		}
	}
	if !strings.Contains(logs.String(), `"ms_cv"`) {
		t.Fatalf("the logger captured no try records; log = %s", logs.String())
	}
	for _, s := range secrets {
		if strings.Contains(logs.String(), s) {
			t.Errorf("log output contains secret material %q", s)
		}
	}
}
