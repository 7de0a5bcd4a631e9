package acs

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Header names of the ACS HMAC scheme.
const (
	headerDate        = "x-ms-date"
	headerContentHash = "x-ms-content-sha256"
	headerAuth        = "Authorization"
)

// hmacPolicy signs every try of a request with the resource's access key. It is a per-retry
// policy, so a retried request carries a fresh x-ms-date and a signature over the bytes of
// that try.
type hmacPolicy struct {
	key []byte
	now func() time.Time
}

func newHMACPolicy(key []byte, now func() time.Time) *hmacPolicy {
	return &hmacPolicy{key: key, now: now}
}

// Do implements policy.Policy.
func (p *hmacPolicy) Do(req *policy.Request) (*http.Response, error) {
	raw := req.Raw()
	var body []byte
	if b := req.Body(); b != nil {
		var err error
		if body, err = io.ReadAll(b); err != nil {
			return nil, fmt.Errorf("acs: read request body to sign: %w", err)
		}
		if err := req.RewindBody(); err != nil {
			return nil, fmt.Errorf("acs: rewind request body after signing: %w", err)
		}
	}
	date := p.now().UTC().Format(http.TimeFormat)
	hash := contentHash(body)
	sig := signature(p.key, stringToSign(raw.Method, pathAndQuery(raw), date, raw.URL.Host, hash))
	raw.Header.Set(headerDate, date)
	raw.Header.Set(headerContentHash, hash)
	raw.Header.Set(headerAuth, authorization(sig))
	return req.Next()
}

// pathAndQuery is the request target as written on the wire.
func pathAndQuery(r *http.Request) string {
	pq := r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		pq += "?" + r.URL.RawQuery
	}
	return pq
}

// stringToSign builds VERB\npathAndQuery\ndate;host;contentHash.
func stringToSign(method, pathAndQuery, date, host, contentHash string) string {
	return strings.ToUpper(method) + "\n" + pathAndQuery + "\n" + date + ";" + host + ";" + contentHash
}

// contentHash is base64(sha256(body)).
func contentHash(body []byte) string {
	sum := sha256.Sum256(body)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// signature is base64(HMAC-SHA256(key, s)).
func signature(key []byte, s string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func authorization(sig string) string {
	return "HMAC-SHA256 SignedHeaders=" + headerDate + ";host;" + headerContentHash + "&Signature=" + sig
}
