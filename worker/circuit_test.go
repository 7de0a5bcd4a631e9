package worker

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	clk "github.com/tpe-provisioner/tpe-provisioner/internal/clock"
)

// switchableACS answers every call with a 401 while broken, like ACS with a revoked key.
type switchableACS struct {
	*fakeAssignments
	broken atomic.Bool
	probes atomic.Int32
}

var _ Assignments = (*switchableACS)(nil)

func errUnauthorized() error { return &fakeErr{status: 401, code: "Unauthorized", systemic: true} }

func (s *switchableACS) Get(ctx context.Context, oid string) (Assignment, error) {
	if s.broken.Load() {
		return Assignment{}, errUnauthorized()
	}
	return s.fakeAssignments.Get(ctx, oid)
}

func (s *switchableACS) Put(ctx context.Context, a Assignment) (Assignment, error) {
	if s.broken.Load() {
		return Assignment{}, errUnauthorized()
	}
	return s.fakeAssignments.Put(ctx, a)
}

func (s *switchableACS) Delete(ctx context.Context, oid string) (string, error) {
	if s.broken.Load() {
		return "", errUnauthorized()
	}
	return s.fakeAssignments.Delete(ctx, oid)
}

// probe is what cmd wires as Options.Probe: a GET that only a systemic fault fails.
func (s *switchableACS) probe(ctx context.Context) error {
	s.probes.Add(1)
	_, err := s.Get(ctx, rtOID(0))
	if IsNotFound(err) {
		return nil
	}
	return err
}

