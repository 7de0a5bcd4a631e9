package sbtest_test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"
)

// TestRealNamespace runs the basic send/receive/complete against a real Service Bus queue,
// so the endpoint's behaviour can be compared with the service it stands in for.
func TestRealNamespace(t *testing.T) {
	cs, queue := os.Getenv("SERVICEBUS_TEST_CONNECTION_STRING"), os.Getenv("SERVICEBUS_TEST_QUEUE")
	if cs == "" || queue == "" {
		t.Skip("set SERVICEBUS_TEST_CONNECTION_STRING and SERVICEBUS_TEST_QUEUE to run against a real namespace")
	}
	c := newClient(t, cs)
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	id := "sbtest-" + hex.EncodeToString(b)
	send(t, newSender(t, c, queue), id, "hello")

	r := newReceiver(t, c, queue, 0)
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		for _, m := range receiveN(t, r, 1, time.Minute) {
			if m.MessageID != id {
				// Someone else's message: give it back untouched.
				_ = r.AbandonMessage(ctxFor(t, 10*time.Second), m, nil)
				continue
			}
			if string(m.Body) != "hello" || m.DeliveryCount < 1 || m.SequenceNumber == nil || m.LockedUntil == nil {
				t.Errorf("received %q DeliveryCount %d SequenceNumber %v LockedUntil %v", m.Body, m.DeliveryCount, m.SequenceNumber, m.LockedUntil)
			}
			if err := r.CompleteMessage(ctxFor(t, 10*time.Second), m, nil); err != nil {
				t.Fatalf("CompleteMessage: %v", err)
			}
			return
		}
	}
	t.Fatalf("message %s did not come back within a minute", id)
}
