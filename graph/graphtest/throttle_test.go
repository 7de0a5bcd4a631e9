package graphtest_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
)

// The 429 answer follows the throttling guidance's sample: error.code TooManyRequests,
// innerError with code and status "429", and a Retry-After that is always positive and
// fractional when the wait is.
func TestThrottlingAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		opts       []graphtest.Option
		retryAfter time.Duration
		want       string
	}{
		{"fraction", nil, 2128 * time.Millisecond, "2.128"},
		{"whole seconds", nil, 10 * time.Second, "10"},
		{"zero is still positive", nil, 0, "0.001"},
		{"whole-second switch rounds up", []graphtest.Option{func(o *graphtest.Options) { o.RetryAfterWholeSeconds = true }}, 2128 * time.Millisecond, "3"},
		{"whole-second switch keeps zero positive", []graphtest.Option{func(o *graphtest.Options) { o.RetryAfterWholeSeconds = true }}, 0, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := sample(t, tt.opts...)
			srv.FailNext(http.StatusTooManyRequests, tt.retryAfter)
			status, h, m := call(t, "GET", srv.URL()+"/v1.0/users/"+adele, "", "client-request-id", "0f5c1b7e-1111-4222-8333-944445555666")
			if status != 429 || h.Get("Retry-After") != tt.want {
				t.Fatalf("%d Retry-After %q, want 429 %q", status, h.Get("Retry-After"), tt.want)
			}
			e := m["error"].(map[string]any)
			inner, _ := e["innerError"].(map[string]any)
			if e["code"] != "TooManyRequests" || e["message"] != "Please retry again later." ||
				inner["code"] != "429" || inner["status"] != "429" || inner["message"] != "Please retry after" ||
				inner["request-id"] != h.Get("request-id") || inner["client-request-id"] != "0f5c1b7e-1111-4222-8333-944445555666" {
				t.Errorf("body %v", m)
			}
		})
	}
}

func TestClientRequestIDIsEchoed(t *testing.T) {
	t.Parallel()
	srv := sample(t)
	const id = "0f5c1b7e-1111-4222-8333-944445555666"
	_, h, _ := call(t, "GET", srv.URL()+"/v1.0/users/"+adele, "", "client-request-id", id)
	if h.Get("client-request-id") != id {
		t.Errorf("client-request-id %q, want %q", h.Get("client-request-id"), id)
	}
	_, h, _ = call(t, "GET", srv.URL()+"/v1.0/users/"+adele, "")
	if h.Get("client-request-id") == "" || h.Get("client-request-id") != h.Get("request-id") {
		t.Errorf("without one sent: client-request-id %q, request-id %q: want the request-id", h.Get("client-request-id"), h.Get("request-id"))
	}
}

func TestTopAbove999IsRejected(t *testing.T) {
	t.Parallel()
	srv := sample(t, func(o *graphtest.Options) { o.MaxPageSize = 5 })
	tests := []struct {
		top    string
		status int
		code   string
		items  int
	}{
		{"999", 200, "", 5}, // accepted, served in pages of MaxPageSize
		{"1000", 400, "Request_UnsupportedQuery", 0},
		{"0", 400, "Request_UnsupportedQuery", 0},
		{"x", 400, "Request_BadRequest", 0},
	}
	for _, tt := range tests {
		status, _, m := call(t, "GET", srv.URL()+"/v1.0/users?$top="+tt.top, "")
		if status != tt.status || (tt.code != "" && errorCode(m) != tt.code) {
			t.Errorf("$top=%s: %d %q, want %d %q", tt.top, status, errorCode(m), tt.status, tt.code)
		}
		if v, _ := m["value"].([]any); tt.status == 200 && len(v) != tt.items {
			t.Errorf("$top=%s: %d items, want %d", tt.top, len(v), tt.items)
		}
	}
}