func TestCircuitPausesOnSystemicFaultAndResumesAfterProbe(t *testing.T) {
	t.Parallel()
	const n = 6
	e := newRTEnv()
	acs := &switchableACS{fakeAssignments: e.acs}
	acs.broken.Store(true)
	e.rec = NewReconciler(e.dir, acs, rtPolicy, ReconcilerOptions{})
	b := newFakeBroker(time.Minute)
	var delivered atomic.Int32
	b.onReceive = func(*fakeMsg) { delivered.Add(1) }
	for i := range n {
		e.dir.PutUser(rtTeamsUser(i + 1))
		b.Send(rtOID(i+1), rtUserNote(rtOID(i+1)), nil)
	}
	w := e.worker(t, b.source(), Options{Concurrency: 2,
		Probe: acs.probe, ProbeBackoff: func(int) time.Duration { return 5 * time.Millisecond }})
	stop := runInBackground(t, w)
	defer stop()

	clk.WaitUntil(t, "the circuit opens", func() bool {
		err := w.Ready()
		return err != nil && strings.Contains(err.Error(), "circuit open")
	})
	if got := testutil.ToFloat64(w.metrics.circuitOpen); got != 1 {
		t.Errorf("tpe_circuit_open = %v, want 1", got)
	}
	clk.WaitUntil(t, "probes fail a few times", func() bool { return acs.probes.Load() >= 3 })
	before := delivered.Load()
	clk.WaitUntil(t, "more probes fail", func() bool { return acs.probes.Load() >= 6 })
	if after := delivered.Load(); after != before {
		t.Errorf("deliveries went from %d to %d while the circuit was open: receiving did not pause", before, after)
	}

	acs.broken.Store(false) // the operator fixes the key
	if !b.waitFor(10*time.Second, func(b *fakeBroker) bool { return len(b.completed) == n }) {
		t.Fatalf("not every message completed after the fault was fixed; logs:\n%s", e.logs)
	}
	clk.WaitUntil(t, "the worker is ready again", func() bool { return w.Ready() == nil })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	_, _, dead := b.counts()
	if dead != 0 {
		t.Errorf("dead letters = %d, want 0: the fault was not the messages'", dead)
	}
	for i := range n {
		if !e.granted(rtOID(i + 1)) {
			t.Errorf("user %d not granted after the circuit closed", i+1)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if d := delivered.Load(); d > 2*n {
		t.Errorf("%d deliveries for %d messages: delivery counts were burnt while the circuit was open", d, n)
	}
}

func TestCircuitOpensWhenTheQueueConnectionIsLost(t *testing.T) {
	t.Parallel()
	u := rtTeamsUser(1)
	e := newRTEnv(u)
	b := newFakeBroker(time.Minute)
	// what the Service Bus source reports when the SDK gave up on the connection
	b.receiveErrs = []error{SourceError("service bus receive", errors.New("connection lost"), true)}
	b.Send("m1", rtUserNote(u.ID), nil)
	var probed atomic.Int32
	w := e.worker(t, b.source(), Options{
		Probe:        func(context.Context) error { probed.Add(1); return nil },
		ProbeBackoff: func(int) time.Duration { return time.Millisecond }})
	stop := runInBackground(t, w)
	ok := b.waitFor(10*time.Second, func(b *fakeBroker) bool { return len(b.completed) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !ok || probed.Load() == 0 {
		t.Fatalf("completed %v, probes %d; want the circuit to open, probe, and resume\n%s", ok, probed.Load(), e.logs)
	}
	if !strings.Contains(e.logs.String(), "circuit opened") || !strings.Contains(e.logs.String(), "circuit closed") {
		t.Errorf("circuit transitions not logged:\n%s", e.logs)
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
		if got := defaultProbeBackoff(tt.attempt); got != tt.want {
			t.Errorf("defaultProbeBackoff(%d) = %v, want %v", tt.attempt, got, tt.want)
		}
	}
}

// putRefusedACS refuses only writes while broken, like ACS answering 403 to PUT alone: a
// probe that reads an assignment passes, the work does not.
type putRefusedACS struct {
	*fakeAssignments
	broken atomic.Bool
}

func errForbidden() error { return &fakeErr{status: 403, code: "Forbidden", systemic: true} }

func (s *putRefusedACS) Put(ctx context.Context, a Assignment) (Assignment, error) {
	if s.broken.Load() {
		return Assignment{}, errForbidden()
	}
	return s.fakeAssignments.Put(ctx, a)
}

// An outage of hours in an operation the probe cannot see (ACS refuses PUT only; the probe
// reads) dead-letters nothing and raises no delivery count by more than one; when it
// clears, every message completes. Before the witness design the probe passed, the
// circuit closed, the messages failed again and were dead-lettered at delivery 10.
func TestCircuitHoursOfOutageInAnOperationTheProbeCannotSee(t *testing.T) {
	t.Parallel()
	const n = 6
	e := newRTEnv()
	acs := &putRefusedACS{fakeAssignments: e.acs}
	acs.broken.Store(true)
	e.rec = NewReconciler(e.dir, acs, rtPolicy, ReconcilerOptions{})
	clock := clk.NewFake()
	b := newFakeBroker(5 * time.Minute)
	b.clock = clock
	var (
		mu       sync.Mutex
		maxCount = map[string]uint32{}
	)
	b.onReceive = func(m *fakeMsg) {
		mu.Lock()
		defer mu.Unlock()
		maxCount[m.MessageID] = max(maxCount[m.MessageID], m.DeliveryCount)
	}
	for i := range n {
		e.dir.PutUser(rtTeamsUser(i + 1))
		b.Send(rtOID(i+1), rtUserNote(rtOID(i+1)), nil)
	}
	var probes atomic.Int32
	probe := func(ctx context.Context) error { // reads pass: the probe is blind to the fault
		probes.Add(1)
		_, err := acs.Get(ctx, rtOID(0))
		if IsNotFound(err) {
			return nil
		}
		return err
	}
	// The probe backoff is a duration no other wait has, so the test can tell when the
	// prober has parked again (stopped lock renewals leave their waits on the fake clock).
	const probeWait = time.Minute - time.Millisecond
	w := e.worker(t, b.source(), Options{Concurrency: 3, Clock: clock, Probe: probe,
		ProbeBackoff: func(int) time.Duration { return probeWait }})
	stop := runInBackground(t, w)
	defer stop()
	settled := func() bool { return clock.Waiting(probeWait) }
	clk.WaitUntil(t, "the circuit opens and the prober waits", func() bool {
		open, _ := w.circuit.state()
		return open && settled()
	})
	for clock.Now().Sub(clk.Epoch) < 3*time.Hour {
		before := probes.Load()
		clock.Advance(time.Minute)
		clk.WaitUntil(t, "a probe and its retry of the held message", func() bool { return probes.Load() > before && settled() })
		if _, _, dead := b.counts(); dead != 0 {
			t.Fatalf("after %s of outage %d message(s) dead-lettered: %+v", clock.Now().Sub(clk.Epoch), dead, b.dead)
		}
	}
	if open, _ := w.circuit.state(); !open {
		t.Fatal("the circuit closed while the fault lasted")
	}
	if c, _, _ := b.counts(); c != 0 {
		t.Fatalf("%d message(s) completed while every PUT was refused", c)
	}

	acs.broken.Store(false) // the operator grants the missing permission
	for i := 0; ; i++ {
		if c, _, _ := b.counts(); c == n {
			break
		}
		if i > 100 {
			t.Fatalf("not every message completed after the fault cleared; logs:\n%s", e.logs)
		}
		clock.Advance(time.Minute)
		time.Sleep(5 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, _, dead := b.counts(); dead != 0 {
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
		if !e.granted(rtOID(i + 1)) {
			t.Errorf("user %d not granted after the fault cleared", i+1)
		}
	}
	t.Logf("%d probes over %s of simulated outage", probes.Load(), 3*time.Hour)
}

// /readyz is served to anyone who reaches the ops port: while the circuit is open, Ready
// says so without the fault's text, which names the principal and echoes ACS's answer.
func TestReadyNamesNoPrincipalWhileTheCircuitIsOpen(t *testing.T) {
	t.Parallel()
	u := rtTeamsUser(7)
	e := newRTEnv(u)
	acs := &putRefusedACS{fakeAssignments: e.acs}
	acs.broken.Store(true)
	e.rec = NewReconciler(e.dir, acs, rtPolicy, ReconcilerOptions{})
	b := newFakeBroker(time.Minute)
	b.Send("m1", rtUserNote(u.ID), nil)
	w := e.worker(t, b.source(), Options{
		ProbeBackoff: func(int) time.Duration { return time.Hour }})
	stop := runInBackground(t, w)
	defer stop()
	clk.WaitUntil(t, "the circuit opens", func() bool { open, _ := w.circuit.state(); return open })
	_, cause := w.circuit.state()
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
