package sbtest_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/tpe-provisioner/tpe-provisioner/sbtest"
)

func TestSendSingleAndBatchThenReceiveAndComplete(t *testing.T) {
	t.Parallel()
	const lock = 30 * time.Second
	s := sbtest.Start(t, sbtest.Options{LockDuration: lock})
	c := newClient(t, s.ConnectionString())
	sender := newSender(t, c, s.Queue())

	props := map[string]any{
		"text": "x", "int32": int32(7), "int64": int64(1) << 40, "flag": true, "ratio": 1.5,
		"aeg-event-type": "Notification",
	}
	subject, contentType := "Microsoft.Graph.UserUpdated", "application/json"
	single := &azservicebus.Message{
		MessageID: ptr("single"), Body: []byte(`{"a":1}`), ApplicationProperties: props,
		Subject: &subject, ContentType: &contentType, CorrelationID: ptr("corr-1"),
	}
	if err := sender.SendMessage(ctxFor(t, 10*time.Second), single, nil); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	batch, err := sender.NewMessageBatch(ctxFor(t, 10*time.Second), nil)
	if err != nil {
		t.Fatalf("NewMessageBatch: %v", err)
	}
	for _, id := range []string{"b1", "b2", "b3"} {
		if err := batch.AddMessage(&azservicebus.Message{MessageID: ptr(id), Body: []byte("body-" + id)}, nil); err != nil {
			t.Fatalf("AddMessage %s: %v", id, err)
		}
	}
	if err := sender.SendMessageBatch(ctxFor(t, 10*time.Second), batch, nil); err != nil {
		t.Fatalf("SendMessageBatch: %v", err)
	}
	waitStats(t, s, sbtest.Stats{Active: 4}, 5*time.Second)

	before := time.Now()
	r := newReceiver(t, c, s.Queue(), 0)
	got := receiveN(t, r, 4, 10*time.Second)

	var ids []string
	var lastSeq int64
	tokens := map[[16]byte]bool{}
	for _, m := range got {
		ids = append(ids, m.MessageID)
		if m.DeliveryCount != 1 {
			t.Errorf("%s: DeliveryCount = %d, want 1", m.MessageID, m.DeliveryCount)
		}
		if m.SequenceNumber == nil || *m.SequenceNumber <= lastSeq {
			t.Errorf("%s: SequenceNumber = %v, want increasing after %d", m.MessageID, m.SequenceNumber, lastSeq)
		} else {
			lastSeq = *m.SequenceNumber
		}
		if m.EnqueuedTime == nil || m.EnqueuedTime.After(time.Now()) {
			t.Errorf("%s: EnqueuedTime = %v", m.MessageID, m.EnqueuedTime)
		}
		if m.LockedUntil == nil || m.LockedUntil.Before(before.Add(lock-time.Second)) || m.LockedUntil.After(time.Now().Add(lock)) {
			t.Errorf("%s: LockedUntil = %v, want about %v from receipt", m.MessageID, m.LockedUntil, lock)
		}
		if m.LockToken == ([16]byte{}) || tokens[m.LockToken] {
			t.Errorf("%s: LockToken %x is zero or repeated", m.MessageID, m.LockToken)
		}
		tokens[m.LockToken] = true
	}
	if want := []string{"single", "b1", "b2", "b3"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("received %v, want %v in sequence order", ids, want)
	}

	first := got[0]
	if string(first.Body) != `{"a":1}` {
		t.Errorf("Body = %q", first.Body)
	}
	if !reflect.DeepEqual(first.ApplicationProperties, props) {
		t.Errorf("ApplicationProperties = %#v, want %#v (types kept)", first.ApplicationProperties, props)
	}
	if first.Subject == nil || *first.Subject != subject || first.ContentType == nil || *first.ContentType != contentType ||
		first.CorrelationID == nil || *first.CorrelationID != "corr-1" {
		t.Errorf("Subject/ContentType/CorrelationID = %v/%v/%v", first.Subject, first.ContentType, first.CorrelationID)
	}
	if string(got[2].Body) != "body-b2" {
		t.Errorf("batch message body = %q, want body-b2", got[2].Body)
	}
	waitStats(t, s, sbtest.Stats{Locked: 4, Deliveries: 4}, 5*time.Second)

	for _, m := range got {
		if err := r.CompleteMessage(ctxFor(t, 5*time.Second), m, nil); err != nil {
			t.Fatalf("CompleteMessage %s: %v", m.MessageID, err)
		}
	}
	waitStats(t, s, sbtest.Stats{Completed: 4, Deliveries: 4}, 5*time.Second)
	receiveNone(t, r, 300*time.Millisecond)
}

