package backfill

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	clk "github.com/tpe-provisioner/tpe-provisioner/internal/clock"
	"github.com/tpe-provisioner/tpe-provisioner/internal/limiter"
	"github.com/tpe-provisioner/tpe-provisioner/internal/logkey"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// Enumerator streams the candidate sets a backfill reconciles. Each user comes with the
// policy's properties already selected, so backfill needs no per-user directory read.
type Enumerator interface {
	// ScopeMembers streams the transitive user members of the given groups (a user in two
	// groups may appear twice; callers deduplicate).
	ScopeMembers(ctx context.Context, groupIDs []string) iter.Seq2[worker.User, error]
	// TeamsUsers streams users holding any of the Teams service plans the policy knows.
	TeamsUsers(ctx context.Context) iter.Seq2[worker.User, error]
	// ResourceAccounts streams users holding a Teams resource account licence.
	ResourceAccounts(ctx context.Context) iter.Seq2[worker.User, error]
	// DeletedUsers streams users deleted (soft) since the given time.
	DeletedUsers(ctx context.Context, since time.Time) iter.Seq2[worker.User, error]
}

// Backfill defaults.
const (
	defaultBackfillConcurrency = 32
	defaultMaxRevokes          = 100
	// defaultMaxRevokePercent: a first deployment's day-to-day resync revokes only the
	// leavers whose notifications were lost, a small fraction of the holders; a listing
	// fault or a wrong scope setting revokes most of them. 10 % sits far from both.
	defaultMaxRevokePercent = 10.0
	// percentBrakeMinRevokes: the percentage rule ignores plans of fewer revokes, which are
	// everyday leavers in any tenant (with 10 holders a second leaver is already 20 %).
	percentBrakeMinRevokes = 3
	defaultDeletedWindow   = 30 * 24 * time.Hour
	defaultBackfillRetries = 3
	defaultBackfillBackoff = 500 * time.Millisecond
	backfillMaxWait        = time.Minute // longest single retry wait, whatever Retry-After says
	enqueueBatchSize       = 100
)

// Candidate sources, recorded in worker.Target.Source and PlanRow.Source.
const (
	sourceBackfillScope    = "backfill/scope"
	sourceBackfillTeams    = "backfill/teams"
	sourceBackfillRA       = "backfill/resource-accounts"
	sourceBackfillDeleted  = "backfill/deleted"
	sourceBackfillEnqueued = "backfill"
)

// ErrPrincipalsFailed says some principals could not be planned or applied after retries;
// they were counted in Summary.Errors and logged, never revoked. The CLI exits 1 on it.
var ErrPrincipalsFailed = errors.New("some principals failed")

// Options configure one Backfill. worker.Reconciler and Enumerator are required.
type Options struct {
	// worker.Reconciler holds the policy, the directory and the assignments client. The plan reads
	// no user one by one (the enumerator streams full users); applying reconciles each
	// changed principal through it afresh. Its DryRun option is ignored (see DryRun).
	Reconciler *worker.Reconciler
	Enumerator Enumerator
	// Concurrency is how many principals are planned or applied at once; 0 means 32.
	Concurrency int
	// DryRun plans every candidate (one ACS read each) and writes nothing.
	DryRun bool
	// MaxRevokes trips the brake when more revokes are planned; 0 means 100, negative
	// means no count limit.
	MaxRevokes int
	// MaxRevokePercent also trips the brake when at least 3 revokes are planned and they
	// exceed this percentage (a real number: 0.5 is half a percent) of the candidates that
	// held an assignment; 0 means 10, negative means no percentage limit.
	MaxRevokePercent float64
	// Force applies the plan even when the brake trips, and plans from a scope listing the
	// listing rules would refuse (every write is still decided on fresh reads).
	Force bool
	// PreviousListing is how many users the previous scope listing of the same process
	// held (0: unknown); the listing rules compare the new one with it (backfill_guard.go).
	PreviousListing int
	// DeletedSince is how far back deleted users are reconciled; zero means 30 days ago.
	DeletedSince time.Time
	// SweepOutOfScope, with scope groups, also walks every holder of a Teams plan so that
	// users who left the scope while the group notification was lost lose our access (ACS
	// cannot list assignments). It costs one ACS read per Teams user of the tenant, not
	// only per member of the scope. The brake and the listing rules cover its revokes, and
	// each is confirmed by the user's own scope check before it is written.
	SweepOutOfScope bool
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
	Enqueue func(ctx context.Context, targets []worker.Target) error
	// Retries is how many times a principal's temporary error is retried (0 means 3,
	// negative none), waiting Backoff doubled each time or the Retry-After asked for.
	Retries int
	Backoff time.Duration // 0 means 500 ms
	// worker.Clock is the time source; nil means the wall clock.
	Clock worker.Clock
	// Logger receives one audit line per write and one line per failed principal; nil
	// discards.
	Logger *slog.Logger
	// Registerer receives the brake's metrics (worker/metrics.go); nil keeps them private.
	Registerer prometheus.Registerer
	// Limiter and DirectoryStats, when set, are read for the summary.
	Limiter        *limiter.Adaptive
	DirectoryStats func() DirectoryStats
}

