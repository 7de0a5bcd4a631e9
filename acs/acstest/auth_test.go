package acstest

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestAuthentication(t *testing.T) {
	const key = "c2VjcmV0LWtleS1mb3ItdGVzdHM="
	now := time.Date(2025, 6, 3, 10, 0, 0, 0, time.UTC)
	srv := NewServer(t, WithAccessKey(key), WithClock(func() time.Time { return now }), WithBearerToken("tok-123"))
	url := assignmentURL(srv, alice, "2025-06-30")
	tests := []struct {
		name    string
		req     func() *http.Request
		status  int
		message string // part of the 401 message
	}{
		{"signed", func() *http.Request { return newSigned(t, key, "GET", url, "", now) }, 404, ""},
		{"signed 14 minutes early", func() *http.Request { return newSigned(t, key, "GET", url, "", now.Add(-14*time.Minute)) }, 404, ""},
		{"no Authorization", func() *http.Request { r, _ := http.NewRequest("GET", url, nil); return r }, 401, "Authorization header is missing"},
		{"wrong key", func() *http.Request { return newSigned(t, "b3RoZXIta2V5", "GET", url, "", now) }, 401, "signature does not match"},
		{"date too old", func() *http.Request { return newSigned(t, key, "GET", url, "", now.Add(-16*time.Minute)) }, 401, "x-ms-date"},
		{"date too new", func() *http.Request { return newSigned(t, key, "GET", url, "", now.Add(16*time.Minute)) }, 401, "x-ms-date"},
		{"missing x-ms-date", func() *http.Request {
			r := newSigned(t, key, "GET", url, "", now)
			r.Header.Del("x-ms-date")
			return r
		}, 401, "x-ms-date header is missing"},
		{"missing content hash", func() *http.Request {
			r := newSigned(t, key, "GET", url, "", now)
			r.Header.Del("x-ms-content-sha256")
			return r
		}, 401, "x-ms-content-sha256 header is missing"},
		{"tampered body", func() *http.Request {
			r := newSigned(t, key, "PUT", url, `{"principalType":"teamsResourceAccount"}`, now)
			body := `{"principalType":"user","clientIds":["` + appA + `"]}`
			r.Body, r.ContentLength = ioNop(body), int64(len(body))
			return r
		}, 401, "x-ms-content-sha256 does not match"},
		{"tampered query", func() *http.Request {
			r := newSigned(t, key, "GET", url, "", now)
			r.URL.RawQuery = "api-version=2025-03-02-preview"
			return r
		}, 401, "signature does not match"},
		{"verb changed", func() *http.Request {
			r := newSigned(t, key, "GET", url, "", now)
			r.Method = "DELETE"
			return r
		}, 401, "signature does not match"},
		{"other signed headers", func() *http.Request {
			r := newSigned(t, key, "GET", url, "", now)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "x-ms-date;host", "date;host", 1))
			return r
		}, 401, "SignedHeaders"},
		{"bearer", func() *http.Request {
			r, _ := http.NewRequest("GET", url, nil)
			r.Header.Set("Authorization", "Bearer tok-123")
			return r
		}, 404, ""},
		{"wrong bearer", func() *http.Request {
			r, _ := http.NewRequest("GET", url, nil)
			r.Header.Set("Authorization", "Bearer tok-124")
			return r
		}, 401, "bearer token is not valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := send(t, tt.req())
			if a.status != tt.status {
				t.Fatalf("status = %d (%s), want %d", a.status, a.body, tt.status)
			}
			if a.header.Get("MS-CV") == "" {
				t.Error("no ms-cv header")
			}
			code, msg := errorOf(t, a)
			if tt.status == 401 && (code != "Denied" || !strings.Contains(msg, tt.message)) {
				t.Errorf("error = %s: %q, want Denied saying %q", code, msg, tt.message)
			}
			if strings.Contains(msg, key) || strings.Contains(msg, "tok-12") {
				t.Errorf("message %q repeats a secret", msg)
			}
		})
	}
}

func TestBearerRefusedWhenNotConfigured(t *testing.T) {
	srv := NewServer(t)
	r, _ := http.NewRequest("GET", assignmentURL(srv, alice, "2025-06-30"), nil)
	r.Header.Set("Authorization", "Bearer anything")
	if a := send(t, r); a.status != http.StatusUnauthorized {
		t.Errorf("status = %d, want 401", a.status)
	}
}

func TestKeyRotation(t *testing.T) {
	srv := NewServer(t)
	old := srv.AccessKey()
	srv.SetAccessKey("bmV3LWtleQ==")
	if got := srv.ConnectionString(); got != "endpoint="+srv.URL()+"/;accesskey=bmV3LWtleQ==" {
		t.Errorf("ConnectionString() = %q after rotation", got)
	}
	url := assignmentURL(srv, alice, "2025-06-30")
	if a := send(t, newSigned(t, old, "GET", url, "", time.Now())); a.status != http.StatusUnauthorized {
		t.Errorf("old key: status = %d, want 401", a.status)
	}
	if a := send(t, newSigned(t, "bmV3LWtleQ==", "GET", url, "", time.Now())); a.status != http.StatusNotFound {
		t.Errorf("new key: status = %d, want 404", a.status)
	}
}
