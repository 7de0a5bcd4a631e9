package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// fakeBroker is an in-memory peek-lock queue that is a Source: deliveries with lock expiry
// times, abandon → redelivery with the delivery count raised, dead-letter at maxDelivery,
// and a record of every settlement. Scripted faults fail a receive or a settlement. Each
// source() is one link to it; the Service Bus transport's own tests drive the real
// Source over a fake SDK receiver (worker/servicebus).
type fakeBroker struct {
	lockDuration time.Duration
	maxDelivery  uint32
	clock        Clock // lock times; nil = the system clock

	mu        sync.Mutex
	queue     []*fakeMsg
	changed   chan struct{} // closed and replaced on every change
	completed []string
	abandoned []string
	dead      []fakeDeadLetter
	renewals  map[string]int
	receivers []*fakeReceiver

	// scripted faults
	receiveErrs []error          // returned by the next Receive calls
	settleErrs  map[string]error // message id → error for its next settlement
	onReceive   func(m *fakeMsg) // optional hook
}

// fakeMsg is a message on the fake broker.
type fakeMsg struct {
	MessageID     string
	Body          []byte
	Props         map[string]any
	DeliveryCount uint32
	EnqueuedTime  time.Time
	LockedUntil   time.Time
}

type fakeDeadLetter struct {
	ID, Reason, Description string
}

var _ Source = (*fakeReceiver)(nil)

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
	b.queue = append(b.queue, &fakeMsg{MessageID: id, Body: body, Props: props, EnqueuedTime: time.Now()})
	b.notifyLocked()
}

func (b *fakeBroker) notifyLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// source returns a new link to the broker.
func (b *fakeBroker) source() *fakeReceiver {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := &fakeReceiver{b: b}
	b.receivers = append(b.receivers, r)
	return r
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
	b *fakeBroker

	mu     sync.Mutex
	closed bool
	busy   bool
}

var errFakeClosed = errors.New("fake broker: link closed")

func (r *fakeReceiver) Receive(ctx context.Context, max int) ([]*Delivery, error) {
	r.mu.Lock()
	if r.busy {
		r.mu.Unlock()
		return nil, fmt.Errorf("Receive called concurrently")
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
			return nil, errFakeClosed
		}
		if len(b.queue) > 0 {
			n := min(max, len(b.queue))
			out := b.queue[:n:n]
			b.queue = b.queue[n:]
			until := b.now().Add(b.lockDuration)
			ds := make([]*Delivery, len(out))
			for i, m := range out {
				m.DeliveryCount++
				m.LockedUntil = until
				if b.onReceive != nil {
					b.onReceive(m)
				}
				ds[i] = &Delivery{MessageID: m.MessageID, Body: m.Body, Properties: m.Props,
					DeliveryCount: m.DeliveryCount, EnqueuedTime: m.EnqueuedTime, LockedUntil: m.LockedUntil, Handle: m}
			}
			b.notifyLocked()
			b.mu.Unlock()
			return ds, nil
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
func (r *fakeReceiver) settle(d *Delivery, op string, f func(b *fakeBroker, m *fakeMsg)) error {
	m, ok := d.Handle.(*fakeMsg)
	if !ok {
		return fmt.Errorf("%s: message %s did not come from this source", op, d.MessageID)
	}
	if d.MarkSettled() {
		return fmt.Errorf("%s of %s: %w", op, d.MessageID, ErrAlreadySettled)
	}
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if err, ok := b.settleErrs[m.MessageID]; ok {
		delete(b.settleErrs, m.MessageID)
		return fmt.Errorf("%s: %w", op, err)
	}
	if r.isClosed() {
		return fmt.Errorf("%s: %w", op, errFakeClosed)
	}
	f(b, m)
	b.notifyLocked()
	return nil
}

func (r *fakeReceiver) Complete(_ context.Context, d *Delivery) error {
	return r.settle(d, "complete", func(b *fakeBroker, m *fakeMsg) { b.completed = append(b.completed, m.MessageID) })
}

func (r *fakeReceiver) Abandon(_ context.Context, d *Delivery) error {
	return r.settle(d, "abandon", func(b *fakeBroker, m *fakeMsg) {
		b.abandoned = append(b.abandoned, m.MessageID)
		if m.DeliveryCount >= b.maxDelivery {
			b.dead = append(b.dead, fakeDeadLetter{ID: m.MessageID, Reason: ReasonMaxDeliveryCount})
			return
		}
		b.queue = append(b.queue, m)
	})
}

func (r *fakeReceiver) DeadLetter(_ context.Context, d *Delivery, reason, description string) error {
	return r.settle(d, "dead-letter", func(b *fakeBroker, m *fakeMsg) {
		b.dead = append(b.dead, fakeDeadLetter{ID: m.MessageID, Reason: reason, Description: description})
	})
}

func (r *fakeReceiver) RenewLock(_ context.Context, d *Delivery) error {
	m, ok := d.Handle.(*fakeMsg)
	if !ok {
		return fmt.Errorf("renew lock: message %s did not come from this source", d.MessageID)
	}
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.now().After(m.LockedUntil) {
		return fmt.Errorf("renew lock: %w", ErrLockLost)
	}
	m.LockedUntil = b.now().Add(b.lockDuration)
	d.SetLockExpiry(m.LockedUntil)
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

// counts returns how many messages were completed, abandoned and dead-lettered.
func (b *fakeBroker) counts() (completed, abandoned, dead int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.completed), len(b.abandoned), len(b.dead)
}
