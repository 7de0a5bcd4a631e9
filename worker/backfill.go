package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Backfill defaults.
const (
	defaultBackfillConcurrency = 32
	defaultMaxRevokes          = 100
	defaultDeletedWindow       = 30 * 24 * time.Hour
	defaultBackfillRetries     = 3
	defaultBackfillBackoff     = 500 * time.Millisecond
	backfillMaxWait            = time.Minute // longest single retry wait, whatever Retry-After says
	enqueueBatchSize           = 100
)

// Candidate sources, recorded in Target.Source and PlanRow.Source.
const (
	sourceBackfillScope    = "backfill/scope"
	sourceBackfillTeams    = "backfill/teams"
	sourceBackfillRA       = "backfill/resource-accounts"
	sourceBackfillDeleted  = "backfill/deleted"
	sourceBackfillEnqueued = "backfill"
)

// Backfill and resync log keys (snake_case, stable).
const (
	backfillKeyPhase = "phase"
	backfillKeyKind  = "kind"
	backfillKeyWhy   = "why"
)

// ErrPrincipalsFailed says some principals could not be planned or applied after retries;
// they were counted in Summary.Errors and logged, never revoked. The CLI exits 1 on it.
var ErrPrincipalsFailed = errors.New("some principals failed")

// BackfillOptions configure one Backfill. Reconciler and Enumerator are required.
type BackfillOptions struct {
	// Reconciler holds the policy and the assignments client; its directory is not used
	// (the enumerator streams full users) and its DryRun option is ignored (see DryRun).
	Reconciler *Reconciler
	Enumerator enumerator
	// Concurrency is how many principals are planned or applied at once; 0 means 32.
	Concurrency int
	// DryRun plans every candidate (one ACS read each) and writes nothing.
	DryRun bool
	// MaxRevokes trips the brake when more revokes are planned; 0 means 100, negative
	// means no count limit.
	MaxRevokes int
	// MaxRevokePercent, when above 0, also trips the brake when revokes exceed this
	// percentage of the candidates that held an assignment.
	MaxRevokePercent int
	// Force applies revokes even when the brake trips.
	Force bool
	// DeletedSince is how far back deleted users are reconciled; zero means 30 days ago.
	DeletedSince time.Time
	// Out receives the plan; nil prints nothing. Noop rows are only counted unless
	// ShowNoops.
	Out       PlanWriter
	ShowNoops bool
	// Progress receives progress output (stderr); nil shows none. IsTerminal draws a bar
	// instead of a line every five seconds.
	Progress   io.Writer
	IsTerminal bool
	// Enqueue, when set, hands the planned changes to the queue in batches of at most 100
	// reconcile targets instead of writing them: this process writes nothing to ACS.
	Enqueue func(ctx context.Context, targets []Target) error
	// Retries is how many times a principal's temporary error is retried (0 means 3,
	// negative none), waiting Backoff doubled each time or the Retry-After asked for.
	Retries int
	Backoff time.Duration // 0 means 500 ms
	// Clock is the time source; nil means the wall clock.
	Clock Clock
	// Logger receives one audit line per write and one line per failed principal; nil
	// discards.
	Logger *slog.Logger
	// Limiter and DirectoryStats, when set, are read for the summary.
	Limiter        *AdaptiveLimiter
	DirectoryStats func() DirectoryStats
}