func TestAbandonRedeliversWithDeliveryCountRaised(t *testing.T) {
	t.Parallel()
	s := sbtest.Start(t, sbtest.Options{})
	c := newClient(t, s.ConnectionString())
	send(t, newSender(t, c, s.Queue()), "m1", "payload")
	r := newReceiver(t, c, s.Queue(), 0)

	first := receiveN(t, r, 1, 10*time.Second)[0]
	props := map[string]any{"attempt": "first"}
	if err := r.AbandonMessage(ctxFor(t, 5*time.Second), first, &azservicebus.AbandonMessageOptions{PropertiesToModify: props}); err != nil {
		t.Fatalf("AbandonMessage: %v", err)
	}
	again := receiveN(t, r, 1, 10*time.Second)[0]

	if again.MessageID != "m1" || string(again.Body) != "payload" {
		t.Fatalf("redelivered %q %q, want m1 payload", again.MessageID, again.Body)
	}
	if again.DeliveryCount != first.DeliveryCount+1 {
		t.Errorf("DeliveryCount = %d after abandon, want %d", again.DeliveryCount, first.DeliveryCount+1)
	}
	if *again.SequenceNumber != *first.SequenceNumber {
		t.Errorf("SequenceNumber changed: %d -> %d", *first.SequenceNumber, *again.SequenceNumber)
	}
	if again.LockToken == first.LockToken {
		t.Errorf("redelivery reused the lock token")
	}
	if got := again.ApplicationProperties["attempt"]; got != "first" {
		t.Errorf("property modified on abandon = %v, want first", got)
	}
	if err := r.CompleteMessage(ctxFor(t, 5*time.Second), again, nil); err != nil {
		t.Fatalf("CompleteMessage: %v", err)
	}
	waitStats(t, s, sbtest.Stats{Completed: 1, Deliveries: 2}, 5*time.Second)
}

func TestDeadLetterKeepsReasonAndDescription(t *testing.T) {
	t.Parallel()
	s := sbtest.Start(t, sbtest.Options{})
	c := newClient(t, s.ConnectionString())
	msg := &azservicebus.Message{MessageID: ptr("bad"), Body: []byte("not json"), ApplicationProperties: map[string]any{"source": "graph"}}
	if err := newSender(t, c, s.Queue()).SendMessage(ctxFor(t, 10*time.Second), msg, nil); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	r := newReceiver(t, c, s.Queue(), 0)
	m := receiveN(t, r, 1, 10*time.Second)[0]
	reason, description := "malformed", "body is not JSON: invalid character 'o' in literal null"
	if err := r.DeadLetterMessage(ctxFor(t, 5*time.Second), m, &azservicebus.DeadLetterOptions{Reason: &reason, ErrorDescription: &description}); err != nil {
		t.Fatalf("DeadLetterMessage: %v", err)
	}
	waitStats(t, s, sbtest.Stats{DeadLettered: 1, Deliveries: 1}, 5*time.Second)
	receiveNone(t, r, 300*time.Millisecond)

	dlq := newReceiver(t, c, s.Queue(), azservicebus.SubQueueDeadLetter)
	d := receiveN(t, dlq, 1, 10*time.Second)[0]
	if d.MessageID != "bad" || string(d.Body) != "not json" || d.ApplicationProperties["source"] != "graph" {
		t.Errorf("dead-lettered message = %q %q %v, want it unchanged", d.MessageID, d.Body, d.ApplicationProperties)
	}
	if d.DeadLetterReason == nil || *d.DeadLetterReason != reason {
		t.Errorf("DeadLetterReason = %v, want %q", d.DeadLetterReason, reason)
	}
	if d.DeadLetterErrorDescription == nil || *d.DeadLetterErrorDescription != description {
		t.Errorf("DeadLetterErrorDescription = %v, want %q", d.DeadLetterErrorDescription, description)
	}
	if err := dlq.CompleteMessage(ctxFor(t, 5*time.Second), d, nil); err != nil {
		t.Fatalf("CompleteMessage on the dead-letter queue: %v", err)
	}
	waitStats(t, s, sbtest.Stats{Deliveries: 1}, 5*time.Second)
}

