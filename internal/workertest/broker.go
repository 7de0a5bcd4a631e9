package workertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// Broker is an in-memory peek-lock queue behind worker.Source links: deliveries with lock
// expiry times, abandon → redelivery with the delivery count raised, dead-letter at
// MaxDelivery, and a record of every settlement. Scripted faults fail a receive or a
// settlement. Each Source() is one link to it. The Service Bus transport's own tests drive
// the real Source over a fake SDK receiver instead (worker/servicebus).
type Broker struct {
	LockDuration time.Duration
	MaxDelivery  uint32       // abandons after which a message is dead-lettered (default 10)
	Clock        worker.Clock // lock times; nil = the system clock
	// OnReceive, when set before the first Receive, runs under the broker's lock for each
	// message as it is delivered.
	OnReceive func(m *Message)

	mu          sync.Mutex
	queue       []*Message
	changed     chan struct{} // closed and replaced on every change
	completed   []string
	abandoned   []string
	dead        []BrokerDeadLetter
	renewals    map[string]int
	links       []*Link
	receiveErrs []error          // returned by the next Receive calls
	settleErrs  map[string]error // message id → error for its next settlement
}

// Message is a message on the broker.
type Message struct {
	MessageID     string
	Body          []byte
	Props         map[string]any
	DeliveryCount uint32
	EnqueuedTime  time.Time
	LockedUntil   time.Time
}

// BrokerDeadLetter is a message the broker dead-lettered, with the reason it was given.
type BrokerDeadLetter struct {
	ID, Reason, Description string
}

var _ worker.Source = (*Link)(nil)

// NewBroker returns an empty broker whose locks last lockDuration.
func NewBroker(lockDuration time.Duration) *Broker {
	return &Broker{LockDuration: lockDuration, MaxDelivery: 10, changed: make(chan struct{}),
		renewals: map[string]int{}, settleErrs: map[string]error{}}
}

func (b *Broker) now() time.Time {
	if b.Clock == nil {
		return time.Now()
	}
	return b.Clock.Now()
}

// Send enqueues a message with the given id (which may be empty) and body.
func (b *Broker) Send(id string, body []byte, props map[string]any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.queue = append(b.queue, &Message{MessageID: id, Body: body, Props: props, EnqueuedTime: time.Now()})
	b.notifyLocked()
}

func (b *Broker) notifyLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// FailReceive makes the next Receive calls, one each, return errs.
func (b *Broker) FailReceive(errs ...error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.receiveErrs = append(b.receiveErrs, errs...)
}

// FailSettle makes the next settlement of message id fail with err.
func (b *Broker) FailSettle(id string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.settleErrs[id] = err
}

// Source returns a new link to the broker.
func (b *Broker) Source() *Link {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := &Link{b: b}
	b.links = append(b.links, l)
	return l
}

// WaitFor blocks until cond holds (checked after every change of the broker) or the
// timeout passes; it reports whether cond held. cond may call the broker's accessors.
func (b *Broker) WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.After(timeout)
	for {
		b.mu.Lock()
		ch := b.changed
		b.mu.Unlock()
		if cond() {
			return true
		}
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
}

// Completed returns the ids of the completed messages, in order.
func (b *Broker) Completed() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.completed)
}

// Dead returns the dead-lettered messages, in order.
func (b *Broker) Dead() []BrokerDeadLetter {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.dead)
}

// Counts returns how many messages were completed, abandoned and dead-lettered.
func (b *Broker) Counts() (completed, abandoned, dead int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.completed), len(b.abandoned), len(b.dead)
}

// Renewals returns how many times message id's lock was renewed.
func (b *Broker) Renewals(id string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.renewals[id]
}

// LinksClosed reports whether every link Source returned has been closed.
func (b *Broker) LinksClosed() bool {
	b.mu.Lock()
	links := slices.Clone(b.links)
	b.mu.Unlock()
	return !slices.ContainsFunc(links, func(l *Link) bool { return !l.isClosed() })
}

