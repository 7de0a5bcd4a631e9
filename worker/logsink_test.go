package worker

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
)

// logSink collects output written from many goroutines (a logger's records, a progress
// meter's lines), keeping each Write apart too, and can read back the JSON records among it.
type logSink struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes []string
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes = append(l.writes, string(p))
	return l.b.Write(p)
}

// Writes returns what each Write call wrote, in order.
func (l *logSink) Writes() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.writes)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// auditLines returns the JSON records whose msg is "audit", as written, in order. Every
// line must be JSON.
func (l *logSink) auditLines(t *testing.T) []string {
	t.Helper()
	var out []string
	for line := range strings.Lines(l.String()) {
		var rec struct{ Msg string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec.Msg == "audit" {
			out = append(out, line)
		}
	}
	return out
}

// audits returns the audit records, decoded, in order.
func (l *logSink) audits(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range l.auditLines(t) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("audit record is not JSON: %q", line)
		}
		out = append(out, rec)
	}
	return out
}

// jsonKeys returns the top-level keys of one JSON object in the order written, repeats
// included (a map would hide them).
func jsonKeys(t *testing.T, line string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %q", line)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("reading a key of %q: %v", line, err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("reading the value of %v in %q: %v", tok, line, err)
		}
	}
	return keys
}

// repeatedKeys returns the top-level keys that appear more than once in a JSON record.
func repeatedKeys(t *testing.T, line string) []string {
	t.Helper()
	seen := map[string]int{}
	var out []string
	for _, k := range jsonKeys(t, line) {
		if seen[k]++; seen[k] == 2 {
			out = append(out, k)
		}
	}
	return out
}
