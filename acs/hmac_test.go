package acs

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

// The published vector of the ACS HMAC scheme (Azure SDK for JS tests).
func TestSignPublishedVector(t *testing.T) {
	date, _ := http.ParseTime("Wed, 13 Apr 2022 18:09:12 GMT")
	key, _ := base64.StdEncoding.DecodeString("pw==")
	tr := &captureTransport{}
	pl := runtime.NewPipeline("test", "v0", runtime.PipelineOptions{
		PerRetry: []policy.Policy{newHMACPolicy(key, fixedClock(date))},
	}, &policy.ClientOptions{Transport: tr})
	req, err := runtime.NewRequest(context.Background(), http.MethodGet, "https://example.com/testPath?testQuery=test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pl.Do(req); err != nil {
		t.Fatal(err)
	}
	h := tr.requests()[0].Header
	want := map[string]string{
		"x-ms-date":           "Wed, 13 Apr 2022 18:09:12 GMT",
		"x-ms-content-sha256": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
		"Authorization":       "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=DGdgwggJWnQyc6EHjR/Vbqg1ES64KpD6U2XwTDDj3tU=",
	}
	for name, w := range want {
		if got := h.Get(name); got != w {
			t.Errorf("%s = %q, want %q", name, got, w)
		}
	}
}

// Vectors for our own path, computed independently (python hmac and openssl dgst) with key
// base64("secret-key-for-tests") at Tue, 03 Jun 2025 10:00:00 GMT, and pinned here.
func TestClientSignsAssignmentCalls(t *testing.T) {
	const emptyHash = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
	tests := []struct {
		name     string
		endpoint string
		call     func(*Client) error
		status   int
		wantHost string
		wantBody string
		wantHash string
		wantSig  string
	}{
		{
			name: "GET", endpoint: "https://contoso.communication.azure.com/", status: 200,
			call:     func(c *Client) error { _, err := c.Get(context.Background(), tenant, alice); return err },
			wantHost: "contoso.communication.azure.com", wantHash: emptyHash,
			wantSig: "TKw3fOI4fSAxwoMQ6RqCTwWttr67BPr4TdnU/acm7SA=",
		},
		{
			name: "PUT user", endpoint: "https://contoso.communication.azure.com", status: 201,
			call: func(c *Client) error {
				_, _, err := c.Put(context.Background(), tenant, Assignment{ObjectID: alice, PrincipalType: PrincipalUser, ClientIDs: []string{appA}})
				return err
			},
			wantHost: "contoso.communication.azure.com",
			wantBody: `{"principalType":"user","clientIds":["11111111-2222-3333-4444-555555555555"]}`,
			wantHash: "yO5ThrAq794s4GBfNspbbyRg9LRodXuvl/uD6qTvdrg=",
			wantSig:  "8RHJU498g0uIVZL1rnexpLPkN5932TgcdihnbzX2dbE=",
		},
		{
			name: "DELETE with a port in the host", endpoint: "http://127.0.0.1:8443/", status: 204,
			call:     func(c *Client) error { _, err := c.Delete(context.Background(), tenant, alice); return err },
			wantHost: "127.0.0.1:8443", wantHash: emptyHash,
			wantSig: "WvUnN2BClGu6cKEJlfrqTnf7Tkd4HWcqQsX7tpwmsps=",
		},
	}
	date := time.Date(2025, 6, 3, 10, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &captureTransport{statuses: []int{tt.status}}
			o := &Options{Now: fixedClock(date.In(time.FixedZone("CEST", 2*3600)))} // signer must use UTC
			o.Transport = tr
			c, err := NewClientFromConnectionString("endpoint="+tt.endpoint+";accesskey="+testKey, o)
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.call(c); err != nil {
				t.Fatalf("call error = %v", err)
			}
			got := tr.requests()[0]
			wantPath := "/access/teamsExtension/tenants/" + tenant + "/assignments/" + alice + "?api-version=2025-06-30"
			if got.Host != tt.wantHost || !strings.HasSuffix(got.URL, "://"+tt.wantHost+wantPath) {
				t.Errorf("sent to %s (host %s), want %s on host %s", got.URL, got.Host, wantPath, tt.wantHost)
			}
			if string(got.Body) != tt.wantBody {
				t.Errorf("body = %s, want %s", got.Body, tt.wantBody)
			}
			if h := got.Header.Get("x-ms-date"); h != "Tue, 03 Jun 2025 10:00:00 GMT" {
				t.Errorf("x-ms-date = %q", h)
			}
			if h := got.Header.Get("x-ms-content-sha256"); h != tt.wantHash {
				t.Errorf("x-ms-content-sha256 = %q, want %q", h, tt.wantHash)
			}
			wantAuth := "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=" + tt.wantSig
			if h := got.Header.Get("Authorization"); h != wantAuth {
				t.Errorf("Authorization = %q, want %q", h, wantAuth)
			}
		})
	}
}

func TestStringToSign(t *testing.T) {
	got := stringToSign("put", "/p?q=1", "D", "h:1", "H")
	if want := "PUT\n/p?q=1\nD;h:1;H"; got != want {
		t.Errorf("stringToSign() = %q, want %q", got, want)
	}
}
