package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

type recordingSender struct {
	bodies, ids []string
	failAt      int // 1-based message number that fails; 0 = none
}

func (r *recordingSender) SendMessage(_ context.Context, m *azservicebus.Message, _ *azservicebus.SendMessageOptions) error {
	if r.failAt == len(r.bodies)+1 {
		return errors.New("queue refused")
	}
	r.bodies = append(r.bodies, string(m.Body))
	r.ids = append(r.ids, *m.MessageID)
	return nil
}

func TestEnqueueLinesReplaysDeadLetters(t *testing.T) {
	in := strings.Join([]string{
		`{"command":"reconcile","principal":"adele.vance@contoso.example"}`,
		``,
		`{"line":12,"reason":"malformed","description":"body is not valid JSON","body":"{not json"}`,
		`{"line":11,"reason":"untrusted","description":"x","body":{"value":[{"id":1}]}}`,
		`{"command":"reconcile","principal":"adele.vance@contoso.example"}`,
	}, "\n")
	s := &recordingSender{}
	n, err := enqueueLines(context.Background(), s, strings.NewReader(in))
	if err != nil || n != 4 {
		t.Fatalf("enqueueLines = %d, %v; want 4 messages (blank line skipped)", n, err)
	}
	want := []string{
		`{"command":"reconcile","principal":"adele.vance@contoso.example"}`,
		`{not json`,
		`{"value":[{"id":1}]}`,
		`{"command":"reconcile","principal":"adele.vance@contoso.example"}`,
	}
	for i := range want {
		if s.bodies[i] != want[i] {
			t.Errorf("message %d body = %s, want %s (dead-letter records are unwrapped to the original body)", i+1, s.bodies[i], want[i])
		}
	}
	if s.ids[0] != s.ids[3] || s.ids[0] == s.ids[1] {
		t.Errorf("message ids %v: the same body must get the same id (duplicate detection), different bodies different ids", s.ids)
	}
}

func TestEnqueueLinesStopsAtTheFirstRefusal(t *testing.T) {
	s := &recordingSender{failAt: 2}
	n, err := enqueueLines(context.Background(), s, strings.NewReader("{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n"))
	if err == nil || n != 1 || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("enqueueLines = %d, %v; want 1 sent and an error naming line 2", n, err)
	}
}
