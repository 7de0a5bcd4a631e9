package relay

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	clk "github.com/tpe-provisioner/tpe-provisioner/internal/clock"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// The fixtures in testdata carry this tenant and client state.
var relayTrust = worker.Trust{TenantID: "8f2c1c55-7b7e-4d0a-9a39-3c7f1b2d4e61", ClientState: "s3cr3t-client-state-do-not-log"}

type relayQueue struct {
	mu   sync.Mutex
	msgs []relayMsg
	err  error
}

type relayMsg struct {
	body []byte
	id   string
}

func (q *relayQueue) Enqueue(ctx context.Context, body []byte, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return q.err
	}
	q.msgs = append(q.msgs, relayMsg{bytes.Clone(body), id})
	return nil
}

func relayFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "worker", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// post is a notification post as Graph sends it.
func post(target string, body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json; charset=utf-8")
	return r
}

func TestRelay(t *testing.T) {
	t.Parallel()
	good := relayFixture(t, "graph_users_updated.json")
	mixed := relayFixture(t, "mixed_collection.json")
	tests := []struct {
		name        string
		method      string
		target      string
		body        []byte
		contentType string // "" = application/json
		queueErr    error
		maxBody     int64
		wantCode    int
		wantType    string // Content-Type, when checked
		wantBody    string // response body, when checked
		wantQueued  int    // messages queued
		wantLog     string // a fragment the log must hold
	}{
		{name: "validation handshake echoes the decoded token", method: "POST",
			target:   "/notify?validationToken=Validation%3A+Testing+client+application+reachability+for+subscription+Request-Id%3A+a1b2",
			wantCode: 200, wantType: "text/plain; charset=utf-8",
			wantBody: "Validation: Testing client application reachability for subscription Request-Id: a1b2"},
		{name: "validation token over the bound is refused", method: "POST",
			target: "/notify?validationToken=" + strings.Repeat("a", MaxValidationTokenLength+1), wantCode: 400},
		{name: "validation token with markup-breaking controls is refused", method: "POST",
			target: "/notify?validationToken=ok%0d%0aSet-Cookie:+x", wantCode: 400},
		{name: "two validation tokens are refused", method: "POST",
			target: "/notify?validationToken=a&validationToken=b", wantCode: 400},
		{name: "validation request with a body is refused", method: "POST",
			target: "/notify?validationToken=abc", body: good, wantCode: 400},
		{name: "good notification is queued then accepted", method: "POST", target: "/notify", body: good,
			wantCode: 202, wantQueued: 1},
		{name: "lifecycle notification is queued", method: "POST", target: "/notify",
			body: relayFixture(t, "graph_lifecycle.json"), wantCode: 202, wantQueued: 1},
		{name: "forged clientState is refused, nothing queued", method: "POST", target: "/notify",
			body: relayFixture(t, "forged_clientstate.json"), wantCode: 400, wantLog: "clientState and tenant"},
		{name: "another tenant is refused, nothing queued", method: "POST", target: "/notify",
			body: relayFixture(t, "wrong_tenant.json"), wantCode: 400},
		{name: "a command is refused, nothing queued", method: "POST", target: "/notify",
			body: []byte(`{"command":"grant","principal":"mallory@contoso.com"}`), wantCode: 400},
		{name: "a revoke command by object id is refused", method: "POST", target: "/notify",
			body: relayFixture(t, "command_revoke.json"), wantCode: 400},
		{name: "a CloudEvent is refused", method: "POST", target: "/notify",
			body: relayFixture(t, "eg_user_deleted.json"), wantCode: 400},
		{name: "a CloudEvent array is refused", method: "POST", target: "/notify",
			body: relayFixture(t, "eg_mixed_array.json"), wantCode: 400},
		{name: "an empty collection is refused", method: "POST", target: "/notify", body: []byte(`{"value":[]}`), wantCode: 400},
		{name: "a mixed collection is queued", method: "POST", target: "/notify", body: mixed, wantCode: 202, wantQueued: 1},
		{name: "text/plain is unsupported", method: "POST", target: "/notify", body: good, contentType: "text/plain", wantCode: 415},
		{name: "no content type is unsupported", method: "POST", target: "/notify", body: good, contentType: "-", wantCode: 415},
		{name: "oversized body is refused", method: "POST", target: "/notify", body: good, maxBody: int64(len(good) - 1),
			wantCode: 413},
		{name: "queue failure makes Graph retry", method: "POST", target: "/notify", body: good,
			queueErr: errors.New("servicebus: refused body with clientState s3cr3t-client-state-do-not-log"),
			wantCode: 503, wantLog: "clientState [redacted]"},
		{name: "not JSON is a bad request", method: "POST", target: "/notify", body: []byte("hello"), wantCode: 400},
		{name: "GET is not allowed", method: "GET", target: "/notify?validationToken=abc", wantCode: 405},
		{name: "PUT is not allowed", method: "PUT", target: "/notify", body: good, wantCode: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q := &relayQueue{err: tt.queueErr}
			var logs bytes.Buffer
			h := New(Options{Trust: relayTrust, Enqueue: q.Enqueue, MaxBody: tt.maxBody,
				Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(tt.method, tt.target, bytes.NewReader(tt.body))
			switch tt.contentType {
			case "":
				req.Header.Set("Content-Type", "application/json")
			case "-":
			default:
				req.Header.Set("Content-Type", tt.contentType)
			}
			h.ServeHTTP(rec, req)

			if rec.Code != tt.wantCode {
				t.Errorf("status %d, want %d (body %q)", rec.Code, tt.wantCode, rec.Body.String())
			}
			if tt.wantType != "" && rec.Header().Get("Content-Type") != tt.wantType {
				t.Errorf("Content-Type %q, want %q", rec.Header().Get("Content-Type"), tt.wantType)
			}
			if tt.wantBody != "" && rec.Body.String() != tt.wantBody {
				t.Errorf("body %q, want %q", rec.Body.String(), tt.wantBody)
			}
			if rec.Code == 503 && rec.Header().Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			if len(q.msgs) != tt.wantQueued {
				t.Fatalf("queued %d messages, want %d", len(q.msgs), tt.wantQueued)
			}
			for _, m := range q.msgs {
				checkForwarded(t, tt.body, m)
			}
			if !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log lacks %q:\n%s", tt.wantLog, logs.String())
			}
			if strings.Contains(logs.String(), relayTrust.ClientState) || strings.Contains(logs.String(), "guessed-client-state") {
				t.Errorf("a client state reached the log:\n%s", logs.String())
			}
		})
	}
}

