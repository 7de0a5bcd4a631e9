package servicebus_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
	"github.com/tpe-provisioner/tpe-provisioner/sbtest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
	"github.com/tpe-provisioner/tpe-provisioner/worker/servicebus"
)

// slowDirectory makes one principal's read take delay (or until its ctx ends).
// slowDirectory makes the first read of one user take delay; later reads (the Reconciler's
// read after its write) are as fast as the rest, so the message outlasts its lock once.
type slowDirectory struct {
	*wt.Directory
	slow  string
	delay time.Duration
	once  sync.Once
}

func (d *slowDirectory) User(ctx context.Context, idOrUPN string) (worker.User, error) {
	first := false
	if strings.EqualFold(idOrUPN, d.slow) {
		d.once.Do(func() { first = true })
	}
	if first {
		select {
		case <-time.After(d.delay):
		case <-ctx.Done():
			return worker.User{}, ctx.Err()
		}
	}
	return d.Directory.User(ctx, idOrUPN)
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
	fast, slow := wt.TeamsUser(1), wt.TeamsUser(2)
	forged := strings.ReplaceAll(string(wt.UserNote(fast.ID)), wt.ClientState, "guessed")
	for id, body := range map[string]string{
		"good": string(wt.UserNote(fast.ID)), "dup": string(wt.UserNote(fast.ID)), "slow": string(wt.UserNote(slow.ID)),
		"bad": `{"value":[`, "forged": forged,
	} {
		msg := &azservicebus.Message{MessageID: &id, Body: []byte(body),
			ApplicationProperties: map[string]any{"aeg-event-type": "Notification"}}
		if err := sender.SendMessage(ctx, msg, nil); err != nil {
			t.Fatal(err)
		}
	}

	e := wt.NewEnv(fast, slow)
	e.Rec = worker.NewReconciler(&slowDirectory{Directory: e.Dir, slow: slow.ID, delay: 3 * lock / 2}, e.ACS, wt.Policy, worker.ReconcilerOptions{})
	src := servicebus.NewSource(func(context.Context) (*azservicebus.Receiver, error) {
		return client.NewReceiverForQueue(s.Queue(), nil)
	}, servicebus.Options{Logger: e.Logger()})
	w := e.Worker(t, src, worker.Options{Concurrency: 4})
	stop := wt.RunInBackground(t, w)
	defer stop()

	var st sbtest.Stats
	for st.Completed != 3 || st.DeadLettered != 2 {
		if ctx.Err() != nil {
			t.Fatalf("queue = %+v, want 3 completed and 2 dead-lettered; logs:\n%s", st, e.Logs)
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
	if !e.Granted(fast.ID) || !e.Granted(slow.ID) {
		t.Errorf("granted fast=%v slow=%v, want both", e.Granted(fast.ID), e.Granted(slow.ID))
	}
}
