package worker

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/tpe-provisioner/tpe-provisioner/sbtest"
)

func receiveOne(t *testing.T, s *ServiceBusSource) *Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		ds, err := s.Receive(ctx, 1)
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		if len(ds) == 1 {
			return ds[0]
		}
	}
}

func TestServiceBusSourceDeliversAndSettles(t *testing.T) {
	t.Parallel()
	b := newFakeBroker(time.Minute)
	props := map[string]any{"aeg-event-type": "Notification", "aeg-delivery-count": int64(0)}
	b.Send("m1", []byte(`{"a":1}`), props)
	b.Send("m2", []byte(`{"b":2}`), nil)
	s := newServiceBusSource(b.newReceiver, ServiceBusOptions{})
	ctx := context.Background()

	d := receiveOne(t, s)
	if d.MessageID != "m1" || string(d.Body) != `{"a":1}` || d.DeliveryCount != 1 || d.LockedUntil.IsZero() || d.EnqueuedTime.IsZero() {
		t.Errorf("delivery = %+v", d)
	}
	if !maps.Equal(d.Properties, props) {
		t.Errorf("properties = %v, want %v", d.Properties, props)
	}
	if err := s.DeadLetter(ctx, d, ReasonUntrusted, "clientState does not match"); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, d); !errors.Is(err, ErrAlreadySettled) {
		t.Errorf("second settlement: %v, want ErrAlreadySettled", err)
	}
	d2 := receiveOne(t, s)
	if err := s.Complete(ctx, d2); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	want := fakeDeadLetter{ID: "m1", Reason: ReasonUntrusted, Description: "clientState does not match"}
	if len(b.dead) != 1 || b.dead[0] != want {
		t.Errorf("dead letters = %+v, want %+v", b.dead, want)
	}
	if len(b.completed) != 1 || b.completed[0] != "m2" {
		t.Errorf("completed = %v, want [m2]", b.completed)
	}
}

func TestServiceBusSourceClassifiesReceiveErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		err          error
		wantSystemic bool
		wantNewLink  bool
	}{
		{"connection lost is systemic and reconnects", &azservicebus.Error{Code: azservicebus.CodeConnectionLost}, true, true},
		{"unauthorized is systemic", &azservicebus.Error{Code: azservicebus.CodeUnauthorizedAccess}, true, true},
		{"a closed link reconnects", &azservicebus.Error{Code: azservicebus.CodeClosed}, false, true},
		{"anything else is temporary", errors.New("amqp: busy"), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newFakeBroker(time.Minute)
			b.receiveErrs = []error{tt.err}
			s := newServiceBusSource(b.newReceiver, ServiceBusOptions{})
			_, err := s.Receive(context.Background(), 1)
			if err == nil || IsSystemic(err) != tt.wantSystemic || IsTemporary(err) == tt.wantSystemic {
				t.Fatalf("err = %v, systemic %v; want systemic %v", err, IsSystemic(err), tt.wantSystemic)
			}
			if s.Ready() == nil {
				t.Error("Ready() = nil after a failed receive")
			}
			b.Send("m1", []byte("{}"), nil)
			d := receiveOne(t, s)
			if s.Ready() != nil {
				t.Errorf("Ready() = %v after a good receive", s.Ready())
			}
			_ = s.Complete(context.Background(), d)
			b.mu.Lock()
			defer b.mu.Unlock()
			if got := len(b.receivers) == 2; got != tt.wantNewLink {
				t.Errorf("receivers = %d, want a new one: %v", len(b.receivers), tt.wantNewLink)
			}
			if tt.wantNewLink && !b.receivers[0].isClosed() {
				t.Error("the replaced receiver was not closed")
			}
		})
	}
}