// checkForwarded checks a queued message against the post it came from: its id is the
// sha-256 of its body, and it decodes to exactly the trusted part of the post.
func checkForwarded(t *testing.T, posted []byte, m relayMsg) {
	t.Helper()
	if sum := sha256.Sum256(m.body); m.id != hex.EncodeToString(sum[:]) {
		t.Errorf("message id %q is not the sha-256 of its body", m.id)
	}
	want, err := worker.Decode(posted, nil, relayTrust)
	if err != nil {
		t.Fatal(err)
	}
	got, err := worker.Decode(m.body, nil, relayTrust)
	if err != nil {
		t.Fatalf("queued body does not decode: %v", err)
	}
	// Trusted items the worker will refuse for another reason are forwarded, so they are
	// dead-lettered where an operator sees them; untrusted ones, and items too malformed
	// to be checked, are not.
	var wantRejected []string
	for _, r := range want.Rejected {
		if r.Reason != worker.ReasonUntrusted && r.Reason != worker.ReasonMalformed {
			wantRejected = append(wantRejected, r.Reason)
		}
	}
	if g := rejectedReasons(got); !reflect.DeepEqual(g, wantRejected) && len(g)+len(wantRejected) > 0 {
		t.Errorf("queued body's rejected items %v, want %v (untrusted ones cut out)", g, wantRejected)
	}
	if !reflect.DeepEqual(got.Principals, want.Principals) || !reflect.DeepEqual(got.Groups, want.Groups) ||
		!reflect.DeepEqual(got.Lifecycle, want.Lifecycle) {
		t.Errorf("queued body decodes to\n %+v\nwant the trusted part of the post\n %+v", got, want)
	}
}

