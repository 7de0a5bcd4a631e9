package servicebus

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// fakeBroker is an in-memory Service Bus queue behind fakeReceivers: peek-lock deliveries
// with lock expiry times, abandon → redelivery with the delivery count raised, dead-letter
// at maxDelivery, and a record of every settlement. Scripted faults make a receiver go
// silent, fail a receive, or fail a settlement.
type fakeBroker struct {
	lockDuration time.Duration
	maxDelivery  uint32
	clock        worker.Clock // lock times; nil = the system clock

	mu        sync.Mutex
	queue     []*azservicebus.ReceivedMessage
	changed   chan struct{} // closed and replaced on every change
	completed []string
	abandoned []string
	dead      []fakeDeadLetter
	renewals  map[string]int
	receivers []*fakeReceiver
	seq       int64

	// scripted faults
	silentReceivers int                                   // the first n receivers never deliver
	receiveErrs     []error                               // returned by the next ReceiveMessages calls
	settleErrs      map[string]error                      // message id → error for its next settlement
	onReceive       func(m *azservicebus.ReceivedMessage) // optional hook
}

type fakeDeadLetter struct {
	ID, Reason, Description string
}

var _ receiver = (*fakeReceiver)(nil)

func newFakeBroker(lockDuration time.Duration) *fakeBroker {
	return &fakeBroker{lockDuration: lockDuration, maxDelivery: 10, changed: make(chan struct{}),
		renewals: map[string]int{}, settleErrs: map[string]error{}}
}

// now is the broker's time, for locks.
func (b *fakeBroker) now() time.Time {
	if b.clock == nil {
		return time.Now()
	}
	return b.clock.Now()
}

// Send enqueues a message with the given id and body.
func (b *fakeBroker) Send(id string, body []byte, props map[string]any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	now := time.Now()
	seq := b.seq
	b.queue = append(b.queue, &azservicebus.ReceivedMessage{MessageID: id, Body: body,
		ApplicationProperties: props, EnqueuedTime: &now, SequenceNumber: &seq})
	b.notifyLocked()
}

func (b *fakeBroker) notifyLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// newReceiver is the factory a Source is built with.
func (b *fakeBroker) newReceiver(context.Context) (receiver, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := &fakeReceiver{b: b, silent: len(b.receivers) < b.silentReceivers}
	b.receivers = append(b.receivers, r)
	return r, nil
}

// settledCount returns how many messages left the queue for good or were abandoned.
func (b *fakeBroker) counts() (completed, abandoned, dead int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.completed), len(b.abandoned), len(b.dead)
}

// waitFor blocks until cond holds (checked under the broker's lock after every change) or
// the timeout passes; it reports whether cond held.
func (b *fakeBroker) waitFor(timeout time.Duration, cond func(b *fakeBroker) bool) bool {
	deadline := time.After(timeout)
	for {
		b.mu.Lock()
		ok := cond(b)
		ch := b.changed
		b.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
}

// fakeReceiver is one link to the broker.
type fakeReceiver struct {
	b      *fakeBroker
	silent bool

	mu     sync.Mutex
	closed bool
	busy   bool
}

func (r *fakeReceiver) ReceiveMessages(ctx context.Context, max int, _ *azservicebus.ReceiveMessagesOptions) ([]*azservicebus.ReceivedMessage, error) {
	r.mu.Lock()
	if r.busy {
		r.mu.Unlock()
		return nil, fmt.Errorf("ReceiveMessages called concurrently")
	}
	r.busy = true
	r.mu.Unlock()
	defer func() { r.mu.Lock(); r.busy = false; r.mu.Unlock() }()
	for {
		b := r.b
		b.mu.Lock()
		if len(b.receiveErrs) > 0 {
			err := b.receiveErrs[0]
			b.receiveErrs = b.receiveErrs[1:]
			b.mu.Unlock()
			return nil, err
		}
		if r.isClosed() {
			b.mu.Unlock()
			return nil, &azservicebus.Error{Code: azservicebus.CodeClosed}
		}
		if !r.silent && len(b.queue) > 0 {
			n := min(max, len(b.queue))
			out := b.queue[:n:n]
			b.queue = b.queue[n:]
			until := b.now().Add(b.lockDuration)
			for _, m := range out {
				m.DeliveryCount++
				u := until
				m.LockedUntil = &u
				if b.onReceive != nil {
					b.onReceive(m)
				}
			}
			b.notifyLocked()
			b.mu.Unlock()
			return out, nil
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ch:
		}
	}
}

func (r *fakeReceiver) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// settle runs one settlement under the broker's lock, failing it when scripted.
func (r *fakeReceiver) settle(m *azservicebus.ReceivedMessage, f func(b *fakeBroker)) error {
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if err, ok := b.settleErrs[m.MessageID]; ok {
		delete(b.settleErrs, m.MessageID)
		return err
	}
	if r.isClosed() {
		return &azservicebus.Error{Code: azservicebus.CodeClosed}
	}
	f(b)
	b.notifyLocked()
	return nil
}

func (r *fakeReceiver) CompleteMessage(_ context.Context, m *azservicebus.ReceivedMessage, _ *azservicebus.CompleteMessageOptions) error {
	return r.settle(m, func(b *fakeBroker) { b.completed = append(b.completed, m.MessageID) })
}

func (r *fakeReceiver) AbandonMessage(_ context.Context, m *azservicebus.ReceivedMessage, _ *azservicebus.AbandonMessageOptions) error {
	return r.settle(m, func(b *fakeBroker) {
		b.abandoned = append(b.abandoned, m.MessageID)
		if m.DeliveryCount >= b.maxDelivery {
			b.dead = append(b.dead, fakeDeadLetter{ID: m.MessageID, Reason: worker.ReasonMaxDeliveryCount})
			return
		}
		b.queue = append(b.queue, m)
	})
}

func (r *fakeReceiver) DeadLetterMessage(_ context.Context, m *azservicebus.ReceivedMessage, o *azservicebus.DeadLetterOptions) error {
	return r.settle(m, func(b *fakeBroker) {
		dl := fakeDeadLetter{ID: m.MessageID}
		if o != nil && o.Reason != nil {
			dl.Reason = *o.Reason
		}
		if o != nil && o.ErrorDescription != nil {
			dl.Description = *o.ErrorDescription
		}
		b.dead = append(b.dead, dl)
	})
}

func (r *fakeReceiver) RenewMessageLock(_ context.Context, m *azservicebus.ReceivedMessage, _ *azservicebus.RenewMessageLockOptions) error {
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if m.LockedUntil != nil && b.now().After(*m.LockedUntil) {
		return &azservicebus.Error{Code: azservicebus.CodeLockLost}
	}
	until := b.now().Add(b.lockDuration)
	m.LockedUntil = &until
	b.renewals[m.MessageID]++
	b.notifyLocked()
	return nil
}

func (r *fakeReceiver) Close(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}
