package servicebus_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
	"github.com/tpe-provisioner/tpe-provisioner/sbtest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
	"github.com/tpe-provisioner/tpe-provisioner/worker/servicebus"
)

// These tests run the worker on the real azservicebus client against the local Service Bus
// endpoint (sbtest): peek-lock, settlement, lock renewal and reconnection go over AMQP 1.0.
// The directory and ACS are the in-memory fakes.

// sbRetry keeps the client's own recovery quick against a local endpoint.
var sbRetry = azservicebus.RetryOptions{MaxRetries: 5, RetryDelay: 50 * time.Millisecond, MaxRetryDelay: 500 * time.Millisecond}

type sbEnv struct {
	*wt.Env
	srv    *sbtest.Server
	client *azservicebus.Client
	sender *azservicebus.Sender
	obs    *wt.Observer
}

func newSBEnv(t *testing.T, o sbtest.Options, users ...worker.User) *sbEnv {
	t.Helper()
	o.DuplicateDetection = true // as the deployed queue (deploy/bicep/modules/servicebus.bicep)
	e := &sbEnv{Env: wt.NewEnv(users...), srv: sbtest.Start(t, o), obs: &wt.Observer{}}
	c, err := azservicebus.NewClientFromConnectionString(e.srv.ConnectionString(), &azservicebus.ClientOptions{RetryOptions: sbRetry})
	if err != nil {
		t.Fatalf("NewClientFromConnectionString: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	e.client = c
	if e.sender, err = c.NewSender(e.srv.Queue(), nil); err != nil {
		t.Fatalf("NewSender: %v", err)
	}
	return e
}

func (e *sbEnv) send(t *testing.T, id string, body []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.sender.SendMessage(ctx, &azservicebus.Message{MessageID: &id, Body: body}, nil); err != nil {
		t.Fatalf("SendMessage %s: %v", id, err)
	}
}

// start runs a worker on a servicebus.Source over the queue until the test ends.
func (e *sbEnv) start(t *testing.T, o worker.Options) {
	t.Helper()
	src := servicebus.NewSource(func(context.Context) (*azservicebus.Receiver, error) {
		return e.client.NewReceiverForQueue(e.srv.Queue(), nil)
	}, servicebus.Options{Logger: e.Logger()})
	o.Observer = e.obs
	if o.ProbeBackoff == nil {
		o.ProbeBackoff = wt.NoBackoff
	}
	stop := wt.RunInBackground(t, e.Worker(t, src, o))
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// waitStats polls the endpoint until the queue's counts equal want.
func (e *sbEnv) waitStats(t *testing.T, want sbtest.Stats, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := e.srv.Stats(ctx)
		cancel()
		if err != nil {
			t.Fatalf("Stats: %v", err)
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue stats = %+v, want %+v\nworker log:\n%s", got, want, e.Logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settled waits until the worker has reported n settlements (it reports each after the
// broker confirmed it) and returns them.
func (e *sbEnv) settled(t *testing.T, n int) []wt.Settled {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := e.obs.Settlements()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSBWorkerCompletesAReconciledMessage(t *testing.T) {
	t.Parallel()
	u := wt.TeamsUser(1)
	e := newSBEnv(t, sbtest.Options{}, u)
	e.start(t, worker.Options{Concurrency: 2})
	e.send(t, "note-1", wt.UserNote(u.ID))

	e.waitStats(t, sbtest.Stats{Completed: 1, Deliveries: 1}, 10*time.Second)
	if !e.Granted(u.ID) {
		t.Fatal("user not granted")
	}
	if got, want := e.settled(t, 1), []wt.Settled{{ID: "note-1", Count: 1, Outcome: worker.OutcomeCompleted, Reason: ""}}; !slices.Equal(got, want) {
		t.Fatalf("settled = %+v, want %+v", got, want)
	}
}

func TestSBWorkerAbandonsATemporaryFaultAndCompletesTheRedelivery(t *testing.T) {
	t.Parallel()
	u := wt.TeamsUser(1)
	e := newSBEnv(t, sbtest.Options{}, u)
	e.ACS.FailNext("Get", u.ID, wt.ErrUnavailable())
	e.start(t, worker.Options{Concurrency: 1, Retries: -1})
	e.send(t, "note-1", wt.UserNote(u.ID))

	e.waitStats(t, sbtest.Stats{Completed: 1, Deliveries: 2}, 10*time.Second)
	if !e.Granted(u.ID) {
		t.Fatal("user not granted after the redelivery")
	}
	got := e.settled(t, 2)
	want := []wt.Settled{{ID: "note-1", Count: 1, Outcome: worker.OutcomeAbandoned, Reason: "temporary"}, {ID: "note-1", Count: 2, Outcome: worker.OutcomeCompleted, Reason: ""}}
	if !slices.Equal(got, want) {
		t.Fatalf("settled = %+v, want %+v (Service Bus raises the delivery count on abandon)", got, want)
	}
}

func TestSBWorkerDeadLettersAnUntrustedNotificationWithItsReason(t *testing.T) {
	t.Parallel()
	u := wt.TeamsUser(1)
	e := newSBEnv(t, sbtest.Options{}, u)
	body := bytes.ReplaceAll(wt.UserNote(u.ID), []byte(wt.ClientState), []byte("forged-client-state"))
	e.start(t, worker.Options{Concurrency: 1})
	e.send(t, "forged", body)

	e.waitStats(t, sbtest.Stats{DeadLettered: 1, Deliveries: 1}, 10*time.Second)
	if e.Granted(u.ID) {
		t.Fatal("an untrusted notification granted access")
	}

	dlq, err := e.client.NewReceiverForQueue(e.srv.Queue(), &azservicebus.ReceiverOptions{SubQueue: azservicebus.SubQueueDeadLetter})
	if err != nil {
		t.Fatalf("NewReceiverForQueue (dead-letter): %v", err)
	}
	defer dlq.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := dlq.ReceiveMessages(ctx, 1, nil)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("ReceiveMessages (dead-letter) = %d messages, %v", len(msgs), err)
	}
	d := msgs[0]
	if d.MessageID != "forged" || !bytes.Equal(d.Body, body) {
		t.Errorf("dead-lettered message %s changed", d.MessageID)
	}
	if d.DeadLetterReason == nil || *d.DeadLetterReason != worker.ReasonUntrusted {
		t.Errorf("DeadLetterReason = %v, want %q", d.DeadLetterReason, worker.ReasonUntrusted)
	}
	if d.DeadLetterErrorDescription == nil || *d.DeadLetterErrorDescription == "" {
		t.Errorf("DeadLetterErrorDescription is empty")
	} else if desc := *d.DeadLetterErrorDescription; strings.Contains(desc, wt.ClientState) || strings.Contains(desc, "forged-client-state") {
		t.Errorf("DeadLetterErrorDescription %q reveals a client state", desc)
	}
}

func TestSBWorkerRenewsTheLockOfASlowReconcile(t *testing.T) {
	t.Parallel()
	const lock = time.Second
	u := wt.TeamsUser(1)
	e := newSBEnv(t, sbtest.Options{LockDuration: lock}, u)
	g := e.Gated()
	e.start(t, worker.Options{Concurrency: 2})
	e.send(t, "slow", wt.UserNote(u.ID))

	select {
	case <-g.Entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the reconcile did not start")
	}
	time.Sleep(3 * lock) // the directory read outlasts the lock three times over
	if st, err := e.srv.Stats(context.Background()); err != nil || st.Deliveries != 1 || st.Locked != 1 {
		t.Fatalf("stats = %+v, %v; want the message still locked after one delivery", st, err)
	}
	close(g.Gate)

	e.waitStats(t, sbtest.Stats{Completed: 1, Deliveries: 1}, 10*time.Second)
	if got, want := e.settled(t, 1), []wt.Settled{{ID: "slow", Count: 1, Outcome: worker.OutcomeCompleted, Reason: ""}}; !slices.Equal(got, want) {
		t.Fatalf("settled = %+v, want %+v", got, want)
	}
}

// A connection lost while the worker waits for messages is recovered by the client; what
// is sent afterwards is worked, and nothing is lost or dead-lettered.
func TestSBWorkerSurvivesADroppedConnection(t *testing.T) {
	t.Parallel()
	users := []worker.User{wt.TeamsUser(1), wt.TeamsUser(2), wt.TeamsUser(3), wt.TeamsUser(4)}
	e := newSBEnv(t, sbtest.Options{LockDuration: 2 * time.Second}, users...)
	e.start(t, worker.Options{Concurrency: 2})
	e.send(t, "before", wt.UserNote(users[0].ID))
	e.waitStats(t, sbtest.Stats{Completed: 1, Deliveries: 1}, 10*time.Second)

	time.Sleep(100 * time.Millisecond) // the worker is back in ReceiveMessages
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if n, err := e.srv.DropConnections(ctx); err != nil || n == 0 {
		t.Fatalf("DropConnections = %d, %v; want at least one connection cut", n, err)
	}
	for i, u := range users[1:] {
		e.send(t, fmt.Sprintf("after-%d", i), wt.UserNote(u.ID))
	}

	e.waitStats(t, sbtest.Stats{Completed: len(users), Deliveries: len(users)}, 20*time.Second)
	for _, u := range users {
		if !e.Granted(u.ID) {
			t.Errorf("user %s not granted", u.ID)
		}
	}
	for _, s := range e.settled(t, len(users)) {
		if s.Outcome != worker.OutcomeCompleted || s.Count != 1 {
			t.Errorf("message %s settled %s (%s) at delivery %d, want completed at the first (a release raises no count)", s.ID, s.Outcome, s.Reason, s.Count)
		}
	}
}
