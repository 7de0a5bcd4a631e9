package sbtest_test

import (
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/tpe-provisioner/tpe-provisioner/sbtest"
)

// With requiresDuplicateDetection a message whose id was sent within the window is
// accepted and dropped, in single and batch sends alike (the duplicate detection docs);
// once the window has passed the id is new again.
func TestDuplicateDetectionDropsRepeatedIDsWithinTheWindow(t *testing.T) {
	t.Parallel()
	const window = 3 * time.Second
	s := sbtest.Start(t, sbtest.Options{DuplicateDetection: true, DuplicateDetectionWindow: window})
	c := newClient(t, s.ConnectionString())
	sender := newSender(t, c, s.Queue())

	send(t, sender, "a", "first a") // the window for "a" starts here
	firstSent := time.Now()
	send(t, sender, "a", "second a")
	batch, err := sender.NewMessageBatch(ctxFor(t, 10*time.Second), nil)
	if err != nil {
		t.Fatalf("NewMessageBatch: %v", err)
	}
	for _, m := range []struct{ id, body string }{{"b", "first b"}, {"a", "third a"}, {"b", "second b"}, {"c", "first c"}} {
		if err := batch.AddMessage(&azservicebus.Message{MessageID: ptr(m.id), Body: []byte(m.body)}, nil); err != nil {
			t.Fatalf("AddMessage: %v", err)
		}
	}
	if err := sender.SendMessageBatch(ctxFor(t, 10*time.Second), batch, nil); err != nil {
		t.Fatalf("SendMessageBatch with duplicates: %v, want success (duplicates are accepted and dropped)", err)
	}
	waitStats(t, s, sbtest.Stats{Active: 3, Duplicates: 3}, 5*time.Second)

	r, err := c.NewReceiverForQueue(s.Queue(), &azservicebus.ReceiverOptions{ReceiveMode: azservicebus.ReceiveModeReceiveAndDelete})
	if err != nil {
		t.Fatalf("NewReceiverForQueue: %v", err)
	}
	t.Cleanup(func() { _ = r.Close(ctxFor(t, 5*time.Second)) })
	var bodies []string
	for _, m := range receiveN(t, r, 3, 10*time.Second) {
		bodies = append(bodies, string(m.Body))
	}
	if want := []string{"first a", "first b", "first c"}; len(bodies) != 3 || bodies[0] != want[0] || bodies[1] != want[1] || bodies[2] != want[2] {
		t.Fatalf("received %q, want %q (the first copy of each id)", bodies, want)
	}

	// The window counts from the first send of "a": after it, "a" is a new message.
	time.Sleep(time.Until(firstSent.Add(window + 200*time.Millisecond)))
	send(t, sender, "a", "fourth a")
	m := receiveN(t, r, 1, 10*time.Second)[0]
	if string(m.Body) != "fourth a" {
		t.Fatalf("after the window received %q, want fourth a", m.Body)
	}
	waitStats(t, s, sbtest.Stats{Completed: 4, Deliveries: 4, Duplicates: 3}, 5*time.Second)
}

// A queue created without requiresDuplicateDetection (the default) keeps every copy.
func TestWithoutDuplicateDetectionEveryCopyIsKept(t *testing.T) {
	t.Parallel()
	s := sbtest.Start(t, sbtest.Options{})
	sender := newSender(t, newClient(t, s.ConnectionString()), s.Queue())
	send(t, sender, "a", "x")
	send(t, sender, "a", "x")
	waitStats(t, s, sbtest.Stats{Active: 2}, 5*time.Second)
}