func (o Options) withDefaults() (Options, error) {
	switch {
	case o.Reconciler == nil:
		return o, errors.New("backfill: no reconciler")
	case o.Enumerator == nil:
		return o, errors.New("backfill: no enumerator")
	}
	o.Concurrency = cmp.Or(max(o.Concurrency, 0), defaultBackfillConcurrency)
	o.MaxRevokes = cmp.Or(o.MaxRevokes, defaultMaxRevokes)
	if math.IsNaN(o.MaxRevokePercent) {
		return o, errors.New("backfill: MaxRevokePercent is NaN")
	}
	o.MaxRevokePercent = cmp.Or(o.MaxRevokePercent, defaultMaxRevokePercent)
	o.Retries = max(cmp.Or(o.Retries, defaultBackfillRetries), 0)
	o.Backoff = cmp.Or(o.Backoff, defaultBackfillBackoff)
	if o.Clock == nil {
		o.Clock = clk.System{}
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
// Phase 1 plans every candidate from the listings with one ACS read each and streams the
// rows to Out; a scope listing the listing rules refuse stops it with a *ListingError
// (errors.Is ErrListing). Unless DryRun, phase 2 then converges each row that changes
// something with a full Reconcile of its object id (user read, scope check, ACS read,
// decide, write), so every write is decided on reads made just before it and every
// out-of-scope revoke planned from a listing is confirmed by the user's own scope check;
// or it hands the rows to Enqueue. When the revokes planned trip the brake and Force is
// not set, nothing at all is applied and the error is a *BrakeError (errors.Is ErrBrake).
// A principal's temporary error is retried, then counted (ErrPrincipalsFailed); it never
// becomes a revoke. A systemic error, an enumeration error or the end of ctx stops the
// backfill at once with that error. The Summary is filled in all cases.
func Run(ctx context.Context, o Options) (Summary, error) {
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
	o       Options
	rec     *worker.Reconciler
	counted *countedAssignments
	policy  worker.Policy
	metrics *backfillMetrics
	listed  int // users of the scope listing, written by the enumerating goroutine
	sum     Summary
}

func newBackfillRun(o Options) *backfillRun {
	var counted *countedAssignments
	// A copy of the caller's worker.Reconciler, so that whatever it was built with holds for the
	// backfill's writes too; only its ACS calls are counted and its DryRun is ours.
	rec := o.Reconciler.WithAssignments(func(acs worker.Assignments) worker.Assignments {
		counted = &countedAssignments{next: acs}
		return counted
	})
	return &backfillRun{
		o:       o,
		rec:     rec,
		counted: counted,
		policy:  o.Reconciler.Policy(),
		metrics: newBackfillMetrics(o.Registerer),
		sum: Summary{Planned: map[worker.Action]int{}, Applied: map[worker.Action]int{}, Errors: map[string]int{},
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
	if b.sum.Brake != nil && !b.o.Force {
		b.metrics.brakeTrips.Inc()
	}
	if b.sum.Brake != nil && !b.o.Force && !b.o.DryRun {
		// The plan as a whole is in doubt: its grants come from the same listings.
		braked = b.sum.Brake
		b.sum.Withheld = b.sum.Planned[worker.ActionRevoke]
		b.metrics.withheld.Add(float64(b.sum.Withheld))
	}
	switch {
	case b.o.DryRun, braked != nil:
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
// The percentage rule needs at least percentBrakeMinRevokes revokes and compares
// revokes*100 > percent*assigned.
func (b *backfillRun) brake() *BrakeError {
	revokes, assigned := b.sum.Planned[worker.ActionRevoke], b.sum.Assigned
	overCount := b.o.MaxRevokes >= 0 && revokes > b.o.MaxRevokes
	overPercent := b.o.MaxRevokePercent > 0 && revokes >= percentBrakeMinRevokes &&
		float64(revokes)*100 > b.o.MaxRevokePercent*float64(assigned)
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
		Errors: b.sum.Failed(), Applied: b.sum.Applied, Stale: b.sum.Stale, Withheld: b.sum.Withheld, Brake: b.sum.Brake,
		DryRun: b.sum.DryRun, Enqueued: b.sum.Enqueued})
}

// failed records a principal that failed after retries, or returns the error when it must
// stop the run. Errors after the run was stopped are not the principal's and are dropped.
func (b *backfillRun) failed(ctx context.Context, phase, id string, err error) error {
	switch {
	case ctx.Err() != nil:
		return nil
	case worker.IsSystemic(err):
		return err
	}
	if phase == "plan" {
		b.sum.Candidates++
	}
	kind := errorKind(err)
	b.sum.Errors[kind]++
	b.o.Logger.LogAttrs(ctx, slog.LevelWarn, "backfill principal failed", slog.String(logkey.Phase, phase),
		slog.String(logkey.ObjectID, id), slog.String(logkey.Kind, kind), slog.String(logkey.Error, err.Error()))
	return nil
}

// errorKind names the behaviour of a principal's error for the summary.
func errorKind(err error) string {
	var perm *worker.PermanentError
	switch {
	case worker.IsTemporary(err):
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
func (b *backfillRun) retry(ctx context.Context, f func() (worker.Result, error)) (worker.Result, error) {
	for attempt := 0; ; attempt++ {
		res, err := f()
		if err == nil || !worker.IsTemporary(err) || attempt >= b.o.Retries || ctx.Err() != nil {
			return res, err
		}
		wait := min(max(b.o.Backoff<<attempt, worker.RetryAfterOf(err)), backfillMaxWait)
		select {
		case <-ctx.Done():
			return res, err
		case <-b.o.Clock.After(wait):
		}
	}
}
