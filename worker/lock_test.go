package worker

import (
	"strings"
	"testing"
	"time"
)

func TestWorkerRenewsTheLockOfASlowReconcile(t *testing.T) {
	t.Parallel()
	u := rtTeamsUser(1)
	b := newFakeBroker(100 * time.Millisecond)
	b.Send("m1", rtUserNote(u.ID), nil)
	e := newRTEnv(u)
	g := e.gated()
	w := e.worker(t, b.source(), Options{})
	stop := runInBackground(t, w)
	<-g.entered
	// Hold the reconcile for several lock durations; the renewals keep the lock.
	b.waitFor(5*time.Second, func(b *fakeBroker) bool { return b.renewals["m1"] >= 4 })
	close(g.gate)
	ok := b.waitFor(5*time.Second, func(b *fakeBroker) bool { return len(b.completed) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !ok || !e.granted(u.ID) {
		t.Fatalf("completed %v, granted %v; logs:\n%s", ok, e.granted(u.ID), e.logs)
	}
	if strings.Contains(e.logs.String(), "lock lost") || strings.Contains(e.logs.String(), "expired") {
		t.Errorf("the lock was lost despite renewals:\n%s", e.logs)
	}
	b.mu.Lock()
	renewals := b.renewals["m1"]
	b.mu.Unlock()
	time.Sleep(150 * time.Millisecond)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.renewals["m1"] != renewals {
		t.Error("the lock was still renewed after the message was settled")
	}
}

func TestWorkerLogsLockLostOnSettleAndMovesOn(t *testing.T) {
	t.Parallel()
	b := newFakeBroker(time.Minute)
	b.settleErrs["m1"] = ErrLockLost // as the Service Bus source reports a lost lock
	b.Send("m1", rtUserNote(rtOID(1)), nil)
	b.Send("m2", rtUserNote(rtOID(2)), nil)
	e := newRTEnv(rtTeamsUser(1), rtTeamsUser(2))
	obs := &recordingObserver{}
	w := e.worker(t, b.source(), Options{Concurrency: 1, Observer: obs})
	stop := runInBackground(t, w)
	ok := b.waitFor(5*time.Second, func(b *fakeBroker) bool { return len(b.completed) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatalf("m2 not completed after m1's lock was lost; logs:\n%s", e.logs)
	}
	got := obs.settled()
	if len(got) != 2 || got[0].outcome != OutcomeReleased || got[1].outcome != OutcomeCompleted {
		t.Errorf("settled = %+v, want m1 released, m2 completed", got)
	}
	if !strings.Contains(e.logs.String(), "lock lost") {
		t.Errorf("lock loss not logged:\n%s", e.logs)
	}
}

func TestWorkerShutdownNeverCompletesUnfinishedWork(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		releaseInTime bool
		want          Outcome
	}{
		{"in-flight work that finishes within the drain is completed", true, OutcomeCompleted},
		{"in-flight work still running at the drain timeout is abandoned", false, OutcomeAbandoned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			slow := rtTeamsUser(2)
			b := newFakeBroker(time.Minute)
			e := newRTEnv(slow)
			g := e.gated()
			obs := &recordingObserver{}
			drain := 100 * time.Millisecond
			if tt.releaseInTime {
				drain = 10 * time.Second
			}
			w := e.worker(t, b.source(),
				Options{Concurrency: 2, DrainTimeout: drain, Observer: obs})
			b.Send("slow", rtUserNote(slow.ID), nil)
			stop := runInBackground(t, w)
			<-g.entered // the slow reconcile is running

			stopped := make(chan error, 1)
			go func() { stopped <- stop() }()
			if tt.releaseInTime {
				time.Sleep(20 * time.Millisecond)
				close(g.gate)
			}
			if err := <-stopped; err != nil {
				t.Fatal(err)
			}
			got := obs.settled()
			if len(got) != 1 || got[0].id != "slow" || got[0].outcome != tt.want {
				t.Fatalf("settled = %+v, want slow %s", got, tt.want)
			}
			if e.granted(slow.ID) != tt.releaseInTime {
				t.Errorf("granted = %v, want %v", e.granted(slow.ID), tt.releaseInTime)
			}
			b.mu.Lock()
			defer b.mu.Unlock()
			for _, r := range b.receivers {
				if !r.isClosed() {
					t.Error("a receiver was left open after Run returned")
				}
			}
		})
	}
}
