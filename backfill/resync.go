package backfill

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"time"

	clk "github.com/tpe-provisioner/tpe-provisioner/internal/clock"
	"github.com/tpe-provisioner/tpe-provisioner/internal/logkey"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// defaultResyncConcurrency keeps a resync from crowding out the message workers, which
// share the Graph and ACS budgets with it.
const defaultResyncConcurrency = 4

// Resyncer runs a backfill inside the long-running worker: on a schedule, and when a
// lifecycle event (missed notifications, a reauthorization) says notifications may have
// been lost. Only one resync runs at a time; triggers that arrive while one runs are
// coalesced into one follow-up. The brake and the listing rules are always on, and each
// scope listing is compared with the previous one (backfill_guard.go). Messages keep
// flowing meanwhile: Run is meant for its own goroutine and the backfill has its own
// concurrency.
type Resyncer struct {
	interval time.Duration
	clock    worker.Clock
	log      *slog.Logger
	metrics  *backfillMetrics
	pending  chan struct{} // holds at most one trigger
	resync   func(context.Context) (Summary, error)
}

// NewResyncer returns a Resyncer that runs Backfill with o every interval (0: only when
// triggered). Force, Out and Progress are cleared: a resync always brakes and reports
// through o.Logger and o.Registerer. DryRun is kept: a dry-run worker's resync plans and
// logs, and writes nothing. Concurrency 0 means 4.
func NewResyncer(interval time.Duration, o Options) *Resyncer {
	o.Force, o.Out, o.Progress = false, nil, nil
	o.Concurrency = cmp.Or(o.Concurrency, defaultResyncConcurrency)
	r := &Resyncer{interval: interval, clock: cmp.Or[worker.Clock](o.Clock, clk.System{}),
		log: cmp.Or(o.Logger, slog.New(slog.DiscardHandler)), metrics: newBackfillMetrics(o.Registerer),
		pending: make(chan struct{}, 1)}
	previous := 0 // users of the last scope listing; runs are one at a time
	r.resync = func(ctx context.Context) (Summary, error) {
		o.DeletedSince = time.Time{} // a fresh 30-day window each run
		o.PreviousListing = previous
		sum, err := Run(ctx, o)
		if sum.ScopeListed > 0 {
			previous = sum.ScopeListed // a complete listing, believed or not; never an empty one
		}
		return sum, err
	}
	return r
}

// Trigger asks for a resync as soon as the current one (if any) ends. It never blocks;
// many triggers before the next run starts make one run.
func (r *Resyncer) Trigger() {
	select {
	case r.pending <- struct{}{}:
	default:
	}
}

// Run schedules resyncs until ctx ends, one at a time, and logs each one's summary.
func (r *Resyncer) Run(ctx context.Context) {
	for {
		var tick <-chan time.Time
		if r.interval > 0 {
			tick = r.clock.After(r.interval)
		}
		var why string
		select {
		case <-ctx.Done():
			return
		case <-tick:
			why = "schedule"
		case <-r.pending:
			why = "trigger"
		}
		r.once(ctx, why)
	}
}

func (r *Resyncer) once(ctx context.Context, why string) {
	r.log.LogAttrs(ctx, slog.LevelInfo, "resync started", slog.String(logkey.Why, why))
	sum, err := r.resync(ctx)
	attrs := append([]slog.Attr{slog.String(logkey.Why, why)}, sum.LogAttrs()...)
	outcome := resyncApplied
	switch {
	case ctx.Err() != nil:
		outcome = resyncCanceled
		r.log.LogAttrs(ctx, slog.LevelInfo, "resync stopped", attrs...)
	case errors.Is(err, ErrBrake):
		outcome = resyncBraked
		r.log.LogAttrs(ctx, slog.LevelWarn, "resync braked: nothing applied",
			append(attrs, slog.String(logkey.Error, err.Error()))...)
	case errors.Is(err, ErrListing):
		outcome = resyncRefused
		r.log.LogAttrs(ctx, slog.LevelError, "resync refused the scope listing: nothing planned",
			append(attrs, slog.String(logkey.Error, err.Error()))...)
	case err != nil:
		outcome = resyncFailed
		r.log.LogAttrs(ctx, slog.LevelError, "resync failed", append(attrs, slog.String(logkey.Error, err.Error()))...)
	default:
		if sum.DryRun {
			outcome = resyncDryRun
		}
		r.log.LogAttrs(ctx, slog.LevelInfo, "resync finished", attrs...)
	}
	r.metrics.resyncRuns.WithLabelValues(outcome).Inc()
}
