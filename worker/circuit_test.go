package worker_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clk "github.com/tpe-provisioner/tpe-provisioner/internal/clock"
	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// switchableACS answers every call with a 401 while broken, like ACS with a revoked key.
type switchableACS struct {
	*wt.Assignments
	broken atomic.Bool
	probes atomic.Int32
}

var _ worker.Assignments = (*switchableACS)(nil)

func (s *switchableACS) Get(ctx context.Context, oid string) (worker.Assignment, error) {
	if s.broken.Load() {
		return worker.Assignment{}, wt.ErrUnauthorized()
	}
	return s.Assignments.Get(ctx, oid)
}

func (s *switchableACS) Put(ctx context.Context, a worker.Assignment) (worker.Assignment, error) {
	if s.broken.Load() {
		return worker.Assignment{}, wt.ErrUnauthorized()
	}
	return s.Assignments.Put(ctx, a)
}

func (s *switchableACS) Delete(ctx context.Context, oid string) (string, error) {
	if s.broken.Load() {
		return "", wt.ErrUnauthorized()
	}
	return s.Assignments.Delete(ctx, oid)
}

// probe is what cmd wires as Options.Probe: a GET that only a systemic fault fails.
func (s *switchableACS) probe(ctx context.Context) error {
	s.probes.Add(1)
	_, err := s.Get(ctx, wt.OID(0))
	if worker.IsNotFound(err) {
		return nil
	}
	return err
}

func TestCircuitPausesOnSystemicFaultAndResumesAfterProbe(t *testing.T) {
	t.Parallel()
	const n = 6
	e := wt.NewEnv()
	acs := &switchableACS{Assignments: e.ACS}
	acs.broken.Store(true)
	e.Rec = worker.NewReconciler(e.Dir, acs, wt.Policy, worker.ReconcilerOptions{})
	b := wt.NewBroker(time.Minute)
	var delivered atomic.Int32
	b.OnReceive = func(*wt.Message) { delivered.Add(1) }
	for i := range n {
		e.Dir.PutUser(wt.TeamsUser(i + 1))
		b.Send(wt.OID(i+1), wt.UserNote(wt.OID(i+1)), nil)
	}
	w := e.Worker(t, b.Source(), worker.Options{Concurrency: 2,
		Probe: acs.probe, ProbeBackoff: func(int) time.Duration { return 5 * time.Millisecond }})
	stop := wt.RunInBackground(t, w)
	defer stop()

	clk.WaitUntil(t, "the circuit opens", func() bool {
		err := w.Ready()
		return err != nil && strings.Contains(err.Error(), "circuit open")
	})
	if got := wt.Metric(t, e.Reg, "tpe_circuit_open"); got != 1 {
		t.Errorf("tpe_circuit_open = %v, want 1", got)
	}
	clk.WaitUntil(t, "probes fail a few times", func() bool { return acs.probes.Load() >= 3 })
	before := delivered.Load()
	clk.WaitUntil(t, "more probes fail", func() bool { return acs.probes.Load() >= 6 })
	if after := delivered.Load(); after != before {
		t.Errorf("deliveries went from %d to %d while the circuit was open: receiving did not pause", before, after)
	}

	acs.broken.Store(false) // the operator fixes the key
	if !b.WaitFor(10*time.Second, func() bool { return len(b.Completed()) == n }) {
		t.Fatalf("not every message completed after the fault was fixed; logs:\n%s", e.Logs)
	}
	clk.WaitUntil(t, "the worker is ready again", func() bool { return w.Ready() == nil })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	_, _, dead := b.Counts()
	if dead != 0 {
		t.Errorf("dead letters = %d, want 0: the fault was not the messages'", dead)
	}
	for i := range n {
		if !e.Granted(wt.OID(i + 1)) {
			t.Errorf("user %d not granted after the circuit closed", i+1)
		}
	}
	if d := delivered.Load(); d > 2*n {
		t.Errorf("%d deliveries for %d messages: delivery counts were burnt while the circuit was open", d, n)
	}
}

