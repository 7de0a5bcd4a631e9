package sbtest_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/tpe-provisioner/tpe-provisioner/sbtest"
)

func TestConnectionDropReconnectsAndLosesNothing(t *testing.T) {
	t.Parallel()
	s := sbtest.Start(t, sbtest.Options{LockDuration: time.Second})
	c := newClient(t, s.ConnectionString())
	sender := newSender(t, c, s.Queue())
	want := map[string]bool{}
	for i := range 5 {
		id := fmt.Sprintf("m%d", i)
		send(t, sender, id, "x")
		want[id] = true
	}
	r := newReceiver(t, c, s.Queue(), 0)
	completed := map[string]bool{}
	held := receiveN(t, r, 5, 10*time.Second)
	for _, m := range held[:3] {
		if err := r.CompleteMessage(ctxFor(t, 5*time.Second), m, nil); err != nil {
			t.Fatalf("CompleteMessage: %v", err)
		}
		completed[m.MessageID] = true
	}

	// Cut the connection while a receive is waiting and two messages are still locked.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		msgs, err := r.ReceiveMessages(ctxFor(t, 10*time.Second), 1, nil)
		t.Logf("receive across the drop: %d message(s), err %v", len(msgs), err)
		for _, m := range msgs {
			if r.CompleteMessage(ctxFor(t, 5*time.Second), m, nil) == nil {
				completed[m.MessageID] = true
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	n, err := s.DropConnections(ctxFor(t, 5*time.Second))
	if err != nil || n == 0 {
		t.Fatalf("DropConnections = %d, %v; want at least one connection cut", n, err)
	}
	wg.Wait()

	// The same sender reconnects.
	for i := 5; i < 7; i++ {
		id := fmt.Sprintf("m%d", i)
		send(t, sender, id, "x")
		want[id] = true
	}
	// Settling on the dead link fails (the client's settle retries outlast this short
	// context) or falls back to $management; either way the message is completed now or
	// comes back when its lock expires.
	for _, m := range held[3:] {
		if err := r.CompleteMessage(ctxFor(t, time.Second), m, nil); err == nil {
			completed[m.MessageID] = true
		} else {
			t.Logf("settling %s after the drop: %v", m.MessageID, err)
		}
	}

	ctx := ctxFor(t, 15*time.Second)
	for len(completed) < len(want) {
		msgs, err := r.ReceiveMessages(ctx, 10, nil)
		if err != nil {
			t.Fatalf("ReceiveMessages after the drop (completed %v): %v", completed, err)
		}
		for _, m := range msgs {
			if err := r.CompleteMessage(ctxFor(t, 5*time.Second), m, nil); err != nil {
				t.Fatalf("CompleteMessage %s: %v", m.MessageID, err)
			}
			completed[m.MessageID] = true
		}
	}
	for id := range completed {
		if !want[id] {
			t.Errorf("completed %s, which was never sent", id)
		}
	}
	st := stats(t, s)
	if st.Completed != len(want) || st.Active != 0 || st.Locked != 0 || st.DeadLettered != 0 {
		t.Fatalf("stats = %+v, want all %d messages completed once and nothing left", st, len(want))
	}
}

func TestWrongKeyIsUnauthorized(t *testing.T) {
	t.Parallel()
	s := sbtest.Start(t, sbtest.Options{Key: "right-key"})
	cs := strings.Replace(s.ConnectionString(), "SharedAccessKey=right-key", "SharedAccessKey=wrong-key", 1)
	sender := newSender(t, newClient(t, cs), s.Queue())
	err := sender.SendMessage(ctxFor(t, 10*time.Second), &azservicebus.Message{Body: []byte("x")}, nil)
	if code(err) != azservicebus.CodeUnauthorizedAccess {
		t.Fatalf("SendMessage with the wrong key: %v, want code %s", err, azservicebus.CodeUnauthorizedAccess)
	}
	if st := stats(t, s); st.Active != 0 {
		t.Fatalf("stats = %+v, want nothing enqueued", st)
	}
}

func TestUnknownQueueIsNotFound(t *testing.T) {
	t.Parallel()
	s := sbtest.Start(t, sbtest.Options{})
	sender := newSender(t, newClient(t, s.ConnectionString()), "no-such-queue")
	err := sender.SendMessage(ctxFor(t, 10*time.Second), &azservicebus.Message{Body: []byte("x")}, nil)
	if err == nil || !strings.Contains(err.Error(), "could not be found") {
		t.Fatalf("SendMessage to an unknown queue: %v, want not found", err)
	}
}
