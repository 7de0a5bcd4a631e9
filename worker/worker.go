package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	clk "github.com/tpe-provisioner/tpe-provisioner/internal/clock"
	"github.com/tpe-provisioner/tpe-provisioner/internal/logkey"
)

// Options configure a Worker. Zero values take the defaults given per field.
type Options struct {
	// Concurrency is how many messages are worked at once (default 16). The receive loop
	// asks the source for at most as many messages as there are free workers.
	Concurrency int
	// MessageTimeout bounds the work on one message (default 2 min); a message that runs
	// out of time is abandoned.
	MessageTimeout time.Duration
	// DrainTimeout bounds how long shutdown waits for in-flight messages (default 30 s)
	// before it cancels them; cancelled messages are abandoned, never completed.
	DrainTimeout time.Duration
	// Retries is how many times a principal whose reconcile failed with a temporary error
	// is retried within the message before the message is abandoned (default 2; negative:
	// none). Waits honour the service's Retry-After, within RetryWaitMax.
	Retries int
	// RetryWaitMax caps one in-process retry wait (default 10 s). A Retry-After longer than
	// this is not waited for: the message is abandoned instead.
	RetryWaitMax time.Duration
	// Trust is what notifications must carry to be believed (see Decode).
	Trust Trust
	// Logger receives the audit records and the errors, each logged once where the message
	// is settled (default: discard).
	Logger *slog.Logger
	// Registerer receives the worker's metrics (nil: a private registry).
	Registerer prometheus.Registerer
	// Observer, when set, is told about every reconcile and settlement.
	Observer Observer
	// Lifecycle, when set, handles subscription lifecycle events; without it they are
	// logged and the message completes.
	Lifecycle LifecycleHandler
	// Probe checks whether a systemic fault is gone with the harmless calls the work makes
	// (an ACS GET, a user read, a membership check). It is called with backoff while the
	// circuit is open; when it passes, the message whose failure opened the circuit, held
	// under its lock meanwhile, is worked again, and only a retry that gets past the fault
	// closes the circuit (see circuit.go). Nil skips straight to that retry (or, when the
	// queue itself failed and no message is held, closes the circuit after the first wait).
	Probe func(ctx context.Context) error
	// ProbeBackoff is the wait before probe attempt n (0-based); default doubles from 1 s
	// to 1 min.
	ProbeBackoff func(attempt int) time.Duration
	// Clock drives every wait of the worker (lock renewal, retries, backoff); default the
	// system clock.
	Clock Clock
	// FanOut, when set, puts reconcile commands for targets on the queue. A group
	// notification without members@delta names the whole group; when the group has more than
	// FanOutAbove members, its members are handed to FanOut in batches of at most 100 and
	// the message completes, so that every replica shares the group and no one message has
	// to reconcile thousands of principals within MessageTimeout (it could never finish, and
	// every redelivery would start over). key is the same for every batch of one group in
	// one message and across that message's redeliveries: message ids derived from it and
	// the principal let the queue's duplicate detection drop what a redelivery sends again.
	// An error that says neither systemic nor temporary is taken as temporary. Without
	// FanOut every member is reconciled inside the message.
	FanOut func(ctx context.Context, key string, targets []Target) error
	// FanOutAbove is the group size above which FanOut is used (default 20).
	FanOutAbove int
	// Recheck, when set, puts a reconcile command for t on the queue, to be delivered later
	// than gaveUp (when the worker gave up on a write to t) by more than a write's whole
	// retry budget: the ACS client may have given up on a write (a timeout, retries spent)
	// that the service still applies after the reconcile's last read, and only a later look
	// at the principal can tell. The worker calls it for every such write of a reconcile
	// command; a failed Recheck fails the message (temporarily). Without it nothing is
	// scheduled and the next notification or resync repairs such a write.
	Recheck func(ctx context.Context, t Target, gaveUp time.Time) error
}

// fanOutBatch is the most targets handed to FanOut at once.
const fanOutBatch = 100

