package worker

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// recheckLog records the re-checks a worker schedules.
type recheckLog struct {
	mu   sync.Mutex
	got  []Target
	at   []time.Time
	fail error
}

func (l *recheckLog) recheck(_ context.Context, t Target, gaveUp time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, t)
	l.at = append(l.at, gaveUp)
	return l.fail
}

// A write the ACS client gave up on (a 503 after its retries, a timeout) may still be
// applied after the reconcile's last read: the worker schedules a re-check of the principal
// on the queue. A write the service refused for sure (403, 400) and an operator's command
// schedule nothing.
func TestWorkerSchedulesARecheckAfterAnUnconfirmedWrite(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		body func(oid string) []byte
		fail error
		want int
	}{
		{"a put that got no sure answer", func(oid string) []byte { return rtUserNote(oid) }, errUnavailable(), 1},
		{"a put that ran out of time", func(oid string) []byte { return rtUserNote(oid) }, context.DeadlineExceeded, 1},
		{"a put throttled past the client's patience", func(oid string) []byte { return rtUserNote(oid) }, errThrottled(time.Minute), 1},
		{"a put refused for good", func(oid string) []byte { return rtUserNote(oid) }, errBadRequest(), 0},
		{"a put refused for want of permission", func(oid string) []byte { return rtUserNote(oid) }, errSystemic(), 0},
		{"an operator grant", func(oid string) []byte { return rtCommand("grant", oid) }, errUnavailable(), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := rtTeamsUser(1)
			e := newRTEnv(u)
			e.acs.FailNext("Put", u.ID, tc.fail)
			log := &recheckLog{}
			before := time.Now()
			src := NewMemorySource([][]byte{tc.body(u.ID)}, FileOptions{Backoff: noBackoff})
			runToEnd(t, e.worker(t, src, Options{Recheck: log.recheck, Retries: -1, ProbeBackoff: func(int) time.Duration { return 0 }}))
			if len(log.got) != tc.want {
				t.Fatalf("re-checks = %+v, want %d", log.got, tc.want)
			}
			if tc.want == 0 {
				return
			}
			if got := log.got[0]; got.Principal != u.ID || got.Command != CommandReconcile {
				t.Errorf("re-check target = %+v, want a reconcile of %s", got, u.ID)
			}
			if at := log.at[0]; at.Before(before) || at.After(time.Now()) {
				t.Errorf("gave up at %s, want the moment of the failed write", at)
			}
			if !e.granted(u.ID) {
				t.Errorf("the redelivered message did not converge the user")
			}
		})
	}
}

// A re-check that could not be scheduled fails the message, so that it comes back.
func TestWorkerRecheckFailureAbandonsTheMessage(t *testing.T) {
	t.Parallel()
	u := rtTeamsUser(1)
	e := newRTEnv(u)
	e.acs.FailNext("Put", u.ID, errUnavailable())
	log := &recheckLog{fail: errors.New("queue unavailable")}
	src := NewMemorySource([][]byte{rtUserNote(u.ID)}, FileOptions{Backoff: noBackoff})
	w := e.worker(t, src, Options{Recheck: log.recheck})
	runToEnd(t, w)
	s := w.Stats()
	if s.Messages[OutcomeAbandoned] == 0 || s.Messages[OutcomeCompleted] != 1 {
		t.Errorf("stats = %+v, want the message abandoned once, then completed", s)
	}
}
