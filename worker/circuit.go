package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/internal/logkey"
)

// circuit stops the worker from receiving while a systemic fault (ACS or Graph refusing
// our credentials, the queue connection gone for good) lasts, so that no message burns a
// delivery or is dead-lettered for a fault that is not its own. It is opened by trip and
// closed by a successful probe (see prober).
//
// # Why the probe ends with a held message
//
// A probe can only exercise what it can do harmlessly: read a user with our $select, check
// group membership, read an assignment. A fault can sit in an operation no harmless probe
// makes — ACS refusing only PUT, Graph refusing only the membership read — and
// then a probe passes, the circuit closes, the same messages fail again, and each failure
// raises a delivery count until the broker dead-letters them (MaxDeliveryCountExceeded):
// an outage of an hour loses every message. The design says "probe with the operations
// that failed", and the one sure way to make exactly those operations again is to work the
// message that failed again.
//
// So the message whose systemic failure opened the circuit becomes the witness: it is not
// abandoned but held under its lock (renewal goes on, so its delivery count never rises),
// and the probe's last step, after the configured probe passed, is a retry of its whole
// work. Only when that retry gets past the fault does the circuit close, and the witness
// is settled by the retry's settlement (completed, usually). While the retry keeps failing
// on a systemic error the circuit stays open, the probe backs off (to a minute), and
// nothing is received. Other messages that hit the fault meanwhile are abandoned once
// each (their count rises by one) and stay in the queue until the circuit closes;
// messages received as the circuit opened wait under their locks. So a fault that lasts
// hours dead-letters nothing and raises no count by more than one, and when it clears the
// witness completes first and the rest are received and complete.
//
// Trade-offs: the witness holds one worker slot for the outage; a witness whose lock is
// lost anyway (the broker unreachable for longer than the lock) is still a valid probe,
// its settlement fails and it is delivered again later. On shutdown the witness is
// abandoned like any message cut short. A fault raised by the queue itself (a receive
// error) has no witness; the configured probe alone decides. Should the probe pass before
// the failing message has become the witness (a probe backoff shorter than the work), the
// circuit closes without it and that message is abandoned once, as any other.
type circuit struct {
	log     *slog.Logger
	metrics *metrics

	mu     sync.Mutex
	open   bool
	cause  string        // a description of the fault, for Ready
	closed chan struct{} // closed while the circuit is closed; replaced when it opens
	trips  chan struct{} // closed when the circuit opens; replaced when it closes
	opened chan struct{} // signalled (buffered, 1) when the circuit opens
	held   *witness      // the message held as the probe's last step; nil if none
	quit   chan struct{} // closed when the prober stops: a witness gives up
}

// witness is a message held while the circuit is open (see the circuit's doc): the prober
// asks it to work again and learns whether that got past the fault.
type witness struct {
	retry  chan struct{} // prober → holder: work the message again now
	passed chan bool     // holder → prober: whether the retry got past the systemic fault
	done   chan struct{} // closed when the holder stopped holding
}

func newCircuit(log *slog.Logger, m *metrics) *circuit {
	c := &circuit{log: log, metrics: m, closed: make(chan struct{}), trips: make(chan struct{}),
		opened: make(chan struct{}, 1), quit: make(chan struct{})}
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
	c.log.Error("circuit opened: systemic fault, receiving paused", slog.String(logkey.Error, c.cause))
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

// hold makes the caller the witness, if the circuit is open and has none yet.
func (c *circuit) hold() (*witness, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.quit:
		return nil, false
	default:
	}
	if !c.open || c.held != nil {
		return nil, false
	}
	c.held = &witness{retry: make(chan struct{}), passed: make(chan bool, 1), done: make(chan struct{})}
	return c.held, true
}

// unhold ends wit's hold.
func (c *circuit) unhold(wit *witness) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held == wit {
		c.held = nil
	}
	close(wit.done)
}

// witness returns the held message, or nil.
func (c *circuit) witness() *witness {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held
}

// stop tells a witness, now and later, that no probe will come.
func (c *circuit) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.quit:
	default:
		close(c.quit)
	}
}

// holdWhileSystemic keeps a message that failed on a systemic fault as the circuit's
// witness: under its lock, worked again each time the prober asks, until a retry gets past
// the fault (its settlement is returned) or the worker stops (abandoned). A message that is
// not the witness, or did not fail systemically, keeps its settlement.
func (w *Worker) holdWhileSystemic(work context.Context, d *Delivery, v settlement, log *slog.Logger) settlement {
	if v.reason != reasonSystemic {
		return v
	}
	wit, ok := w.circuit.hold()
	if !ok {
		return v
	}
	defer w.circuit.unhold(wit)
	log.Warn("message held under its lock while the circuit is open; retrying it is the probe's last step",
		slog.String(logkey.Error, v.err.Error()))
	for {
		select {
		case <-work.Done():
			return settlement{outcome: OutcomeAbandoned, reason: "shutdown", err: context.Cause(work)}
		case <-w.circuit.quit:
			return settlement{outcome: OutcomeAbandoned, reason: "shutdown", err: errShutdown}
		case <-wit.retry:
		}
		v = w.attempt(work, d, log)
		passed := v.reason != reasonSystemic
		wit.passed <- passed
		if passed {
			return v
		}
	}
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
	defer p.circuit.stop()
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
		err := p.once(ctx)
		if err == nil {
			return attempt + 1, true
		}
		if ctx.Err() != nil {
			return attempt, false
		}
		p.log.Warn("probe failed; circuit stays open", slog.Int(logkey.Attempt, attempt+1), slog.String(logkey.Error, err.Error()))
	}
}

// errWitnessFailed says the held message failed again on a systemic fault.
var errWitnessFailed = errors.New("the held message failed again on a systemic fault")

// once runs the configured probe, then, if a message is held, its retry.
func (p *prober) once(ctx context.Context) error {
	if p.probe != nil {
		pctx, cancel := context.WithTimeout(ctx, p.timeout)
		err := p.probe(pctx)
		cancel()
		if err != nil {
			return err
		}
	}
	wit := p.circuit.witness()
	if wit == nil {
		return nil
	}
	select {
	case wit.retry <- struct{}{}:
	case <-wit.done:
		return nil // the holder gave up meanwhile: nothing left to try
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case passed := <-wit.passed:
		if !passed {
			return errWitnessFailed
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// defaultProbeBackoff doubles from 1 s to at most 1 min.
func defaultProbeBackoff(attempt int) time.Duration {
	d := time.Second << min(attempt, 6)
	return min(d, time.Minute)
}
