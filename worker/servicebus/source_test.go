package servicebus

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

func receiveOne(t *testing.T, s *Source) *worker.Delivery {
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
	s := newSource(b.newReceiver, Options{})
	ctx := context.Background()

	d := receiveOne(t, s)
	if d.MessageID != "m1" || string(d.Body) != `{"a":1}` || d.DeliveryCount != 1 || d.LockedUntil.IsZero() || d.EnqueuedTime.IsZero() {
		t.Errorf("delivery = %+v", d)
	}
	if !maps.Equal(d.Properties, props) {
		t.Errorf("properties = %v, want %v", d.Properties, props)
	}
	if err := s.DeadLetter(ctx, d, worker.ReasonUntrusted, "clientState does not match"); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, d); !errors.Is(err, worker.ErrAlreadySettled) {
		t.Errorf("second settlement: %v, want worker.ErrAlreadySettled", err)
	}
	d2 := receiveOne(t, s)
	if err := s.Complete(ctx, d2); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	want := fakeDeadLetter{ID: "m1", Reason: worker.ReasonUntrusted, Description: "clientState does not match"}
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
			s := newSource(b.newReceiver, Options{})
			_, err := s.Receive(context.Background(), 1)
			if err == nil || worker.IsSystemic(err) != tt.wantSystemic || worker.IsTemporary(err) == tt.wantSystemic {
				t.Fatalf("err = %v, systemic %v; want systemic %v", err, worker.IsSystemic(err), tt.wantSystemic)
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
	b.Send("m1", worker.EncodeCommand(worker.CommandReconcile, "00000000-0000-4000-8000-000000000001", ""), nil)
	var logs strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logs.Write(p) }), nil))
	s := newSource(b.newReceiver, Options{IdleTimeout: 50 * time.Millisecond, Logger: log})
	d := receiveOne(t, s)
	if err := s.Complete(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	ok := b.waitFor(10*time.Second, func(b *fakeBroker) bool { return len(b.completed) == 1 })
	_ = s.Close(context.Background())
	if !ok {
		t.Fatal("message not completed")
	}
	if !b.receivers[0].isClosed() || len(b.receivers) < 2 {
		t.Errorf("receivers = %d, first closed %v; want the silent one replaced", len(b.receivers), b.receivers[0].isClosed())
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "silent") {
		t.Error("the watchdog's restart was not logged")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