func TestReleasedMessageIsNotCounted(t *testing.T) {
	t.Parallel()
	s := sbtest.Start(t, sbtest.Options{})
	c := newClient(t, s.ConnectionString())
	sender := newSender(t, c, s.Queue())
	send(t, sender, "m1", "one")

	r1, err := c.NewReceiverForQueue(s.Queue(), nil)
	if err != nil {
		t.Fatalf("NewReceiverForQueue: %v", err)
	}
	// Five credits for one message: four stay open on the link after the call returns.
	got, err := r1.ReceiveMessages(ctxFor(t, 10*time.Second), 5, nil)
	if err != nil || len(got) != 1 {
		t.Fatalf("ReceiveMessages = %d messages, %v; want 1", len(got), err)
	}
	if err := r1.CompleteMessage(ctxFor(t, 5*time.Second), got[0], nil); err != nil {
		t.Fatalf("CompleteMessage: %v", err)
	}
	// m2 arrives on the open credit while nobody is receiving: the client releases it, the
	// endpoint offers it again on the remaining credit, and so on until the four credits
	// are spent.
	send(t, sender, "m2", "two")
	waitStats(t, s, sbtest.Stats{Active: 1, Completed: 1, Deliveries: 5}, 5*time.Second)
	if err := r1.Close(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatalf("Close: %v", err)
	}

	r2 := newReceiver(t, c, s.Queue(), 0)
	m2 := receiveN(t, r2, 1, 10*time.Second)[0]
	if m2.MessageID != "m2" || m2.DeliveryCount != 1 {
		t.Errorf("got %s with DeliveryCount %d, want m2 with 1 (releases are not failed deliveries)", m2.MessageID, m2.DeliveryCount)
	}
	if err := r2.CompleteMessage(ctxFor(t, 5*time.Second), m2, nil); err != nil {
		t.Fatalf("CompleteMessage: %v", err)
	}
	waitStats(t, s, sbtest.Stats{Completed: 2, Deliveries: 6}, 5*time.Second)
}

func TestDeferralIsRefusedClearly(t *testing.T) {
	t.Parallel()
	s := sbtest.Start(t, sbtest.Options{})
	c := newClient(t, s.ConnectionString())
	send(t, newSender(t, c, s.Queue()), "m1", "x")
	r := newReceiver(t, c, s.Queue(), 0)
	m := receiveN(t, r, 1, 10*time.Second)[0]

	err := r.DeferMessage(ctxFor(t, 10*time.Second), m, nil)
	if err == nil || !strings.Contains(err.Error(), "does not implement deferral") {
		t.Fatalf("DeferMessage error = %v, want one saying deferral is not implemented", err)
	}
	if err := r.CompleteMessage(ctxFor(t, 5*time.Second), m, nil); err != nil {
		t.Fatalf("CompleteMessage after the refused deferral: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

// Deliveries settled with different outcomes in one write (here by a bare rhea client) are
// each answered, and applied, with their own outcome.
func TestMixedOutcomesInOneWriteAreAnsweredPerDelivery(t *testing.T) {
	t.Parallel()
	s := sbtest.Start(t, sbtest.Options{})
	runNodeTest(t, s, "dispositions.test.js", 30*time.Second)
	// d1 is back after its abandon; "ok" from the second test is the one send not refused.
	waitStats(t, s, sbtest.Stats{Active: 2, Completed: 2, Deliveries: 3}, 5*time.Second)
}