// Items that fail the trust check are cut out before the message is queued: a forged item
// riding with a genuine one never reaches the queue.
func TestRelayForwardsOnlyTrustedItems(t *testing.T) {
	t.Parallel()
	q := &relayQueue{}
	h := New(Options{Trust: relayTrust, Enqueue: q.Enqueue, Logger: slog.New(slog.DiscardHandler)})
	const victim = "0e5d7b6a-1111-4222-8333-944455556666"
	body := []byte(`{"value":[` +
		`{"subscriptionId":"s","changeType":"updated","resource":"Users/3f5d1c2e-9b8a-4e7f-8d6c-1a2b3c4d5e6f","clientState":"s3cr3t-client-state-do-not-log","tenantId":"8f2c1c55-7b7e-4d0a-9a39-3c7f1b2d4e61"},` +
		`{"subscriptionId":"s","changeType":"deleted","resource":"Users/` + victim + `","clientState":"guess","tenantId":"8f2c1c55-7b7e-4d0a-9a39-3c7f1b2d4e61"},` +
		`{"subscriptionId":"s","changeType":"deleted","resource":"Users/` + victim + `","clientState":"s3cr3t-client-state-do-not-log"}` +
		`],"command":"revoke","principal":"` + victim + `"}`)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, post("/", body))
	if rec.Code != http.StatusAccepted || len(q.msgs) != 1 {
		t.Fatalf("status %d, %d queued; want 202 and 1", rec.Code, len(q.msgs))
	}
	if bytes.Contains(q.msgs[0].body, []byte(victim)) || bytes.Contains(q.msgs[0].body, []byte("command")) {
		t.Errorf("the queued body carries an untrusted item or a command:\n%s", q.msgs[0].body)
	}
}

// Graph retries a post it got no 2xx for; the same body must keep the same message id so the
// queue's duplicate detection drops the copy.
func TestRelayRetriedPostKeepsItsMessageID(t *testing.T) {
	t.Parallel()
	q := &relayQueue{}
	h := New(Options{Trust: relayTrust, Enqueue: q.Enqueue, Logger: slog.New(slog.DiscardHandler)})
	for _, name := range []string{"graph_users_updated.json", "graph_users_updated.json", "graph_users_deleted.json"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, post("/", relayFixture(t, name)))
		if rec.Code != http.StatusAccepted {
			t.Fatalf("%s: status %d, want 202", name, rec.Code)
		}
	}
	if q.msgs[0].id != q.msgs[1].id || q.msgs[0].id == q.msgs[2].id {
		t.Errorf("message ids %q %q %q: want equal for the same body, different for another", q.msgs[0].id, q.msgs[1].id, q.msgs[2].id)
	}
}

// relayWriter records, safely across goroutines, whether a status has been written.
type relayWriter struct {
	*httptest.ResponseRecorder
	mu    sync.Mutex
	wrote bool
}

func (w *relayWriter) WriteHeader(code int) {
	w.mu.Lock()
	w.wrote = true
	w.mu.Unlock()
	w.ResponseRecorder.WriteHeader(code)
}

func (w *relayWriter) written() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.wrote
}

// Accepted means stored: nothing is answered while Enqueue runs.
func TestRelayAnswersOnlyAfterEnqueueReturned(t *testing.T) {
	t.Parallel()
	w := &relayWriter{ResponseRecorder: httptest.NewRecorder()}
	answeredEarly := true
	h := New(Options{Trust: relayTrust, Logger: slog.New(slog.DiscardHandler),
		Enqueue: func(ctx context.Context, body []byte, id string) error {
			answeredEarly = w.written()
			return nil
		}})
	h.ServeHTTP(w, post("/", relayFixture(t, "graph_users_updated.json")))
	if answeredEarly {
		t.Error("a status was written before Enqueue ran (or Enqueue never ran)")
	}
	if w.Code != http.StatusAccepted {
		t.Errorf("status %d, want 202", w.Code)
	}
}

