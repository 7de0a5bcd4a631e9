package worker

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Delivery is one message handed to the worker under a peek-lock: the worker settles it
// exactly once, through the Source it came from.
type Delivery struct {
	MessageID  string
	Body       []byte
	Properties map[string]any // application properties; nil when none
	// DeliveryCount is 1 on the first delivery and grows with every abandon or lock expiry.
	DeliveryCount uint32
	EnqueuedTime  time.Time
	// LockedUntil is when the lock taken at receive time expires; zero when the source has
	// no locks (file and memory sources). LockExpiry returns the value after renewals.
	LockedUntil time.Time

	// Handle is the source's own record of the message, set by the source that made the
	// delivery and read back when it is settled; the worker never looks at it.
	Handle any

	mu          sync.Mutex
	lockExpiry  time.Time // LockedUntil, moved on by each renewal
	settledOnce bool
}

// LockExpiry returns when the message's lock expires now, after any renewals; zero when
// the source has no locks. It is safe to call while the lock is being renewed.
func (d *Delivery) LockExpiry() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lockExpiry.IsZero() {
		return d.LockedUntil
	}
	return d.lockExpiry
}

// SetLockExpiry records a renewed lock; sources call it from RenewLock.
func (d *Delivery) SetLockExpiry(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lockExpiry = t
}

// MarkSettled marks the delivery settled and reports whether it already was: a source uses
// it to refuse a second settlement instead of double-counting.
func (d *Delivery) MarkSettled() (already bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	already, d.settledOnce = d.settledOnce, true
	return already
}

// Source is the queue the worker consumes. Receive is called from one goroutine only;
// the settlement methods and RenewLock are safe for concurrent use.
type Source interface {
	// Receive blocks until at least one message is available and returns at most max of
	// them (each call grants exactly max credits). A finite source returns io.EOF once it
	// is exhausted and nothing is pending. An error whose Systemic() is true (errors.go)
	// means the source cannot work at all: the worker opens its circuit.
	Receive(ctx context.Context, max int) ([]*Delivery, error)
	Complete(ctx context.Context, d *Delivery) error
	// Abandon returns the message to the queue; its delivery count grows.
	Abandon(ctx context.Context, d *Delivery) error
	DeadLetter(ctx context.Context, d *Delivery, reason, description string) error
	// RenewLock extends the message's lock; afterwards d.LockExpiry tells the new expiry.
	RenewLock(ctx context.Context, d *Delivery) error
	Close(ctx context.Context) error
}

// ErrLockLost is wrapped by a settlement or renewal error when the message's lock has
// expired: the message will be delivered again, so the worker logs it and moves on.
var ErrLockLost = errors.New("message lock lost")

// ErrAlreadySettled is returned when a delivery is settled twice.
var ErrAlreadySettled = errors.New("message already settled")

// Outcome is how a message left the worker.
type Outcome string

const (
	OutcomeCompleted    Outcome = "completed"     // done; removed from the queue
	OutcomeDeadLettered Outcome = "dead_lettered" // moved to the dead-letter queue with a reason
	OutcomeAbandoned    Outcome = "abandoned"     // returned for redelivery (delivery count grows)
	// OutcomeReleased means the worker could not settle the message (its lock was lost or
	// the settlement failed): the broker will deliver it again once the lock expires.
	OutcomeReleased Outcome = "released"
)

// sourceFault is a source error classified for the worker: systemic faults (the
// connection is gone for good, the credentials are refused) open the circuit; others are
// retried after a pause.
type sourceFault struct {
	op       string
	err      error
	systemic bool
}

// SourceError classifies a source's failed op for the worker: systemic (the worker opens its
// circuit) or temporary (retried after a pause).
func SourceError(op string, err error, systemic bool) error {
	return &sourceFault{op: op, err: err, systemic: systemic}
}

func (e *sourceFault) Error() string   { return e.op + ": " + e.err.Error() }
func (e *sourceFault) Unwrap() error   { return e.err }
func (e *sourceFault) Systemic() bool  { return e.systemic }
func (e *sourceFault) Temporary() bool { return !e.systemic }
