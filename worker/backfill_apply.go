package worker

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
)

// applied is a worker's answer for one row.
type applied struct {
	row PlanRow
	res Result
	err error
}

// apply runs phase 2: each row's write, with no second read.
func (b *backfillRun) apply(ctx context.Context, rows []PlanRow) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	meter := startProgress(b.o.Progress, b.o.IsTerminal, b.o.Clock, "apply", len(rows))
	runPool(ctx, cancel, b.o.Concurrency, feed(ctx, rows), func(r PlanRow) applied {
		res, err := b.retry(ctx, func() (Result, error) { return b.applyPlanned(ctx, r) })
		return applied{row: r, res: res, err: err}
	}, func(a applied) error {
		meter.add(1)
		if a.err != nil {
			return b.failed(ctx, "apply", a.row.ObjectID, a.err)
		}
		b.sum.Applied[a.row.Action]++
		b.o.Logger.LogAttrs(ctx, slog.LevelInfo, "backfill applied", a.res.LogAttrs()...)
		return nil
	})
	meter.finish()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}

// applyPlanned writes what the row planned. The assignment read in phase 1 is rebuilt
// from the row and Decide is asked again under the same policy, so the write obeys the
// same ownership rules as a reconcile; no ACS read is made.
func (b *backfillRun) applyPlanned(ctx context.Context, row PlanRow) (Result, error) {
	var cur *Assignment
	if row.BeforeType != "" {
		cur = &Assignment{ObjectID: row.ObjectID, PrincipalType: row.BeforeType, ClientIDs: row.Before}
	}
	plan := Decide(Verdict{Type: row.Type, Reason: row.Reason}, CommandReconcile, cur, b.policy)
	res := withPlan(Result{ObjectID: row.ObjectID, UPN: row.UPN, Type: row.Type, Before: row.Before,
		BeforeType: row.BeforeType, Source: row.Source, Command: CommandReconcile}, plan)
	if plan.Action != row.Action {
		return res, &PermanentError{Reason: ReasonRejected,
			Description: fmt.Sprintf("plan for %s changed from %s to %s", row.ObjectID, row.Action, plan.Action)}
	}
	return b.rec.apply(ctx, res, plan) // b.rec writes through b.counted
}

// enqueue hands the rows to the queue as reconcile targets, in batches of at most 100.
// An Enqueue error stops the run: it is the queue's, not a principal's.
func (b *backfillRun) enqueue(ctx context.Context, rows []PlanRow) error {
	meter := startProgress(b.o.Progress, b.o.IsTerminal, b.o.Clock, "queue", len(rows))
	defer meter.finish()
	for batch := range slices.Chunk(rows, enqueueBatchSize) {
		targets := make([]Target, len(batch))
		for i, r := range batch {
			targets[i] = Target{Principal: r.ObjectID, Type: cmp.Or(r.Type, r.BeforeType),
				Command: CommandReconcile, Source: sourceBackfillEnqueued}
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
	next          assignments
	reads, writes atomic.Int64
}

var _ assignments = (*countedAssignments)(nil)

func (c *countedAssignments) Get(ctx context.Context, objectID string) (Assignment, error) {
	c.reads.Add(1)
	return c.next.Get(ctx, objectID)
}

func (c *countedAssignments) Put(ctx context.Context, a Assignment) (Assignment, error) {
	c.writes.Add(1)
	return c.next.Put(ctx, a)
}

func (c *countedAssignments) Delete(ctx context.Context, objectID string) (string, error) {
	c.writes.Add(1)
	return c.next.Delete(ctx, objectID)
}
