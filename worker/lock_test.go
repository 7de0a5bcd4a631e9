package worker_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	clk "github.com/tpe-provisioner/tpe-provisioner/internal/clock"
	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// The lock is renewed on the worker's clock at half its remaining time: a fake clock moved
// by the test stands in for minutes of a slow reconcile.
func TestWorkerRenewsTheLockOfASlowReconcile(t *testing.T) {
	t.Parallel()
	const lock = 100 * time.Millisecond
	clock := clk.NewFake()
	u := wt.TeamsUser(1)
	b := wt.NewBroker(lock)
	b.Clock = clock
	b.Send("m1", wt.UserNote(u.ID), nil)
	e := wt.NewEnv(u)
	g := e.Gated()
	w := e.Worker(t, b.Source(), worker.Options{Clock: clock})
	stop := wt.RunInBackground(t, w)
	defer stop()
	release := sync.OnceFunc(func() { close(g.Gate) })
	defer release() // before stop: the drain waits on the fake clock
	<-g.Entered
	// Hold the reconcile for several lock durations; the renewals keep the lock.
	for i := 1; i <= 4; i++ {
		clk.WaitUntil(t, "the renewer waits for half the lock", func() bool { return clock.Waiting(lock / 2) })
		clock.Advance(lock / 2)
		clk.WaitUntil(t, fmt.Sprintf("renewal %d", i), func() bool { return b.Renewals("m1") == i })
	}
	release()
	ok := b.WaitFor(5*time.Second, func() bool { return len(b.Completed()) == 1 })
	if !ok || !e.Granted(u.ID) {
		t.Fatalf("completed %v, granted %v; logs:\n%s", ok, e.Granted(u.ID), e.Logs)
	}
	if strings.Contains(e.Logs.String(), "lock lost") || strings.Contains(e.Logs.String(), "expired") {
		t.Errorf("the lock was lost despite renewals:\n%s", e.Logs)
	}
	// A renewer left running would wake on each of these and renew.
	renewals := b.Renewals("m1")
	for range 4 {
		clock.Advance(lock / 2)
		time.Sleep(time.Millisecond)
	}
	if b.Renewals("m1") != renewals || clock.Waiting(lock/2) {
		t.Error("the lock was still renewed after the message was settled")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestWorkerLogsLockLostOnSettleAndMovesOn(t *testing.T) {
	t.Parallel()
	b := wt.NewBroker(time.Minute)
	b.FailSettle("m1", worker.ErrLockLost) // as the Service Bus source reports a lost lock
	b.Send("m1", wt.UserNote(wt.OID(1)), nil)
	b.Send("m2", wt.UserNote(wt.OID(2)), nil)
	e := wt.NewEnv(wt.TeamsUser(1), wt.TeamsUser(2))
	obs := &wt.Observer{}
	w := e.Worker(t, b.Source(), worker.Options{Concurrency: 1, Observer: obs})
	stop := wt.RunInBackground(t, w)
	ok := b.WaitFor(5*time.Second, func() bool { return len(b.Completed()) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatalf("m2 not completed after m1's lock was lost; logs:\n%s", e.Logs)
	}
	got := obs.Settlements()
	if len(got) != 2 || got[0].Outcome != worker.OutcomeReleased || got[1].Outcome != worker.OutcomeCompleted {
		t.Errorf("settled = %+v, want m1 released, m2 completed", got)
	}
	if !strings.Contains(e.Logs.String(), "lock lost") {
		t.Errorf("lock loss not logged:\n%s", e.Logs)
	}
}

func TestWorkerShutdownNeverCompletesUnfinishedWork(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		releaseInTime bool
		want          worker.Outcome
	}{
		{"in-flight work that finishes within the drain is completed", true, worker.OutcomeCompleted},
		{"in-flight work still running at the drain timeout is abandoned", false, worker.OutcomeAbandoned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			slow := wt.TeamsUser(2)
			clock := clk.NewFake() // the drain's timeout passes only when the test says so
			b := wt.NewBroker(time.Minute)
			b.Clock = clock
			e := wt.NewEnv(slow)
			g := e.Gated()
			obs := &wt.Observer{}
			const drain = 10 * time.Second
			w := e.Worker(t, b.Source(),
				worker.Options{Concurrency: 2, DrainTimeout: drain, Observer: obs, Clock: clock})
			b.Send("slow", wt.UserNote(slow.ID), nil)
			stop := wt.RunInBackground(t, w)
			<-g.Entered // the slow reconcile is running

			stopped := make(chan error, 1)
			go func() { stopped <- stop() }()
			clk.WaitUntil(t, "the worker drains", func() bool { return clock.Waiting(drain) })
			if tt.releaseInTime {
				close(g.Gate)
			} else {
				clock.Advance(drain)
			}
			if err := <-stopped; err != nil {
				t.Fatal(err)
			}
			got := obs.Settlements()
			if len(got) != 1 || got[0].ID != "slow" || got[0].Outcome != tt.want {
				t.Fatalf("settled = %+v, want slow %s", got, tt.want)
			}
			if e.Granted(slow.ID) != tt.releaseInTime {
				t.Errorf("granted = %v, want %v", e.Granted(slow.ID), tt.releaseInTime)
			}
			if !b.LinksClosed() {
				t.Error("a receiver was left open after Run returned")
			}
		})
	}
}