func TestCircuitOpensWhenTheQueueConnectionIsLost(t *testing.T) {
	t.Parallel()
	u := wt.TeamsUser(1)
	e := wt.NewEnv(u)
	b := wt.NewBroker(time.Minute)
	// what the Service Bus source reports when the SDK gave up on the connection
	b.FailReceive(worker.SourceError("service bus receive", errors.New("connection lost"), true))
	b.Send("m1", wt.UserNote(u.ID), nil)
	var probed atomic.Int32
	w := e.Worker(t, b.Source(), worker.Options{
		Probe:        func(context.Context) error { probed.Add(1); return nil },
		ProbeBackoff: func(int) time.Duration { return time.Millisecond }})
	stop := wt.RunInBackground(t, w)
	ok := b.WaitFor(10*time.Second, func() bool { return len(b.Completed()) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !ok || probed.Load() == 0 {
		t.Fatalf("completed %v, probes %d; want the circuit to open, probe, and resume\n%s", ok, probed.Load(), e.Logs)
	}
	if !strings.Contains(e.Logs.String(), "circuit opened") || !strings.Contains(e.Logs.String(), "circuit closed") {
		t.Errorf("circuit transitions not logged:\n%s", e.Logs)
	}
	// That the Service Bus source replaces its receiver after a lost connection is asserted
	// by TestServiceBusSourceClassifiesReceiveErrors (worker/servicebus).
}

func TestDefaultProbeBackoffDoublesToAMinute(t *testing.T) {
	t.Parallel()
	tests := []struct {
		attempt int
		want    time.Duration
	}{{0, time.Second}, {1, 2 * time.Second}, {5, 32 * time.Second}, {6, time.Minute}, {60, time.Minute}}
	for _, tt := range tests {
		if got := worker.DefaultProbeBackoff(tt.attempt); got != tt.want {
			t.Errorf("worker.DefaultProbeBackoff(%d) = %v, want %v", tt.attempt, got, tt.want)
		}
	}
}

// putRefusedACS refuses only writes while broken, like ACS answering 403 to PUT alone: a
// probe that reads an assignment passes, the work does not.
type putRefusedACS struct {
	*wt.Assignments
	broken atomic.Bool
}

func (s *putRefusedACS) Put(ctx context.Context, a worker.Assignment) (worker.Assignment, error) {
	if s.broken.Load() {
		return worker.Assignment{}, wt.ErrForbidden()
	}
	return s.Assignments.Put(ctx, a)
}

// An outage of hours in an operation the probe cannot see (ACS refuses PUT only; the probe
// reads) dead-letters nothing and raises no delivery count by more than one; when it
// clears, every message completes. Before the witness design the probe passed, the
// circuit closed, the messages failed again and were dead-lettered at delivery 10.
func TestCircuitHoursOfOutageInAnOperationTheProbeCannotSee(t *testing.T) {
	t.Parallel()
	const n = 6
	e := wt.NewEnv()
	acs := &putRefusedACS{Assignments: e.ACS}
	acs.broken.Store(true)
	e.Rec = worker.NewReconciler(e.Dir, acs, wt.Policy, worker.ReconcilerOptions{})
	clock := clk.NewFake()
	b := wt.NewBroker(5 * time.Minute)
	b.Clock = clock
	var (
		mu       sync.Mutex
		maxCount = map[string]uint32{}
	)
	b.OnReceive = func(m *wt.Message) {
		mu.Lock()
		defer mu.Unlock()
		maxCount[m.MessageID] = max(maxCount[m.MessageID], m.DeliveryCount)
	}
	for i := range n {
		e.Dir.PutUser(wt.TeamsUser(i + 1))
		b.Send(wt.OID(i+1), wt.UserNote(wt.OID(i+1)), nil)
	}
	var probes atomic.Int32
	probe := func(ctx context.Context) error { // reads pass: the probe is blind to the fault
		probes.Add(1)
		_, err := acs.Get(ctx, wt.OID(0))
		if worker.IsNotFound(err) {
			return nil
		}
		return err
	}
	// The probe backoff is a duration no other wait has, so the test can tell when the
	// prober has parked again (stopped lock renewals leave their waits on the fake clock).
	const probeWait = time.Minute - time.Millisecond
	w := e.Worker(t, b.Source(), worker.Options{Concurrency: 3, Clock: clock, Probe: probe,
		ProbeBackoff: func(int) time.Duration { return probeWait }})
	stop := wt.RunInBackground(t, w)
	defer stop()
	settled := func() bool { return clock.Waiting(probeWait) }
	clk.WaitUntil(t, "the circuit opens and the prober waits", func() bool {
		open, _ := w.CircuitState()
		return open && settled()
	})
	for clock.Now().Sub(clk.Epoch) < 3*time.Hour {
		before := probes.Load()
		clock.Advance(time.Minute)
		clk.WaitUntil(t, "a probe and its retry of the held message", func() bool { return probes.Load() > before && settled() })
		if _, _, dead := b.Counts(); dead != 0 {
			t.Fatalf("after %s of outage %d message(s) dead-lettered: %+v", clock.Now().Sub(clk.Epoch), dead, b.Dead())
		}
	}
	if open, _ := w.CircuitState(); !open {
		t.Fatal("the circuit closed while the fault lasted")
	}
	if c, _, _ := b.Counts(); c != 0 {
		t.Fatalf("%d message(s) completed while every PUT was refused", c)
	}

	acs.broken.Store(false) // the operator grants the missing permission
	for i := 0; ; i++ {
		if c, _, _ := b.Counts(); c == n {
			break
		}
		if i > 100 {
			t.Fatalf("not every message completed after the fault cleared; logs:\n%s", e.Logs)
		}
		clock.Advance(time.Minute)
		time.Sleep(5 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, _, dead := b.Counts(); dead != 0 {
		t.Errorf("dead letters = %d, want 0", dead)
	}
	mu.Lock()
	defer mu.Unlock()
	for id, c := range maxCount {
		if c > 2 {
			t.Errorf("message %s reached delivery %d; a systemic fault may raise a count by one at most", id, c)
		}
	}
	for i := range n {
		if !e.Granted(wt.OID(i + 1)) {
			t.Errorf("user %d not granted after the fault cleared", i+1)
		}
	}
	t.Logf("%d probes over %s of simulated outage", probes.Load(), 3*time.Hour)
}

// /readyz is served to anyone who reaches the ops port: while the circuit is open, Ready
// says so without the fault's text, which names the principal and echoes ACS's answer.
func TestReadyNamesNoPrincipalWhileTheCircuitIsOpen(t *testing.T) {
	t.Parallel()
	u := wt.TeamsUser(7)
	e := wt.NewEnv(u)
	acs := &putRefusedACS{Assignments: e.ACS}
	acs.broken.Store(true)
	e.Rec = worker.NewReconciler(e.Dir, acs, wt.Policy, worker.ReconcilerOptions{})
	b := wt.NewBroker(time.Minute)
	b.Send("m1", wt.UserNote(u.ID), nil)
	w := e.Worker(t, b.Source(), worker.Options{
		ProbeBackoff: func(int) time.Duration { return time.Hour }})
	stop := wt.RunInBackground(t, w)
	defer stop()
	clk.WaitUntil(t, "the circuit opens", func() bool { open, _ := w.CircuitState(); return open })
	_, cause := w.CircuitState()
	if !strings.Contains(cause, u.ID) {
		t.Fatalf("the fault %q does not name the principal; the test proves nothing", cause)
	}
	err := w.Ready()
	if err == nil || !strings.Contains(err.Error(), "circuit open") {
		t.Fatalf("Ready() = %v, want circuit open", err)
	}
	for _, leak := range []string{u.ID, u.UPN, "Forbidden", "403"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("Ready() = %q holds %q", err, leak)
		}
	}
}
