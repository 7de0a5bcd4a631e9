package worker

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"time"
)

// defaultResyncConcurrency keeps a resync from crowding out the message workers, which
// share the Graph and ACS budgets with it.
const defaultResyncConcurrency = 4

// Resyncer runs a backfill inside the long-running worker: on a schedule, and when a
// lifecycle event (missed notifications, a reauthorization) says notifications may have
// been lost. Only one resync runs at a time; triggers that arrive while one runs are
// coalesced into one follow-up. The brake is always on. Messages keep flowing meanwhile:
// Run is meant for its own goroutine and the backfill has its own concurrency.
type Resyncer struct {
	interval time.Duration
	clock    Clock
	log      *slog.Logger
	pending  chan struct{} // holds at most one trigger
	resync   func(context.Context) (Summary, error)
}

// NewResyncer returns a Resyncer that runs Backfill with o every interval (0: only when
// triggered). Force, DryRun, Out and Progress are cleared: a resync always brakes, always
// applies, and reports through o.Logger. Concurrency 0 means 4.
func NewResyncer(interval time.Duration, o BackfillOptions) *Resyncer {
	o.Force, o.DryRun, o.Out, o.Progress = false, false, nil, nil
	o.Concurrency = cmp.Or(o.Concurrency, defaultResyncConcurrency)
	r := &Resyncer{interval: interval, clock: cmp.Or[Clock](o.Clock, systemClock{}),
		log: cmp.Or(o.Logger, slog.New(slog.DiscardHandler)), pending: make(chan struct{}, 1)}
	r.resync = func(ctx context.Context) (Summary, error) {
		o.DeletedSince = time.Time{} // a fresh 30-day window each run
		return Backfill(ctx, o)
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
	r.log.LogAttrs(ctx, slog.LevelInfo, "resync started", slog.String(backfillKeyWhy, why))
	sum, err := r.resync(ctx)
	attrs := append([]slog.Attr{slog.String(backfillKeyWhy, why)}, sum.LogAttrs()...)
	switch {
	case ctx.Err() != nil:
		r.log.LogAttrs(ctx, slog.LevelInfo, "resync stopped", attrs...)
	case errors.Is(err, ErrBrake):
		r.log.LogAttrs(ctx, slog.LevelWarn, "resync braked: revokes withheld",
			append(attrs, slog.String(keyError, err.Error()))...)
	case err != nil:
		r.log.LogAttrs(ctx, slog.LevelError, "resync failed", append(attrs, slog.String(keyError, err.Error()))...)
	default:
		r.log.LogAttrs(ctx, slog.LevelInfo, "resync finished", attrs...)
	}
}