// Clock is the time source the worker waits on; tests inject one to make timing
// deterministic.
type Clock = clk.Clock

func (o Options) withDefaults() Options {
	o.Concurrency = cmp.Or(max(o.Concurrency, 0), 16)
	o.MessageTimeout = cmp.Or(o.MessageTimeout, 2*time.Minute)
	o.DrainTimeout = cmp.Or(o.DrainTimeout, 30*time.Second)
	switch {
	case o.Retries == 0:
		o.Retries = 2
	case o.Retries < 0:
		o.Retries = 0
	}
	o.RetryWaitMax = cmp.Or(o.RetryWaitMax, 10*time.Second)
	o.FanOutAbove = cmp.Or(max(o.FanOutAbove, 0), 20)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ProbeBackoff == nil {
		o.ProbeBackoff = defaultProbeBackoff
	}
	if o.Clock == nil {
		o.Clock = clk.System{}
	}
	return o
}

// Worker receives messages from a Source, reconciles the principals they name and settles
// each message by the design's table (settle.go).
type Worker struct {
	src     Source
	rec     *Reconciler
	dir     directory
	opts    Options
	log     *slog.Logger
	metrics *metrics
	circuit *circuit
	keyed   *keyed
	stats   *statsCounter

	running   atomic.Bool
	sourceErr atomic.Pointer[string] // the last receive error, nil after a good receive
}

// New returns a Worker consuming src. rec reconciles one principal; dir lists the members
// of groups named by notifications without a member delta.
func New(src Source, rec *Reconciler, dir directory, o Options) (*Worker, error) {
	switch {
	case src == nil:
		return nil, errors.New("worker: nil source")
	case rec == nil:
		return nil, errors.New("worker: nil reconciler")
	case dir == nil:
		return nil, errors.New("worker: nil directory")
	}
	o = o.withDefaults()
	m := newMetrics(o.Registerer)
	return &Worker{
		src: src, rec: rec, dir: dir, opts: o, log: o.Logger, metrics: m,
		circuit: newCircuit(o.Logger, m),
		keyed:   newKeyed(),
		stats:   newStatsCounter(),
	}, nil
}

// Ready reports nil when the worker is running, its source is connected and its circuit
// is closed; otherwise which of these failed (for the readiness probe, which may be served
// to anyone who reaches the ops port). It never holds the fault's own text, which can name
// a principal or echo an answer: that is logged where the fault was seen.
func (w *Worker) Ready() error {
	if !w.running.Load() {
		return errors.New("worker is not running")
	}
	if open, _ := w.circuit.state(); open {
		return errors.New("circuit open: a systemic fault paused receiving (its cause is in the log)")
	}
	if msg := w.sourceErr.Load(); msg != nil {
		return errors.New("source: receiving failed (the error is in the log)")
	}
	if r, ok := w.src.(interface{ Ready() error }); ok {
		return r.Ready()
	}
	return nil
}

// Stats returns what the worker has done so far.
func (w *Worker) Stats() Stats { return w.stats.snapshot() }

// Run receives and works messages until ctx is cancelled or a finite source is exhausted.
// On cancellation it stops receiving, lets in-flight messages finish within DrainTimeout,
// abandons what is left, and closes the source. It returns nil on a clean stop, or the
// error that ended the receive loop otherwise.
func (w *Worker) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("worker: Run called twice")
	}
	defer w.running.Store(false)

	// Messages are worked under their own context so that shutdown can let them finish.
	work, stopWork := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopWork(nil)
	probeCtx, stopProbe := context.WithCancel(ctx)
	var probing sync.WaitGroup
	probing.Go(func() {
		(&prober{circuit: w.circuit, probe: w.opts.Probe, backoff: w.opts.ProbeBackoff,
			clock: w.opts.Clock, log: w.log, timeout: 30 * time.Second}).run(probeCtx)
	})

	var inflight sync.WaitGroup
	loopErr := w.receiveLoop(ctx, work, &inflight)
	w.drain(ctx, &inflight, stopWork)
	stopProbe()
	probing.Wait()

	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := w.src.Close(cctx); err != nil {
		w.log.Warn("close source", slog.String(logkey.Error, err.Error()))
	}
	return loopErr
}

