package worker

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// circuit stops the worker from receiving while a systemic fault (ACS or Graph refusing
// our credentials, the queue connection gone for good) lasts, so that no message burns a
// delivery or is dead-lettered for a fault that is not its own. It is opened by trip and
// closed by a successful probe (see prober).
type circuit struct {
	log     *slog.Logger
	metrics *metrics

	mu     sync.Mutex
	open   bool
	cause  string        // a description of the fault, for Ready
	closed chan struct{} // closed while the circuit is closed; replaced when it opens
	trips  chan struct{} // closed when the circuit opens; replaced when it closes
	opened chan struct{} // signalled (buffered, 1) when the circuit opens
}

func newCircuit(log *slog.Logger, m *metrics) *circuit {
	c := &circuit{log: log, metrics: m, closed: make(chan struct{}), trips: make(chan struct{}),
		opened: make(chan struct{}, 1)}
	close(c.closed)
	return c
}

// trip opens the circuit because of err; it reports whether this call opened it.
func (c *circuit) trip(err error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open {
		return false
	}
	c.open = true
	c.cause = err.Error()
	c.closed = make(chan struct{})
	close(c.trips)
	c.metrics.circuitOpen.Set(1)
	select {
	case c.opened <- struct{}{}:
	default:
	}
	c.log.Error("circuit opened: systemic fault, receiving paused", slog.String(keyError, c.cause))
	return true
}

// reset closes the circuit.
func (c *circuit) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.open {
		return
	}
	c.open = false
	c.cause = ""
	close(c.closed)
	c.trips = make(chan struct{})
	c.metrics.circuitOpen.Set(0)
	c.log.Info("circuit closed: probe succeeded, receiving resumed")
}

// state returns whether the circuit is open and why.
func (c *circuit) state() (bool, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open, c.cause
}

// tripped returns a channel that is closed when the circuit next opens (at once if open).
func (c *circuit) tripped() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.trips
}

// waitClosed blocks until the circuit is closed or ctx ends.
func (c *circuit) waitClosed(ctx context.Context) error {
	c.mu.Lock()
	ch := c.closed
	c.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// prober closes the circuit once the fault is gone: each time the circuit opens it waits
// backoff(attempt) and calls probe, until a probe succeeds. A nil probe closes the circuit
// after the first wait, so receiving resumes and the next message tells whether the fault
// persists. prober returns when ctx ends.
type prober struct {
	circuit *circuit
	probe   func(context.Context) error
	backoff func(attempt int) time.Duration
	clock   Clock
	log     *slog.Logger
	timeout time.Duration // per probe call
}

func (p *prober) run(ctx context.Context) {
	attempt := 0
	var closedAt time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.circuit.opened:
		}
		// A fault that comes straight back after a good probe (a probe that cannot see it)
		// keeps the backoff growing instead of starting over.
		if closedAt.IsZero() || p.clock.Now().Sub(closedAt) > stableAfter {
			attempt = 0
		}
		var ok bool
		if attempt, ok = p.untilHealthy(ctx, attempt); !ok {
			return
		}
		closedAt = p.clock.Now()
		p.circuit.reset()
	}
}

// stableAfter is how long the circuit must stay closed for the probe backoff to restart.
const stableAfter = time.Minute

// untilHealthy probes with backoff from attempt on until a probe succeeds (true) or ctx
// ends (false); it returns the next attempt number.
func (p *prober) untilHealthy(ctx context.Context, attempt int) (int, bool) {
	for ; ; attempt++ {
		select {
		case <-ctx.Done():
			return attempt, false
		case <-p.clock.After(p.backoff(attempt)):
		}
		if p.probe == nil {
			return attempt + 1, true
		}
		pctx, cancel := context.WithTimeout(ctx, p.timeout)
		err := p.probe(pctx)
		cancel()
		if err == nil {
			return attempt + 1, true
		}
		if ctx.Err() != nil {
			return attempt, false
		}
		p.log.Warn("probe failed; circuit stays open", slog.Int(keyAttempt, attempt+1), slog.String(keyError, err.Error()))
	}
}

// defaultProbeBackoff doubles from 1 s to at most 1 min.
func defaultProbeBackoff(attempt int) time.Duration {
	d := time.Second << min(attempt, 6)
	return min(d, time.Minute)
}
