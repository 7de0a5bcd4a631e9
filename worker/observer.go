package worker

import (
	"context"
	"maps"
	"sync"
)

// Observer is told about every reconcile and every settlement, for the demo's table and the
// benchmark. Its methods are called from the worker's goroutines concurrently and must not
// block. Neither d nor res may be modified.
type Observer interface {
	// Reconciled reports one principal's reconcile: err is nil on success.
	Reconciled(d *Delivery, t Target, res Result, err error)
	// Settled reports how a message left the worker; reason is the dead-letter reason or,
	// for abandoned and released messages, a short cause.
	Settled(d *Delivery, outcome Outcome, reason string)
}

// LifecycleHandler acts on Graph subscription lifecycle events (reauthorize, recreate,
// resync). Its errors are classified like a reconcile's (errors.go): temporary or
// unclassified → the message is abandoned; systemic → the circuit opens; *PermanentError →
// dead-lettered when nothing else in the message needs a retry.
type LifecycleHandler interface {
	HandleLifecycle(ctx context.Context, ev LifecycleEvent) error
}

// Stats counts what a worker did since it was created.
type Stats struct {
	Messages   map[Outcome]int // messages by how they were settled
	Reconciles map[Action]int  // successful reconciles by action
	Errors     int             // reconciles that ended in an error
	Coalesced  int             // reconciles answered by a run another message started
}

// statsCounter is the worker's running Stats.
type statsCounter struct {
	mu sync.Mutex
	s  Stats
}

func newStatsCounter() *statsCounter {
	return &statsCounter{s: Stats{Messages: map[Outcome]int{}, Reconciles: map[Action]int{}}}
}

func (c *statsCounter) settled(o Outcome) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s.Messages[o]++
}

func (c *statsCounter) reconciled(a Action, err error, shared bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if shared {
		c.s.Coalesced++
	}
	if err != nil {
		c.s.Errors++
		return
	}
	c.s.Reconciles[a]++
}

func (c *statsCounter) snapshot() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.s
	s.Messages = maps.Clone(c.s.Messages)
	s.Reconciles = maps.Clone(c.s.Reconciles)
	return s
}