// drain waits for in-flight messages. After a cancellation it waits at most DrainTimeout,
// then cancels their work so they are abandoned.
func (w *Worker) drain(ctx context.Context, inflight *sync.WaitGroup, stopWork context.CancelCauseFunc) {
	done := make(chan struct{})
	go func() { inflight.Wait(); close(done) }()
	if ctx.Err() == nil { // a finite source ended: let everything finish
		<-done
		return
	}
	select {
	case <-done:
		return
	case <-w.opts.Clock.After(w.opts.DrainTimeout):
	}
	w.log.Warn("drain timeout: abandoning in-flight messages", slog.Duration(logkey.DrainTimeout, w.opts.DrainTimeout))
	stopWork(errShutdown)
	<-done
}

var errShutdown = fmt.Errorf("worker shutting down: %w", context.Canceled)

// receiveLoop is the only caller of Source.Receive. It asks for as many messages as there
// are free workers and starts one goroutine per message, which it tracks in inflight.
func (w *Worker) receiveLoop(ctx, work context.Context, inflight *sync.WaitGroup) error {
	slots := make(chan struct{}, w.opts.Concurrency) // one token per free worker
	for range w.opts.Concurrency {
		slots <- struct{}{}
	}
	var failures int
	for {
		if err := w.circuit.waitClosed(ctx); err != nil {
			return nil
		}
		n, err := takeSlots(ctx, slots)
		if err != nil {
			return nil
		}
		ds, err := w.receive(ctx, n)
		giveSlots(slots, n-len(ds))
		for _, d := range ds {
			w.metrics.inflight.Inc()
			inflight.Go(func() {
				defer func() { slots <- struct{}{}; w.metrics.inflight.Dec() }()
				w.handle(work, d)
			})
		}
		switch {
		case err == nil:
			failures = 0
			w.sourceErr.Store(nil)
		case errors.Is(err, io.EOF):
			return nil
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, errCircuitOpen):
			// A message hit a systemic fault; wait for the circuit at the top.
		default:
			failures++
			w.receiveFailed(ctx, err, failures)
		}
	}
}

var errCircuitOpen = errors.New("circuit opened")

// receive calls Source.Receive, cancelling the call if the circuit opens meanwhile, so no
// credit is left open for messages that could not be worked.
func (w *Worker) receive(ctx context.Context, n int) ([]*Delivery, error) {
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	tripped := w.circuit.tripped()
	go func() {
		select {
		case <-tripped:
			cancel(errCircuitOpen)
		case <-rctx.Done():
		}
	}()
	ds, err := w.src.Receive(rctx, n)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(rctx), errCircuitOpen) {
		err = errCircuitOpen
	}
	return ds, err
}

// receiveFailed records a receive error: systemic faults open the circuit, others pause
// the loop with a growing backoff.
func (w *Worker) receiveFailed(ctx context.Context, err error, failures int) {
	msg := err.Error()
	w.sourceErr.Store(&msg)
	if IsSystemic(err) {
		w.circuit.trip(err)
		return
	}
	w.log.Warn("receive failed", slog.String(logkey.Error, msg), slog.Int(logkey.Attempt, failures))
	select {
	case <-ctx.Done():
	case <-w.opts.Clock.After(receiveBackoff(failures)):
	}
}

// receiveBackoff grows from 100 ms to 30 s.
func receiveBackoff(failures int) time.Duration {
	return min(100*time.Millisecond<<min(failures-1, 9), 30*time.Second)
}

// takeSlots waits for one free worker, then takes every other free one without waiting.
func takeSlots(ctx context.Context, slots chan struct{}) (int, error) {
	select {
	case <-slots:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	n := 1
	for {
		select {
		case <-slots:
			n++
		default:
			return n, nil
		}
	}
}

func giveSlots(slots chan struct{}, n int) {
	for range n {
		slots <- struct{}{}
	}
}