// A queue that does not answer must not hold Graph past its 3 s window: the post is
// answered 503 with Retry-After within ResponseWindow (so Graph delivers it again), and
// never 202 for a message that was not stored.
func TestRelayAnswersWithinTheWindowWhenTheQueueStalls(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	h := New(Options{Trust: relayTrust, Logger: slog.New(slog.DiscardHandler), ResponseWindow: 200 * time.Millisecond,
		Enqueue: func(ctx context.Context, body []byte, id string) error {
			<-release // a queue that ignores its context
			return nil
		}})
	rec := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(rec, post("/", relayFixture(t, "graph_users_updated.json")))
	if took := time.Since(start); took > time.Second {
		t.Errorf("answered after %s, want within the 200ms window", took)
	}
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("status %d Retry-After %q, want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
}

// Posts beyond MaxConcurrent are answered 503 at once; a post whose enqueue outlived its
// window keeps its slot until the enqueue returns.
func TestRelayBoundsConcurrentPosts(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	q := &relayQueue{}
	h := New(Options{Trust: relayTrust, Logger: slog.New(slog.DiscardHandler), MaxConcurrent: 2,
		ResponseWindow: 50 * time.Millisecond,
		Enqueue: func(ctx context.Context, body []byte, id string) error {
			entered <- struct{}{}
			<-release
			return q.Enqueue(ctx, body, id)
		}})
	body := relayFixture(t, "graph_users_updated.json")
	for range 2 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, post("/", body))
		if rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("stalled post: status %d, want 503", rec.Code)
		}
	}
	<-entered
	<-entered
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, post("/", body))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("third post while two enqueues hang: status %d, want 503 with Retry-After", rec.Code)
	}
	close(release)
	clk.WaitUntil(t, "the stalled enqueues to finish", func() bool { q.mu.Lock(); defer q.mu.Unlock(); return len(q.msgs) == 2 })
	clk.WaitUntil(t, "a slot to free", func() bool {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, post("/", body))
		return rec.Code == http.StatusAccepted
	})
}

// Beyond Rate (with Burst) posts are answered 429 with Retry-After; the bucket refills.
func TestRelayRateLimits(t *testing.T) {
	t.Parallel()
	clock := clk.NewFake()
	q := &relayQueue{}
	h := New(Options{Trust: relayTrust, Logger: slog.New(slog.DiscardHandler), Rate: 2, Burst: 3, Clock: clock,
		Enqueue: q.Enqueue})
	body := relayFixture(t, "graph_users_updated.json")
	var codes []int
	for range 5 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, post("/", body))
		codes = append(codes, rec.Code)
		if rec.Code == http.StatusTooManyRequests && rec.Header().Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if want := []int{202, 202, 202, 429, 429}; !reflect.DeepEqual(codes, want) {
		t.Errorf("statuses %v, want %v", codes, want)
	}
	clock.Advance(time.Second) // two more tokens
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, post("/", body))
	if rec.Code != http.StatusAccepted {
		t.Errorf("after a second: status %d, want 202", rec.Code)
	}
}

// rejectedReasons lists the reasons of d's rejected items, in order.
func rejectedReasons(d worker.Decoded) []string {
	var out []string
	for _, r := range d.Rejected {
		out = append(out, r.Reason)
	}
	return out
}

// A relay given no Logger logs nothing, like every other constructor of the service; it does
// not write to slog.Default. Not parallel: it swaps the default logger.
func TestRelayWithoutLoggerDiscards(t *testing.T) {
	var def bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&def, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(prev) })
	h := New(Options{Trust: relayTrust, Enqueue: (&relayQueue{}).Enqueue})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, post("/", []byte(`{"value":[{"subscriptionId":"s","changeType":"updated","resource":"Users/x","clientState":"guess"}]}`)))
	if def.Len() != 0 {
		t.Errorf("a relay without a Logger wrote to slog.Default (status %d):\n%s", rec.Code, def.String())
	}
}
