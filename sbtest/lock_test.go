package sbtest_test

import (
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/tpe-provisioner/tpe-provisioner/sbtest"
)

func TestRenewLockKeepsMessagePastItsLock(t *testing.T) {
	t.Parallel()
	const lock = 2 * time.Second
	s := sbtest.Start(t, sbtest.Options{LockDuration: lock})
	c := newClient(t, s.ConnectionString())
	send(t, newSender(t, c, s.Queue()), "slow", "x")
	r := newReceiver(t, c, s.Queue(), 0)
	m := receiveN(t, r, 1, 10*time.Second)[0]
	firstUntil := *m.LockedUntil

	// Hold the message for twice its lock, renewing every half second.
	end := time.Now().Add(2 * lock)
	for time.Now().Before(end) {
		time.Sleep(500 * time.Millisecond)
		if err := r.RenewMessageLock(ctxFor(t, 5*time.Second), m, nil); err != nil {
			t.Fatalf("RenewMessageLock: %v", err)
		}
	}
	if !m.LockedUntil.After(firstUntil.Add(lock)) {
		t.Errorf("LockedUntil = %v after renewals, want past %v", m.LockedUntil, firstUntil.Add(lock))
	}
	if st := stats(t, s); st.Deliveries != 1 || st.Locked != 1 {
		t.Fatalf("stats = %+v, want the message still locked after one delivery", st)
	}
	if err := r.CompleteMessage(ctxFor(t, 5*time.Second), m, nil); err != nil {
		t.Fatalf("CompleteMessage after renewals: %v", err)
	}
	waitStats(t, s, sbtest.Stats{Completed: 1, Deliveries: 1}, 5*time.Second)
}

func TestLockExpiryRedeliversAndStaleSettleIsLockLost(t *testing.T) {
	t.Parallel()
	s := sbtest.Start(t, sbtest.Options{LockDuration: time.Second})
	c := newClient(t, s.ConnectionString())
	send(t, newSender(t, c, s.Queue()), "m1", "x")
	r := newReceiver(t, c, s.Queue(), 0)

	stale := receiveN(t, r, 1, 10*time.Second)[0]
	again := receiveN(t, r, 1, 10*time.Second)[0] // comes back once the lock expires
	if again.MessageID != "m1" || again.DeliveryCount != 2 {
		t.Fatalf("redelivered %s with DeliveryCount %d, want m1 with 2", again.MessageID, again.DeliveryCount)
	}
	if elapsed := again.LockedUntil.Sub(*stale.LockedUntil); elapsed < 900*time.Millisecond {
		t.Errorf("redelivered %v after the first lock's end, want at least its duration", elapsed)
	}

	err := r.CompleteMessage(ctxFor(t, 5*time.Second), stale, nil)
	if code(err) != azservicebus.CodeLockLost {
		t.Fatalf("CompleteMessage with the expired lock: %v, want code %s", err, azservicebus.CodeLockLost)
	}
	err = r.RenewMessageLock(ctxFor(t, 5*time.Second), stale, nil)
	if code(err) != azservicebus.CodeLockLost {
		t.Fatalf("RenewMessageLock with the expired lock: %v, want code %s", err, azservicebus.CodeLockLost)
	}
	if err := r.CompleteMessage(ctxFor(t, 5*time.Second), again, nil); err != nil {
		t.Fatalf("CompleteMessage with the current lock: %v", err)
	}
	waitStats(t, s, sbtest.Stats{Completed: 1, Deliveries: 2}, 5*time.Second)
}

func TestMaxDeliveryCountDeadLetters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fail func(t *testing.T, r *azservicebus.Receiver, m *azservicebus.ReceivedMessage)
	}{
		{"abandon", func(t *testing.T, r *azservicebus.Receiver, m *azservicebus.ReceivedMessage) {
			if err := r.AbandonMessage(ctxFor(t, 5*time.Second), m, nil); err != nil {
				t.Fatalf("AbandonMessage: %v", err)
			}
		}},
		{"lock expiry", func(*testing.T, *azservicebus.Receiver, *azservicebus.ReceivedMessage) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const maxDeliveries = 3
			s := sbtest.Start(t, sbtest.Options{LockDuration: 700 * time.Millisecond, MaxDeliveryCount: maxDeliveries})
			c := newClient(t, s.ConnectionString())
			send(t, newSender(t, c, s.Queue()), "poison", "x")
			r := newReceiver(t, c, s.Queue(), 0)

			for i := 1; i <= maxDeliveries; i++ {
				m := receiveN(t, r, 1, 10*time.Second)[0]
				if m.DeliveryCount != uint32(i) {
					t.Fatalf("delivery %d: DeliveryCount = %d", i, m.DeliveryCount)
				}
				tt.fail(t, r, m)
			}
			waitStats(t, s, sbtest.Stats{DeadLettered: 1, Deliveries: maxDeliveries}, 5*time.Second)
			receiveNone(t, r, 300*time.Millisecond)

			dlq := newReceiver(t, c, s.Queue(), azservicebus.SubQueueDeadLetter)
			d := receiveN(t, dlq, 1, 10*time.Second)[0]
			if d.MessageID != "poison" || d.DeadLetterReason == nil || *d.DeadLetterReason != "MaxDeliveryCountExceeded" {
				t.Fatalf("dead-lettered %s with reason %v, want poison with MaxDeliveryCountExceeded", d.MessageID, d.DeadLetterReason)
			}
			if d.DeadLetterErrorDescription == nil || *d.DeadLetterErrorDescription == "" {
				t.Errorf("DeadLetterErrorDescription is empty")
			}
		})
	}
}
