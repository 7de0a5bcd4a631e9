package worker_test

import (
	"strings"
	"testing"
	"time"

	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

func TestWorkerRenewsTheLockOfASlowReconcile(t *testing.T) {
	t.Parallel()
	u := wt.TeamsUser(1)
	b := wt.NewBroker(100 * time.Millisecond)
	b.Send("m1", wt.UserNote(u.ID), nil)
	e := wt.NewEnv(u)
	g := e.Gated()
	w := e.Worker(t, b.Source(), worker.Options{})
	stop := wt.RunInBackground(t, w)
	<-g.Entered
	// Hold the reconcile for several lock durations; the renewals keep the lock.
	b.WaitFor(5*time.Second, func() bool { return b.Renewals("m1") >= 4 })
	close(g.Gate)
	ok := b.WaitFor(5*time.Second, func() bool { return len(b.Completed()) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !ok || !e.Granted(u.ID) {
		t.Fatalf("completed %v, granted %v; logs:\n%s", ok, e.Granted(u.ID), e.Logs)
	}
	if strings.Contains(e.Logs.String(), "lock lost") || strings.Contains(e.Logs.String(), "expired") {
		t.Errorf("the lock was lost despite renewals:\n%s", e.Logs)
	}
	renewals := b.Renewals("m1")
	time.Sleep(150 * time.Millisecond)
	if b.Renewals("m1") != renewals {
		t.Error("the lock was still renewed after the message was settled")
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
			b := wt.NewBroker(time.Minute)
			e := wt.NewEnv(slow)
			g := e.Gated()
			obs := &wt.Observer{}
			drain := 100 * time.Millisecond
			if tt.releaseInTime {
				drain = 10 * time.Second
			}
			w := e.Worker(t, b.Source(),
				worker.Options{Concurrency: 2, DrainTimeout: drain, Observer: obs})
			b.Send("slow", wt.UserNote(slow.ID), nil)
			stop := wt.RunInBackground(t, w)
			<-g.Entered // the slow reconcile is running

			stopped := make(chan error, 1)
			go func() { stopped <- stop() }()
			if tt.releaseInTime {
				time.Sleep(20 * time.Millisecond)
				close(g.Gate)
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
