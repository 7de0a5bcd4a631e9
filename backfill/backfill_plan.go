package backfill

import (
	"context"
	"fmt"
	"iter"
	"strings"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// candidate is one principal to plan: a user read by the enumerator, or (user nil) the
// object id of a deleted user.
type candidate struct {
	id      string
	user    *worker.User
	inScope bool
	source  string
}

// planned is a worker's answer for one candidate.
type planned struct {
	id  string
	res worker.Result
	err error
}

// plan runs phase 1 and returns the rows that need a write.
func (b *backfillRun) plan(ctx context.Context) ([]PlanRow, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	meter := startProgress(b.o.Progress, b.o.IsTerminal, b.o.Clock, "plan", -1)
	jobs := make(chan candidate, b.o.Concurrency)
	go func() {
		defer close(jobs)
		n, err := b.enumerate(ctx, func(c candidate) bool {
			select {
			case jobs <- c:
				return true
			case <-ctx.Done():
				return false
			}
		})
		if err != nil {
			cancel(err)
		}
		meter.setTotal(n)
	}()
	var pending []PlanRow
	runPool(ctx, cancel, b.o.Concurrency, jobs, func(c candidate) planned {
		t := worker.Target{Principal: c.id, Command: worker.CommandReconcile, Source: c.source}
		res, err := b.retry(ctx, func() (worker.Result, error) { return b.rec.PlanKnown(ctx, t, c.user, c.inScope) })
		return planned{id: c.id, res: res, err: err}
	}, func(p planned) error {
		meter.add(1)
		return b.collectPlanned(ctx, p, &pending)
	})
	meter.finish()
	b.sum.ScopeListed = b.listed
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	return pending, nil
}

// enumerate emits each candidate once: scope members first (so that in-scope is a set
// lookup; the listing rules of backfill_guard.go then judge that listing), or Teams users
// when there is no scope; with SweepOutOfScope, Teams users outside
// the scope; then resource accounts; then deleted users. It returns how many it emitted.
func (b *backfillRun) enumerate(ctx context.Context, emit func(candidate) bool) (int, error) {
	seen := map[string]struct{}{}
	scoped := len(b.policy.ScopeGroups) > 0
	visit := func(source string, users iter.Seq2[worker.User, error], inScope, deleted bool) error {
		for u, err := range users {
			if err != nil {
				return fmt.Errorf("enumerate %s: %w", source, err)
			}
			id := strings.ToLower(u.ID)
			if _, dup := seen[id]; dup {
				continue
			}
			seen[id] = struct{}{}
			c := candidate{id: id, inScope: inScope, source: source}
			if !deleted {
				c.user = &u
			}
			if !emit(c) {
				return context.Cause(ctx)
			}
		}
		return nil
	}
	e := b.o.Enumerator
	var err error
	if scoped {
		err = visit(sourceBackfillScope, e.ScopeMembers(ctx, b.policy.ScopeGroups), true, false)
		if err == nil {
			b.listed = len(seen) // read by plan's caller once the candidates are drained
			err = b.checkListing(b.listed)
		}
	} else {
		err = visit(sourceBackfillTeams, e.TeamsUsers(ctx), true, false)
	}
	if err == nil && scoped && b.o.SweepOutOfScope {
		// Every member was seen above: a Teams user new here is out of scope.
		err = visit(sourceBackfillTeams, e.TeamsUsers(ctx), false, false)
	}
	if err == nil {
		// With scope groups every member was seen above: whoever is new here is out of scope.
		err = visit(sourceBackfillRA, e.ResourceAccounts(ctx), !scoped, false)
	}
	if err == nil {
		err = visit(sourceBackfillDeleted, e.DeletedUsers(ctx, b.o.DeletedSince), false, true)
	}
	return len(seen), err
}

// collectPlanned counts one planned candidate, prints its row and keeps it when it needs
// a write. A systemic error is returned to stop the run.
func (b *backfillRun) collectPlanned(ctx context.Context, p planned, pending *[]PlanRow) error {
	if p.err != nil {
		return b.failed(ctx, "plan", p.id, p.err)
	}
	b.sum.Candidates++
	row := planRowOf(p.res)
	b.sum.Planned[row.Action]++
	if row.BeforeType != "" {
		b.sum.Assigned++
	}
	if row.writes() {
		*pending = append(*pending, row)
	}
	if b.o.Out == nil || (row.Action == worker.ActionNoop && !b.o.ShowNoops) {
		return nil
	}
	if err := b.o.Out.WriteRow(row); err != nil {
		return fmt.Errorf("write plan: %w", err)
	}
	return nil
}
