package worker

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
	"strings"
	"sync"
	"testing"
)

// The fixtures in testdata carry this tenant and client state.
var relayTrust = Trust{TenantID: "8f2c1c55-7b7e-4d0a-9a39-3c7f1b2d4e61", ClientState: "s3cr3t-client-state-do-not-log"}

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
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRelay(t *testing.T) {
	t.Parallel()
	good := relayFixture(t, "graph_users_updated.json")
	goodID := sha256.Sum256(good)
	tests := []struct {
		name      string
		method    string
		target    string
		body      []byte
		queueErr  error
		maxBody   int64
		wantCode  int
		wantType  string // Content-Type, when checked
		wantBody  string // response body, when checked
		wantQueue []relayMsg
		wantLog   string // a fragment the log must hold
	}{
		{name: "validation handshake echoes the decoded token", method: "POST",
			target:   "/notify?validationToken=Validation%3A+Testing+client+application+reachability+for+subscription+Request-Id%3A+a1b2",
			wantCode: 200, wantType: "text/plain",
			wantBody: "Validation: Testing client application reachability for subscription Request-Id: a1b2"},
		{name: "good notification is queued then accepted", method: "POST", target: "/notify", body: good,
			wantCode: 202, wantQueue: []relayMsg{{good, hex.EncodeToString(goodID[:])}}},
		{name: "lifecycle notification is queued", method: "POST", target: "/notify",
			body: relayFixture(t, "graph_lifecycle.json"), wantCode: 202, wantQueue: []relayMsg{{relayFixture(t, "graph_lifecycle.json"), ""}}},
		{name: "forged clientState is accepted and dropped", method: "POST", target: "/notify",
			body: relayFixture(t, "forged_clientstate.json"), wantCode: 202, wantLog: "no trusted item"},
		{name: "another tenant is accepted and dropped", method: "POST", target: "/notify",
			body: relayFixture(t, "wrong_tenant.json"), wantCode: 202, wantLog: "no trusted item"},
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
			h := NewRelay(RelayOptions{Trust: relayTrust, Enqueue: q.Enqueue, MaxBody: tt.maxBody,
				Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.target, bytes.NewReader(tt.body)))

			if rec.Code != tt.wantCode {
				t.Errorf("status %d, want %d (body %q)", rec.Code, tt.wantCode, rec.Body.String())
			}
			if tt.wantType != "" && rec.Header().Get("Content-Type") != tt.wantType {
				t.Errorf("Content-Type %q, want %q", rec.Header().Get("Content-Type"), tt.wantType)
			}
			if tt.wantBody != "" && rec.Body.String() != tt.wantBody {
				t.Errorf("body %q, want %q", rec.Body.String(), tt.wantBody)
			}
			if len(q.msgs) != len(tt.wantQueue) {
				t.Fatalf("queued %d messages, want %d", len(q.msgs), len(tt.wantQueue))
			}
			for i, want := range tt.wantQueue {
				if !bytes.Equal(q.msgs[i].body, want.body) {
					t.Errorf("message %d body differs from the post", i)
				}
				if want.id != "" && q.msgs[i].id != want.id {
					t.Errorf("message %d id %q, want %q (sha-256 of the body)", i, q.msgs[i].id, want.id)
				}
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

// Graph retries a post it got no 2xx for; the same body must keep the same message id so the
// queue's duplicate detection drops the copy.
func TestRelayRetriedPostKeepsItsMessageID(t *testing.T) {
	t.Parallel()
	q := &relayQueue{}
	h := NewRelay(RelayOptions{Trust: relayTrust, Enqueue: q.Enqueue, Logger: slog.New(slog.DiscardHandler)})
	for _, name := range []string{"graph_users_updated.json", "graph_users_updated.json", "graph_users_deleted.json"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(relayFixture(t, name))))
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
	h := NewRelay(RelayOptions{Trust: relayTrust, Logger: slog.New(slog.DiscardHandler),
		Enqueue: func(ctx context.Context, body []byte, id string) error {
			answeredEarly = w.written()
			return nil
		}})
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(relayFixture(t, "graph_users_updated.json"))))
	if answeredEarly {
		t.Error("a status was written before Enqueue ran (or Enqueue never ran)")
	}
	if w.Code != http.StatusAccepted {
		t.Errorf("status %d, want 202", w.Code)
	}
}