func TestServiceBusWatchdogReplacesASilentReceiver(t *testing.T) {
	t.Parallel()
	b := newFakeBroker(time.Minute)
	b.silentReceivers = 1 // the first receiver never delivers, as seen after long idle
	b.Send("m1", rtUserNote(rtOID(1)), nil)
	e := newRTEnv(rtTeamsUser(1))
	w := e.worker(t, newServiceBusSource(b.newReceiver, ServiceBusOptions{IdleTimeout: 50 * time.Millisecond, Logger: e.logger()}), Options{})
	stop := runInBackground(t, w)
	ok := b.waitFor(10*time.Second, func(b *fakeBroker) bool { return len(b.completed) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatalf("message not completed; logs:\n%s", e.logs)
	}
	if !b.receivers[0].isClosed() || len(b.receivers) < 2 {
		t.Errorf("receivers = %d, first closed %v; want the silent one replaced", len(b.receivers), b.receivers[0].isClosed())
	}
	if !strings.Contains(e.logs.String(), "silent") {
		t.Error("the watchdog's restart was not logged")
	}
}

func TestWorkerRenewsTheLockOfASlowReconcile(t *testing.T) {
	t.Parallel()
	u := rtTeamsUser(1)
	b := newFakeBroker(100 * time.Millisecond)
	b.Send("m1", rtUserNote(u.ID), nil)
	e := newRTEnv(u)
	g := e.gated()
	w := e.worker(t, newServiceBusSource(b.newReceiver, ServiceBusOptions{}), Options{})
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
	b.settleErrs["m1"] = &azservicebus.Error{Code: azservicebus.CodeLockLost}
	b.Send("m1", rtUserNote(rtOID(1)), nil)
	b.Send("m2", rtUserNote(rtOID(2)), nil)
	e := newRTEnv(rtTeamsUser(1), rtTeamsUser(2))
	obs := &recordingObserver{}
	w := e.worker(t, newServiceBusSource(b.newReceiver, ServiceBusOptions{}), Options{Concurrency: 1, Observer: obs})
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
			w := e.worker(t, newServiceBusSource(b.newReceiver, ServiceBusOptions{}),
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

// slowDirectory makes one principal's read take delay (or until its ctx ends).
// slowDirectory makes the first read of one user take delay; later reads (the Reconciler's
// read after its write) are as fast as the rest, so the message outlasts its lock once.
type slowDirectory struct {
	*fakeDirectory
	slow  string
	delay time.Duration
	once  sync.Once
}

func (d *slowDirectory) User(ctx context.Context, idOrUPN string) (User, error) {
	first := false
	if strings.EqualFold(idOrUPN, d.slow) {
		d.once.Do(func() { first = true })
	}
	if first {
		select {
		case <-time.After(d.delay):
		case <-ctx.Done():
			return User{}, ctx.Err()
		}
	}
	return d.fakeDirectory.User(ctx, idOrUPN)
}

// TestServiceBusSourceWithTheRealClient runs the worker on the real azservicebus client
// against the local AMQP endpoint: settlement by the design table, and a reconcile slower
// than the lock that is kept by renewals rather than delivered twice.
func TestServiceBusSourceWithTheRealClient(t *testing.T) {
	t.Parallel()
	const lock = 2 * time.Second
	s := sbtest.Start(t, sbtest.Options{LockDuration: lock})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := azservicebus.NewClientFromConnectionString(s.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(context.Background())
	sender, err := client.NewSender(s.Queue(), nil)
	if err != nil {
		t.Fatal(err)
	}
	fast, slow := rtTeamsUser(1), rtTeamsUser(2)
	forged := strings.ReplaceAll(string(rtUserNote(fast.ID)), fxClientState, "guessed")
	for id, body := range map[string]string{
		"good": string(rtUserNote(fast.ID)), "dup": string(rtUserNote(fast.ID)), "slow": string(rtUserNote(slow.ID)),
		"bad": `{"value":[`, "forged": forged,
	} {
		msg := &azservicebus.Message{MessageID: &id, Body: []byte(body),
			ApplicationProperties: map[string]any{"aeg-event-type": "Notification"}}
		if err := sender.SendMessage(ctx, msg, nil); err != nil {
			t.Fatal(err)
		}
	}

	e := newRTEnv(fast, slow)
	e.rec = NewReconciler(&slowDirectory{fakeDirectory: e.dir, slow: slow.ID, delay: 3 * lock / 2}, e.acs, rtPolicy, ReconcilerOptions{})
	src := NewServiceBusSource(func(context.Context) (*azservicebus.Receiver, error) {
		return client.NewReceiverForQueue(s.Queue(), nil)
	}, ServiceBusOptions{Logger: e.logger()})
	w := e.worker(t, src, Options{Concurrency: 4})
	stop := runInBackground(t, w)
	defer stop()

	var st sbtest.Stats
	for st.Completed != 3 || st.DeadLettered != 2 {
		if ctx.Err() != nil {
			t.Fatalf("queue = %+v, want 3 completed and 2 dead-lettered; logs:\n%s", st, e.logs)
		}
		time.Sleep(50 * time.Millisecond)
		if st, err = s.Stats(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if st.Deliveries != 5 {
		t.Errorf("deliveries = %d, want 5: the slow message's lock should have been renewed", st.Deliveries)
	}
	if !e.granted(fast.ID) || !e.granted(slow.ID) {
		t.Errorf("granted fast=%v slow=%v, want both", e.granted(fast.ID), e.granted(slow.ID))
	}
}
