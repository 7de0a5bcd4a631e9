package backfill

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"

	"github.com/tpe-provisioner/tpe-provisioner/internal/logkey"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// applied is a worker's answer for one row.
type applied struct {
	row PlanRow
	res worker.Result
	err error
}

// apply runs phase 2: each row through a full reconcile of its object id.
func (b *backfillRun) apply(ctx context.Context, rows []PlanRow) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	meter := startProgress(b.o.Progress, b.o.IsTerminal, b.o.Clock, "apply", len(rows))
	runPool(ctx, cancel, b.o.Concurrency, feed(ctx, rows), func(r PlanRow) applied {
		res, err := b.retry(ctx, func() (worker.Result, error) { return b.applyFresh(ctx, r) })
		return applied{row: r, res: res, err: err}
	}, func(a applied) error {
		meter.add(1)
		if a.err != nil {
			return b.failed(ctx, "apply", a.row.ObjectID, a.err)
		}
		b.collectApplied(ctx, a)
		return nil
	})
	meter.finish()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}

// applyFresh converges the row's principal with the worker.Reconciler's full Reconcile: a fresh
// read of the user and its scope (one $batch), an ACS read, decide, write, verify.
// The plan only chose whom to look at again; what is written is decided on reads made just
// before the write, so a principal that changed since phase 1 (or that a lagging listing
// misplaced) gets what is true now, and every write gets the worker.Reconciler's own checks.
func (b *backfillRun) applyFresh(ctx context.Context, row PlanRow) (worker.Result, error) {
	return b.rec.Reconcile(ctx, worker.Target{Principal: row.ObjectID, Type: cmp.Or(row.Type, row.BeforeType),
		Command: worker.CommandReconcile, Source: row.Source})
}

// collectApplied counts one converged row and logs its audit record; a row whose fresh
// verdict differs from the plan's is counted stale and logged with both.
func (b *backfillRun) collectApplied(ctx context.Context, a applied) {
	if a.res.Action != a.row.Action {
		b.sum.Stale++
		b.o.Logger.LogAttrs(ctx, slog.LevelInfo, "backfill plan row superseded by a fresh read",
			slog.String(logkey.ObjectID, a.row.ObjectID), slog.String(logkey.PlannedAction, string(a.row.Action)),
			slog.String(logkey.Action, string(a.res.Action)), slog.String(logkey.Why, a.res.Reason))
	}
	if a.res.Action == worker.ActionGrant || a.res.Action == worker.ActionRevoke {
		b.sum.Applied[a.res.Action]++
		b.o.Logger.LogAttrs(ctx, slog.LevelInfo, "backfill applied", a.res.LogAttrs()...)
	}
}

// enqueue hands the rows to the queue as reconcile targets, in batches of at most 100.
// An Enqueue error stops the run: it is the queue's, not a principal's.
func (b *backfillRun) enqueue(ctx context.Context, rows []PlanRow) error {
	meter := startProgress(b.o.Progress, b.o.IsTerminal, b.o.Clock, "queue", len(rows))
	defer meter.finish()
	for batch := range slices.Chunk(rows, enqueueBatchSize) {
		targets := make([]worker.Target, len(batch))
		for i, r := range batch {
			targets[i] = worker.Target{Principal: r.ObjectID, Type: cmp.Or(r.Type, r.BeforeType),
				Command: worker.CommandReconcile, Source: sourceBackfillEnqueued}
		}
		if err := b.o.Enqueue(ctx, targets); err != nil {
			return fmt.Errorf("enqueue %d principals: %w", len(targets), err)
		}
		for _, r := range batch {
			b.sum.Applied[r.Action]++
		}
		meter.add(len(batch))
	}
	return nil
}

// countedAssignments counts the calls a backfill makes to ACS.
type countedAssignments struct {
	next          worker.Assignments
	reads, writes atomic.Int64
}

var _ worker.Assignments = (*countedAssignments)(nil)

func (c *countedAssignments) Get(ctx context.Context, objectID string) (worker.Assignment, error) {
	c.reads.Add(1)
	return c.next.Get(ctx, objectID)
}

func (c *countedAssignments) Put(ctx context.Context, a worker.Assignment) (worker.Assignment, error) {
	c.writes.Add(1)
	return c.next.Put(ctx, a)
}

func (c *countedAssignments) Delete(ctx context.Context, objectID string) (string, error) {
	c.writes.Add(1)
	return c.next.Delete(ctx, objectID)
}
