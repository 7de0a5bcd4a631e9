package acs

import (
	"net/http"
	"testing"
	"time"
)

// The worker's behaviour contract (worker/errors.go), checked at compile time.
var (
	_ interface {
		NotFound() bool
		Systemic() bool
		Temporary() bool
		RetryAfter() time.Duration
	} = (*ResponseError)(nil)
	_ interface {
		Temporary() bool
		RetryAfter() time.Duration
	} = (*ThrottledError)(nil)
	_ interface{ Temporary() bool } = (*TransportError)(nil)
	_ interface{ Systemic() bool }  = (*CredentialError)(nil)
)

func TestParseErrorBody(t *testing.T) {
	tests := []struct {
		name, body, wantCode, wantMsg string
	}{
		{"service shape", `{"error":{"code":"SubscriptionNotAllowed","message":"Not enabled.","target":"x"}}`, "SubscriptionNotAllowed", "Not enabled."},
		{"inner error ignored", `{"error":{"code":"BadRequest","message":"m","innererror":{"code":"Deep"}}}`, "BadRequest", "m"},
		{"no message", `{"error":{"code":"Throttled"}}`, "Throttled", ""},
		{"other JSON", `{"message":"nope"}`, "", `{"message":"nope"}`},
		{"HTML from a proxy", "<html>\n<body>502 Bad Gateway</body>\n</html>", "", "<html> <body>502 Bad Gateway</body> </html>"},
		{"empty", "", "", ""},
		{"control characters", "line1\r\nline2\x00\x1b[31m", "", "line1 line2 [31m"},
		{"invalid UTF-8", "bad \xff byte", "", "bad \uFFFD byte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, msg := parseErrorBody([]byte(tt.body))
			if code != tt.wantCode || msg != tt.wantMsg {
				t.Errorf("parseErrorBody() = (%q, %q), want (%q, %q)", code, msg, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestParseErrorBodyBoundsMessage(t *testing.T) {
	long := make([]byte, 10_000)
	for i := range long {
		long[i] = 'x'
	}
	_, msg := parseErrorBody(long)
	if len(msg) > maxMessageLen {
		t.Errorf("message is %d bytes, want at most %d", len(msg), maxMessageLen)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 6, 3, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"none", http.Header{}, 0},
		{"seconds", http.Header{"Retry-After": {"7"}}, 7 * time.Second},
		{"date", http.Header{"Retry-After": {"Tue, 03 Jun 2025 10:01:30 GMT"}}, 90 * time.Second},
		{"date in the past", http.Header{"Retry-After": {"Tue, 03 Jun 2025 09:00:00 GMT"}}, 0},
		{"ms wins", http.Header{"Retry-After": {"7"}, "Retry-After-Ms": {"250"}}, 250 * time.Millisecond},
		{"x-ms ms", http.Header{"X-Ms-Retry-After-Ms": {"1500"}}, 1500 * time.Millisecond},
		{"garbage", http.Header{"Retry-After": {"soon"}}, 0},
		{"negative", http.Header{"Retry-After": {"-3"}}, 0},
		{"huge", http.Header{"Retry-After": {"99999999999999"}}, time.Duration(1<<63 - 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryAfter(tt.header, now); got != tt.want {
				t.Errorf("retryAfter() = %s, want %s", got, tt.want)
			}
		})
	}
}