// Link is one link to a Broker: a worker.Source.
type Link struct {
	b *Broker

	mu     sync.Mutex
	closed bool
	busy   bool
}

var errLinkClosed = errors.New("fake broker: link closed")

func (l *Link) Receive(ctx context.Context, max int) ([]*worker.Delivery, error) {
	l.mu.Lock()
	if l.busy {
		l.mu.Unlock()
		return nil, fmt.Errorf("Receive called concurrently")
	}
	l.busy = true
	l.mu.Unlock()
	defer func() { l.mu.Lock(); l.busy = false; l.mu.Unlock() }()
	for {
		b := l.b
		b.mu.Lock()
		if len(b.receiveErrs) > 0 {
			err := b.receiveErrs[0]
			b.receiveErrs = b.receiveErrs[1:]
			b.mu.Unlock()
			return nil, err
		}
		if l.isClosed() {
			b.mu.Unlock()
			return nil, errLinkClosed
		}
		if len(b.queue) > 0 {
			n := min(max, len(b.queue))
			out := b.queue[:n:n]
			b.queue = b.queue[n:]
			until := b.now().Add(b.LockDuration)
			ds := make([]*worker.Delivery, len(out))
			for i, m := range out {
				m.DeliveryCount++
				m.LockedUntil = until
				if b.OnReceive != nil {
					b.OnReceive(m)
				}
				ds[i] = &worker.Delivery{MessageID: m.MessageID, Body: m.Body, Properties: m.Props,
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

func (l *Link) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// settle runs one settlement under the broker's lock, failing it when scripted.
func (l *Link) settle(d *worker.Delivery, op string, f func(b *Broker, m *Message)) error {
	m, ok := d.Handle.(*Message)
	if !ok {
		return fmt.Errorf("%s: message %s did not come from this source", op, d.MessageID)
	}
	if d.MarkSettled() {
		return fmt.Errorf("%s of %s: %w", op, d.MessageID, worker.ErrAlreadySettled)
	}
	b := l.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if err, ok := b.settleErrs[m.MessageID]; ok {
		delete(b.settleErrs, m.MessageID)
		return fmt.Errorf("%s: %w", op, err)
	}
	if l.isClosed() {
		return fmt.Errorf("%s: %w", op, errLinkClosed)
	}
	f(b, m)
	b.notifyLocked()
	return nil
}

func (l *Link) Complete(_ context.Context, d *worker.Delivery) error {
	return l.settle(d, "complete", func(b *Broker, m *Message) { b.completed = append(b.completed, m.MessageID) })
}

func (l *Link) Abandon(_ context.Context, d *worker.Delivery) error {
	return l.settle(d, "abandon", func(b *Broker, m *Message) {
		b.abandoned = append(b.abandoned, m.MessageID)
		if m.DeliveryCount >= b.MaxDelivery {
			b.dead = append(b.dead, BrokerDeadLetter{ID: m.MessageID, Reason: worker.ReasonMaxDeliveryCount})
			return
		}
		b.queue = append(b.queue, m)
	})
}

func (l *Link) DeadLetter(_ context.Context, d *worker.Delivery, reason, description string) error {
	return l.settle(d, "dead-letter", func(b *Broker, m *Message) {
		b.dead = append(b.dead, BrokerDeadLetter{ID: m.MessageID, Reason: reason, Description: description})
	})
}

func (l *Link) RenewLock(_ context.Context, d *worker.Delivery) error {
	m, ok := d.Handle.(*Message)
	if !ok {
		return fmt.Errorf("renew lock: message %s did not come from this source", d.MessageID)
	}
	b := l.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.now().After(m.LockedUntil) {
		return fmt.Errorf("renew lock: %w", worker.ErrLockLost)
	}
	m.LockedUntil = b.now().Add(b.LockDuration)
	d.SetLockExpiry(m.LockedUntil)
	b.renewals[m.MessageID]++
	b.notifyLocked()
	return nil
}

func (l *Link) Close(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return nil
}