func (o BackfillOptions) withDefaults() (BackfillOptions, error) {
	switch {
	case o.Reconciler == nil:
		return o, errors.New("backfill: no reconciler")
	case o.Enumerator == nil:
		return o, errors.New("backfill: no enumerator")
	}
	o.Concurrency = cmp.Or(max(o.Concurrency, 0), defaultBackfillConcurrency)
	o.MaxRevokes = cmp.Or(o.MaxRevokes, defaultMaxRevokes)
	o.Retries = max(cmp.Or(o.Retries, defaultBackfillRetries), 0)
	o.Backoff = cmp.Or(o.Backoff, defaultBackfillBackoff)
	if o.Clock == nil {
		o.Clock = systemClock{}
	}
	if o.DeletedSince.IsZero() {
		o.DeletedSince = o.Clock.Now().Add(-defaultDeletedWindow)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Backfill reconciles every candidate principal: members of the scope groups (or, with
// none, users holding a Teams plan), users holding a resource account licence, and users
// deleted since DeletedSince. Candidates stream through a bounded pipeline; only the set of
// object ids seen (and the rows that need a write) grows with the tenant.
//
// Phase 1 plans every candidate with one ACS read and streams the rows to Out. Unless
// DryRun, phase 2 then applies the rows that change something, without reading again, or
// hands them to Enqueue. When the revokes planned trip the brake and Force is not set, only
// grants are applied and the error is a *BrakeError (errors.Is ErrBrake). A principal's
// temporary error is retried, then counted (ErrPrincipalsFailed); it never becomes a
// revoke. A systemic error, an enumeration error or the end of ctx stops the backfill at
// once with that error. The Summary is filled in all cases.
func Backfill(ctx context.Context, o BackfillOptions) (Summary, error) {
	o, err := o.withDefaults()
	if err != nil {
		return Summary{}, err
	}
	b := newBackfillRun(o)
	start := o.Clock.Now()
	err = b.run(ctx)
	b.sum.Duration = o.Clock.Now().Sub(start)
	b.sum.ACSReads, b.sum.ACSWrites = b.counted.reads.Load(), b.counted.writes.Load()
	if o.Limiter != nil {
		b.sum.Limiter = o.Limiter.Stats()
	}
	if o.DirectoryStats != nil {
		b.sum.Directory = o.DirectoryStats()
	}
	return b.sum, err
}

// backfillRun is the state of one Backfill. sum is touched only by the collecting
// goroutine (the caller's).
type backfillRun struct {
	o       BackfillOptions
	rec     *Reconciler
	counted *countedAssignments
	policy  Policy
	sum     Summary
}

func newBackfillRun(o BackfillOptions) *backfillRun {
	counted := &countedAssignments{next: o.Reconciler.acs}
	return &backfillRun{
		o:       o,
		rec:     NewReconciler(o.Reconciler.dir, counted, o.Reconciler.policy, ReconcilerOptions{}),
		counted: counted,
		policy:  o.Reconciler.policy,
		sum: Summary{Planned: map[Action]int{}, Applied: map[Action]int{}, Errors: map[string]int{},
			DryRun: o.DryRun, Enqueued: o.Enqueue != nil && !o.DryRun},
	}
}

func (b *backfillRun) run(ctx context.Context) error {
	pending, err := b.plan(ctx)
	if err != nil {
		return err
	}
	b.sum.Brake = b.brake()
	var braked error
	if b.sum.Brake != nil && !b.o.Force && !b.o.DryRun {
		braked = b.sum.Brake
		pending = slices.DeleteFunc(pending, func(r PlanRow) bool { return r.Action == ActionRevoke })
		b.sum.Withheld = b.sum.Planned[ActionRevoke]
	}
	switch {
	case b.o.DryRun:
	case b.o.Enqueue != nil:
		err = b.enqueue(ctx, pending)
	default:
		err = b.apply(ctx, pending)
	}
	// The plan was printed in full, so it gets its totals even when applying stopped.
	if werr := b.writeTotals(); err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	var failed error
	if n := b.sum.Failed(); n > 0 {
		failed = fmt.Errorf("%w: %d of %d", ErrPrincipalsFailed, n, b.sum.Candidates)
	}
	return errors.Join(braked, failed)
}

// brake returns the brake's verdict when the planned revokes exceed a limit, else nil.
// The percentage is compared exactly (revokes*100 > percent*assigned).
func (b *backfillRun) brake() *BrakeError {
	revokes, assigned := b.sum.Planned[ActionRevoke], b.sum.Assigned
	overCount := b.o.MaxRevokes >= 0 && revokes > b.o.MaxRevokes
	overPercent := b.o.MaxRevokePercent > 0 && revokes*100 > b.o.MaxRevokePercent*assigned
	if !overCount && !overPercent {
		return nil
	}
	return &BrakeError{Revokes: revokes, Assigned: assigned, MaxRevokes: b.o.MaxRevokes,
		MaxPercent: b.o.MaxRevokePercent}
}

func (b *backfillRun) writeTotals() error {
	if b.o.Out == nil {
		return nil
	}
	return b.o.Out.WriteTotals(PlanTotals{Candidates: b.sum.Candidates, Planned: b.sum.Planned,
		Errors: b.sum.Failed(), Applied: b.sum.Applied, Withheld: b.sum.Withheld, Brake: b.sum.Brake,
		DryRun: b.sum.DryRun, Enqueued: b.sum.Enqueued})
}

// candidate is one principal to plan: a user read by the enumerator, or (user nil) the
// object id of a deleted user.
type candidate struct {
	id      string
	user    *User
	inScope bool
	source  string
}

// planned is a worker's answer for one candidate.
type planned struct {
	id  string
	res Result
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
		t := Target{Principal: c.id, Command: CommandReconcile, Source: c.source}
		res, err := b.retry(ctx, func() (Result, error) { return b.rec.PlanKnown(ctx, t, c.user, c.inScope) })
		return planned{id: c.id, res: res, err: err}
	}, func(p planned) error {
		meter.add(1)
		return b.collectPlanned(ctx, p, &pending)
	})
	meter.finish()
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	return pending, nil
}

// enumerate emits each candidate once: scope members first (so that in-scope is a set
// lookup), or Teams users when there is no scope; then resource accounts; then deleted
// users. It returns how many it emitted.
func (b *backfillRun) enumerate(ctx context.Context, emit func(candidate) bool) (int, error) {
	seen := map[string]struct{}{}
	scoped := len(b.policy.ScopeGroups) > 0
	visit := func(source string, users iter.Seq2[User, error], inScope, deleted bool) error {
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
	} else {
		err = visit(sourceBackfillTeams, e.TeamsUsers(ctx), true, false)
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
	if b.o.Out == nil || (row.Action == ActionNoop && !b.o.ShowNoops) {
		return nil
	}
	if err := b.o.Out.WriteRow(row); err != nil {
		return fmt.Errorf("write plan: %w", err)
	}
	return nil
}

// failed records a principal that failed after retries, or returns the error when it must
// stop the run. Errors after the run was stopped are not the principal's and are dropped.
func (b *backfillRun) failed(ctx context.Context, phase, id string, err error) error {
	switch {
	case ctx.Err() != nil:
		return nil
	case IsSystemic(err):
		return err
	}
	if phase == "plan" {
		b.sum.Candidates++
	}
	kind := errorKind(err)
	b.sum.Errors[kind]++
	b.o.Logger.LogAttrs(ctx, slog.LevelWarn, "backfill principal failed", slog.String(backfillKeyPhase, phase),
		slog.String(resultKeyObjectID, id), slog.String(backfillKeyKind, kind), slog.String(keyError, err.Error()))
	return nil
}

// errorKind names the behaviour of a principal's error for the summary.
func errorKind(err error) string {
	var perm *PermanentError
	switch {
	case IsTemporary(err):
		return "temporary"
	case errors.As(err, &perm):
		return perm.Reason
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "other"
}

// retry calls f until it succeeds, fails for good, or has been retried o.Retries times on
// temporary errors, waiting the doubled backoff or the Retry-After asked for (if longer).
func (b *backfillRun) retry(ctx context.Context, f func() (Result, error)) (Result, error) {
	for attempt := 0; ; attempt++ {
		res, err := f()
		if err == nil || !IsTemporary(err) || attempt >= b.o.Retries || ctx.Err() != nil {
			return res, err
		}
		wait := min(max(b.o.Backoff<<attempt, RetryAfterOf(err)), backfillMaxWait)
		select {
		case <-ctx.Done():
			return res, err
		case <-b.o.Clock.After(wait):
		}
	}
}

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
	res := Result{ObjectID: row.ObjectID, UPN: row.UPN, Type: row.Type, Action: plan.Action,
		Reason: plan.Reason, Before: row.Before, BeforeType: row.BeforeType, AfterType: row.BeforeType,
		After: row.Before, Source: row.Source, Command: CommandReconcile}
	if plan.Action != row.Action {
		return res, &PermanentError{Reason: ReasonRejected,
			Description: fmt.Sprintf("plan for %s changed from %s to %s", row.ObjectID, row.Action, plan.Action)}
	}
	switch {
	case plan.Put != nil:
		put := *plan.Put
		put.ObjectID = row.ObjectID
		got, err := b.counted.Put(ctx, put)
		if err != nil {
			return res, fmt.Errorf("put assignment %s: %w", row.ObjectID, classify(ctx, err))
		}
		res.AfterType, res.After = describe(&put)
		if got.PrincipalType != "" {
			res.AfterType, res.After = describe(&got)
		}
		res.CorrelationID = got.CorrelationID
	case plan.Delete:
		cv, err := b.counted.Delete(ctx, row.ObjectID)
		if err != nil && !IsNotFound(err) {
			return res, fmt.Errorf("delete assignment %s: %w", row.ObjectID, classify(ctx, err))
		}
		res.AfterType, res.After, res.CorrelationID = "", nil, cv
	}
	return res, nil
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

// runPool runs work on every item of in with n goroutines and hands each output to
// collect on the calling goroutine. When collect returns an error the run is cancelled
// with it as the cause; the items left are drained without work.
func runPool[I, O any](ctx context.Context, cancel context.CancelCauseFunc, n int, in <-chan I,
	work func(I) O, collect func(O) error) {
	out := make(chan O, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for item := range in {
				if ctx.Err() == nil {
					out <- work(item)
				}
			}
		})
	}
	go func() { wg.Wait(); close(out) }()
	for o := range out {
		if ctx.Err() != nil {
			continue
		}
		if err := collect(o); err != nil {
			cancel(err)
		}
	}
}

// feed streams rows on a channel until they are all sent or ctx ends.
func feed(ctx context.Context, rows []PlanRow) <-chan PlanRow {
	ch := make(chan PlanRow)
	go func() {
		defer close(ch)
		for _, r := range rows {
			select {
			case ch <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// countedAssignments counts the calls a backfill makes to ACS.
type countedAssignments struct {
	next          assignments
	reads, writes atomic.Int64
}

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
