package worker_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	clk "github.com/tpe-provisioner/tpe-provisioner/internal/clock"
	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// recheckLog records the re-checks a worker schedules.
type recheckLog struct {
	mu   sync.Mutex
	got  []worker.Target
	at   []time.Time
	fail error
}

func (l *recheckLog) recheck(_ context.Context, t worker.Target, gaveUp time.Time) error {
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
		{"a put that got no sure answer", func(oid string) []byte { return wt.UserNote(oid) }, wt.ErrUnavailable(), 1},
		{"a put that ran out of time", func(oid string) []byte { return wt.UserNote(oid) }, context.DeadlineExceeded, 1},
		{"a put throttled past the client's patience", func(oid string) []byte { return wt.UserNote(oid) }, wt.ErrThrottled(time.Minute), 1},
		{"a put refused for good", func(oid string) []byte { return wt.UserNote(oid) }, wt.ErrBadRequest(), 0},
		{"a put refused for want of permission", func(oid string) []byte { return wt.UserNote(oid) }, wt.ErrSystemic(), 0},
		{"an operator grant", func(oid string) []byte { return worker.EncodeCommand(worker.CommandGrant, oid, "") }, wt.ErrUnavailable(), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := wt.TeamsUser(1)
			e := wt.NewEnv(u)
			e.ACS.FailNext("Put", u.ID, tc.fail)
			log := &recheckLog{}
			before := time.Now()
			src := worker.NewMemorySource([][]byte{tc.body(u.ID)}, worker.FileOptions{Backoff: wt.NoBackoff})
			wt.RunToEnd(t, e.Worker(t, src, worker.Options{Recheck: log.recheck, Retries: -1, ProbeBackoff: func(int) time.Duration { return 0 }}))
			if len(log.got) != tc.want {
				t.Fatalf("re-checks = %+v, want %d", log.got, tc.want)
			}
			if tc.want == 0 {
				return
			}
			if got := log.got[0]; got.Principal != u.ID || got.Command != worker.CommandReconcile {
				t.Errorf("re-check target = %+v, want a reconcile of %s", got, u.ID)
			}
			if at := log.at[0]; at.Before(before) || at.After(time.Now()) {
				t.Errorf("gave up at %s, want the moment of the failed write", at)
			}
			if !e.Granted(u.ID) {
				t.Errorf("the redelivered message did not converge the user")
			}
		})
	}
}

// A re-check that could not be scheduled fails the message, so that it comes back.
func TestWorkerRecheckFailureAbandonsTheMessage(t *testing.T) {
	t.Parallel()
	u := wt.TeamsUser(1)
	e := wt.NewEnv(u)
	e.ACS.FailNext("Put", u.ID, wt.ErrUnavailable())
	log := &recheckLog{fail: errors.New("queue unavailable")}
	src := worker.NewMemorySource([][]byte{wt.UserNote(u.ID)}, worker.FileOptions{Backoff: wt.NoBackoff})
	w := e.Worker(t, src, worker.Options{Recheck: log.recheck, Clock: clk.NewInstant()})
	wt.RunToEnd(t, w)
	s := w.Stats()
	if s.Messages[worker.OutcomeAbandoned] == 0 || s.Messages[worker.OutcomeCompleted] != 1 {
		t.Errorf("stats = %+v, want the message abandoned once, then completed", s)
	}
}
