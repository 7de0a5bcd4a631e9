package sbtest_test

import (
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/tpe-provisioner/tpe-provisioner/sbtest"
)

// A message sent with ScheduledEnqueueTime stays invisible until then, shows in a peek as
// scheduled, and is then enqueued as if sent at that instant: a new sequence number and
// enqueued time (message sequencing and timestamps, "Scheduled messages").
func TestScheduledEnqueueTimeHoldsTheMessageUntilItsTime(t *testing.T) {
	t.Parallel()
	s := sbtest.Start(t, sbtest.Options{})
	c := newClient(t, s.ConnectionString())
	sender := newSender(t, c, s.Queue())
	r := newReceiver(t, c, s.Queue(), 0)
	// Connect the receiver before the clock starts, so the wait below measures the schedule.
	if _, err := r.PeekMessages(ctxFor(t, 10*time.Second), 1, nil); err != nil {
		t.Fatalf("PeekMessages: %v", err)
	}

	at := time.Now().Add(700 * time.Millisecond)
	msg := &azservicebus.Message{MessageID: ptr("recheck"), Body: []byte("later"), ScheduledEnqueueTime: &at}
	if err := sender.SendMessage(ctxFor(t, 10*time.Second), msg, nil); err != nil {
		t.Fatalf("SendMessage with ScheduledEnqueueTime: %v", err)
	}
	// What is observed before the scheduled time must show the message held back; on a
	// machine slow enough to reach that time first, these checks have nothing to see.
	if st := stats(t, s); time.Now().Before(at) && st != (sbtest.Stats{Scheduled: 1}) {
		t.Fatalf("stats = %+v before the scheduled time, want the message scheduled and nothing active", st)
	}
	peeked, err := r.PeekMessages(ctxFor(t, 10*time.Second), 10, nil)
	if err != nil || len(peeked) != 1 || peeked[0].SequenceNumber == nil {
		t.Fatalf("PeekMessages = %d messages, %v; want the message", len(peeked), err)
	}
	scheduledSeq := int64(-1)
	if time.Now().Before(at) {
		if peeked[0].State != azservicebus.MessageStateScheduled {
			t.Errorf("peeked State = %v before the scheduled time, want scheduled", peeked[0].State)
		}
		scheduledSeq = *peeked[0].SequenceNumber
	}
	receiveNone(t, r, time.Until(at.Add(-150*time.Millisecond)))

	m := receiveN(t, r, 1, 5*time.Second)[0]
	got := time.Now()
	if got.Before(at) {
		t.Fatalf("received at %v, before its scheduled time %v", got, at)
	}
	if m.MessageID != "recheck" || string(m.Body) != "later" {
		t.Fatalf("received %q %q", m.MessageID, m.Body)
	}
	if m.ScheduledEnqueueTime == nil || !m.ScheduledEnqueueTime.Equal(at.Truncate(time.Millisecond)) {
		t.Errorf("ScheduledEnqueueTime = %v, want %v", m.ScheduledEnqueueTime, at)
	}
	if m.EnqueuedTime == nil || m.EnqueuedTime.Before(at.Add(-time.Millisecond)) {
		t.Errorf("EnqueuedTime = %v, want at or after the scheduled time %v", m.EnqueuedTime, at)
	}
	if m.SequenceNumber == nil || *m.SequenceNumber <= scheduledSeq { // scheduledSeq is -1 when not seen
		t.Errorf("SequenceNumber = %v, want a new one after the scheduled number %d", m.SequenceNumber, scheduledSeq)
	}
	if m.State != azservicebus.MessageStateActive {
		t.Errorf("State = %v, want active", m.State)
	}
	if err := r.CompleteMessage(ctxFor(t, 5*time.Second), m, nil); err != nil {
		t.Fatalf("CompleteMessage: %v", err)
	}
	waitStats(t, s, sbtest.Stats{Completed: 1, Deliveries: 1}, 5*time.Second)
}

// ScheduleMessages returns one sequence number per message; CancelScheduledMessages with
// them deletes exactly those messages, which are never delivered.
func TestCancelledScheduledMessagesAreNeverDelivered(t *testing.T) {
	t.Parallel()
	s := sbtest.Start(t, sbtest.Options{})
	c := newClient(t, s.ConnectionString())
	sender := newSender(t, c, s.Queue())
	r := newReceiver(t, c, s.Queue(), 0)

	at := time.Now().Add(500 * time.Millisecond)
	msgs := []*azservicebus.Message{
		{MessageID: ptr("cancel-1"), Body: []byte("x")},
		{MessageID: ptr("keep"), Body: []byte("y")},
		{MessageID: ptr("cancel-2"), Body: []byte("z")},
	}
	seqs, err := sender.ScheduleMessages(ctxFor(t, 10*time.Second), msgs, at, nil)
	if err != nil {
		t.Fatalf("ScheduleMessages: %v", err)
	}
	if len(seqs) != 3 || seqs[0] == seqs[1] || seqs[1] == seqs[2] {
		t.Fatalf("sequence numbers = %v, want three distinct", seqs)
	}
	if err := sender.CancelScheduledMessages(ctxFor(t, 10*time.Second), []int64{seqs[0], seqs[2]}, nil); err != nil {
		t.Fatalf("CancelScheduledMessages: %v", err)
	}
	// One message is left: still scheduled, or already enqueued on a slow machine.
	if st := stats(t, s); st.Scheduled+st.Active != 1 || st.Locked+st.Completed+st.Deliveries != 0 {
		t.Fatalf("stats = %+v after cancelling two of three, want one left", st)
	}
	m := receiveN(t, r, 1, 5*time.Second)[0]
	if m.MessageID != "keep" || time.Now().Before(at) {
		t.Fatalf("received %s at %v, want keep at or after %v", m.MessageID, time.Now(), at)
	}
	if err := r.CompleteMessage(ctxFor(t, 5*time.Second), m, nil); err != nil {
		t.Fatalf("CompleteMessage: %v", err)
	}
	receiveNone(t, r, 500*time.Millisecond)
	if st := stats(t, s); st != (sbtest.Stats{Completed: 1, Deliveries: 1}) {
		t.Fatalf("stats = %+v, want only keep delivered", st)
	}
}

// Scheduled messages take part in duplicate detection: a plain send of a scheduled
// message's id within the window is dropped (duplicate detection docs).
func TestScheduledMessageCountsForDuplicateDetection(t *testing.T) {
	t.Parallel()
	s := sbtest.Start(t, sbtest.Options{DuplicateDetection: true})
	c := newClient(t, s.ConnectionString())
	sender := newSender(t, c, s.Queue())
	at := time.Now().Add(400 * time.Millisecond)
	if _, err := sender.ScheduleMessages(ctxFor(t, 10*time.Second), []*azservicebus.Message{{MessageID: ptr("r"), Body: []byte("scheduled")}}, at, nil); err != nil {
		t.Fatalf("ScheduleMessages: %v", err)
	}
	// The id is logged when the message is scheduled: a plain send of it is dropped whether
	// or not the scheduled time has come.
	send(t, sender, "r", "plain")
	r := newReceiver(t, c, s.Queue(), 0)
	m := receiveN(t, r, 1, 5*time.Second)[0]
	if string(m.Body) != "scheduled" {
		t.Fatalf("received %q, want the scheduled copy", m.Body)
	}
	if err := r.CompleteMessage(ctxFor(t, 5*time.Second), m, nil); err != nil {
		t.Fatalf("CompleteMessage: %v", err)
	}
	receiveNone(t, r, 300*time.Millisecond)
	waitStats(t, s, sbtest.Stats{Completed: 1, Deliveries: 1, Duplicates: 1}, 5*time.Second)
}
