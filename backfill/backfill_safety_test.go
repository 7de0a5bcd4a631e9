package backfill

import (
	"context"
	"errors"
	"iter"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	clk "github.com/tpe-provisioner/tpe-provisioner/internal/clock"

	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// laggingEnumerator is a listing that lags behind the directory, as Graph's advanced-query
// index does: ScopeMembers leaves out the hidden users although they are members.
type laggingEnumerator struct {
	*wt.Directory
	hidden map[string]bool
}

func (e laggingEnumerator) ScopeMembers(ctx context.Context, groupIDs []string) iter.Seq2[worker.User, error] {
	return func(yield func(worker.User, error) bool) {
		for u, err := range e.Directory.ScopeMembers(ctx, groupIDs) {
			if err == nil && e.hidden[strings.ToLower(u.ID)] {
				continue
			}
			if !yield(u, err) {
				return
			}
		}
	}
}

// scopedTenant has n Teams users, all members of the scope group and all holding ours.
func scopedTenant(n int) (*wt.Directory, *wt.Assignments, worker.Policy) {
	dir, acs := wt.NewDirectory(), wt.NewAssignments()
	var members []string
	for i := 1; i <= n; i++ {
		dir.PutUser(bfTeamsUser(i))
		acs.Set(bfOurs(i))
		members = append(members, wt.OID(i))
	}
	dir.SetGroup(bfScopeGroup, members...)
	p := bfPolicy
	p.ScopeGroups = []string{bfScopeGroup}
	return dir, acs, p
}

// An out-of-scope revoke planned from a listing is confirmed by the user's own scope check
// before it is written: a listing that lags behind leaves the member's access alone.
func TestBackfillConfirmsOutOfScopeRevokeWithScopeCheck(t *testing.T) {
	dir, acs, p := scopedTenant(3)
	o := bfOptions(dir, acs, clk.NewInstant())
	o.Reconciler = worker.NewReconciler(dir, acs, p, worker.ReconcilerOptions{})
	o.Enumerator = laggingEnumerator{dir, map[string]bool{wt.OID(2): true}}
	o.SweepOutOfScope = true
	out := &recordedPlan{}
	o.Out = out

	sum, err := Run(t.Context(), o)
	if err != nil {
		t.Fatalf("Backfill: %v", err)
	}
	if got := out.actions()[wt.OID(2)]; got != worker.ActionRevoke {
		t.Fatalf("set-up: the lagging listing planned %q for user 2, want revoke", got)
	}
	if _, ok := acs.Lookup(wt.OID(2)); !ok {
		t.Errorf("user 2, still a member, lost our access on a lagging listing's word")
	}
	if dir.Calls("MemberOf") == 0 {
		t.Errorf("no per-user scope check was made before the revoke")
	}
	if sum.Applied[worker.ActionRevoke] != 0 || sum.Stale != 1 {
		t.Errorf("applied %v, stale %d; want no revoke and 1 stale row", sum.Applied, sum.Stale)
	}
}

// mutatingPlan changes the directory while the plan is printed, i.e. after phase 1 read a
// principal and before phase 2 writes it.
type mutatingPlan struct {
	recordedPlan
	on     string
	mutate func()
}

func (p *mutatingPlan) WriteRow(r PlanRow) error {
	if r.ObjectID == p.on {
		p.mutate()
	}
	return p.recordedPlan.WriteRow(r)
}

// The apply phase writes only what is still true: each write is decided on reads made just
// before it, not on the plan's.
func TestBackfillAppliesOnlyWhatIsStillTrue(t *testing.T) {
	t.Run("user disabled after the plan is not granted", func(t *testing.T) {
		dir, acs := wt.NewDirectory(bfTeamsUser(1)), wt.NewAssignments()
		o := bfOptions(dir, acs, clk.NewInstant())
		plan := &mutatingPlan{on: wt.OID(1), mutate: func() {
			u := bfTeamsUser(1)
			u.AccountEnabled = false
			dir.PutUser(u)
		}}
		o.Out = plan
		sum, err := Run(t.Context(), o)
		if err != nil {
			t.Fatalf("Backfill: %v", err)
		}
		if a, ok := acs.Lookup(wt.OID(1)); ok {
			t.Errorf("disabled user granted %+v on a plan made before it was disabled", a)
		}
		if sum.Stale != 1 || sum.Applied[worker.ActionGrant] != 0 || plan.totals[0].Stale != 1 {
			t.Errorf("stale %d (totals %d) applied %v; want 1 stale row and no grant", sum.Stale, plan.totals[0].Stale, sum.Applied)
		}
	})
	t.Run("user re-licensed after the plan keeps access", func(t *testing.T) {
		dir, acs := wt.NewDirectory(bfSuspendedUser(1)), wt.NewAssignments(bfOurs(1))
		o := bfOptions(dir, acs, clk.NewInstant())
		o.Out = &mutatingPlan{on: wt.OID(1), mutate: func() { dir.PutUser(bfTeamsUser(1)) }}
		if _, err := Run(t.Context(), o); err != nil {
			t.Fatalf("Backfill: %v", err)
		}
		if _, ok := acs.Lookup(wt.OID(1)); !ok {
			t.Errorf("re-licensed user revoked on a plan made while suspended")
		}
	})
}

// A plan the brake refuses applies nothing at all: no revoke and no grant.
func TestBackfillBrakeAppliesNothing(t *testing.T) {
	clock := clk.NewInstant()
	dir, acs := bfTenant(clock.Now()) // 2 grants, 4 revokes of 6 holders
	o := bfOptions(dir, acs, clock)
	o.MaxRevokes = 1
	out := &recordedPlan{}
	o.Out = out
	sum, err := Run(t.Context(), o)
	if !errors.Is(err, ErrBrake) {
		t.Fatalf("err = %v, want ErrBrake", err)
	}
	if acs.Writes() != 0 || len(sum.Applied) != 0 && (sum.Applied[worker.ActionGrant]+sum.Applied[worker.ActionRevoke]) != 0 {
		t.Errorf("braked plan wrote %d times (applied %v), want nothing", acs.Writes(), sum.Applied)
	}
	if sum.Withheld != 4 || out.totals[0].Withheld != 4 {
		t.Errorf("withheld %d (totals %d), want the 4 revokes", sum.Withheld, out.totals[0].Withheld)
	}
}

// The percentage is a real number: 0.5 % trips on one revoke of ten holders, and 1.9 % is
// not 1 %.
func TestBackfillBrakePercentIsFractional(t *testing.T) {
	setup := func(holders, revokes int) Options {
		clock := clk.NewInstant()
		dir, acs := wt.NewDirectory(), wt.NewAssignments()
		for n := 1; n <= holders; n++ {
			u := bfTeamsUser(n)
			if n <= revokes {
				u.AccountEnabled = false
			}
			dir.PutUser(u)
			acs.Set(bfOurs(n))
		}
		o := bfOptions(dir, acs, clock)
		o.MaxRevokes = -1
		return o
	}
	tests := []struct {
		name             string
		holders, revokes int
		percent          float64
		want             bool
	}{
		{"3 of 100 over 1.9 %", 100, 3, 1.9, true},
		{"2 of 200 (1 %) within 1.9 %", 200, 2, 1.9, false},
		{"3 of 500 (0.6 %) over 0.5 %", 500, 3, 0.5, true},
		{"2 of 10 (20 %) are too few for the percentage rule", 10, 2, 10, false},
		{"negative turns it off", 10, 9, -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := setup(tt.holders, tt.revokes)
			o.MaxRevokePercent = tt.percent
			_, err := Run(t.Context(), o)
			if got := errors.Is(err, ErrBrake); got != tt.want {
				t.Errorf("brake tripped = %v (err %v), want %v", got, err, tt.want)
			}
		})
	}
}

// A scope listing that comes back empty is a directory fault, not "nobody is in scope":
// the plan is refused with an error naming the groups, and nothing is written.
func TestBackfillRefusesEmptyScopeListing(t *testing.T) {
	dir, acs, p := scopedTenant(5)
	hide := map[string]bool{}
	for i := 1; i <= 5; i++ {
		hide[wt.OID(i)] = true
	}
	o := bfOptions(dir, acs, clk.NewInstant())
	o.Reconciler = worker.NewReconciler(dir, acs, p, worker.ReconcilerOptions{})
	o.Enumerator = laggingEnumerator{dir, hide}
	o.SweepOutOfScope = true
	_, err := Run(t.Context(), o)
	var le *ListingError
	if !errors.Is(err, ErrListing) || !errors.As(err, &le) || !strings.Contains(err.Error(), bfScopeGroup) {
		t.Fatalf("err = %v, want an ErrListing naming %s", err, bfScopeGroup)
	}
	if acs.Writes() != 0 {
		t.Errorf("%d writes from an empty scope listing, want 0", acs.Writes())
	}
}

// The resync compares each scope listing with its previous one: a listing that lost more
// than half of its members is refused; the same listing again is believed.
func TestResyncRefusesSharplyShrunkListingOnce(t *testing.T) {
	dir, acs, p := scopedTenant(20)
	o := bfOptions(dir, acs, clk.NewInstant())
	o.Reconciler = worker.NewReconciler(dir, acs, p, worker.ReconcilerOptions{})
	o.MaxRevokes, o.MaxRevokePercent = -1, -1 // the listing rule alone
	o.SweepOutOfScope = true
	reg := prometheus.NewRegistry()
	o.Registerer = reg
	r := NewResyncer(0, o)

	if _, err := r.resync(t.Context()); err != nil {
		t.Fatalf("first resync: %v", err)
	}
	var kept []string
	for i := 1; i <= 8; i++ {
		kept = append(kept, wt.OID(i))
	}
	dir.SetGroup(bfScopeGroup, kept...) // 12 of 20 leave
	if _, err := r.resync(t.Context()); !errors.Is(err, ErrListing) {
		t.Fatalf("second resync err = %v, want ErrListing (20 -> 8 members)", err)
	}
	if acs.Writes() != 0 {
		t.Fatalf("the refused resync wrote %d times", acs.Writes())
	}
	if _, err := r.resync(t.Context()); err != nil {
		t.Fatalf("third resync (the same 8 again): %v", err)
	}
	if got := acs.Calls("Delete"); got != 12 {
		t.Errorf("deletes = %d, want the 12 leavers revoked once the shrink held", got)
	}
}

// A resync inside run honours dry run: it plans and logs, and writes nothing.
func TestResyncerKeepsDryRun(t *testing.T) {
	clock := clk.NewInstant()
	dir, acs := bfTenant(clock.Now())
	var logs wt.LogSink
	o := bfOptions(dir, acs, clock)
	o.DryRun = true
	o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	resyncOnce(t, o, &logs, "resync finished")
	if acs.Writes() != 0 {
		t.Errorf("a dry-run resync wrote %d times", acs.Writes())
	}
	if !strings.Contains(logs.String(), `"dry_run":true`) {
		t.Errorf("summary does not say dry run:\n%s", logs.String())
	}
}

func TestResyncMetrics(t *testing.T) {
	clock := clk.NewInstant()
	dir, acs := bfTenant(clock.Now())
	reg := prometheus.NewRegistry()
	o := bfOptions(dir, acs, clock)
	o.MaxRevokes, o.Registerer = 1, reg
	r := NewResyncer(0, o)
	r.once(t.Context(), "trigger") // braked: 4 revokes planned
	o.MaxRevokes = -1
	r2 := NewResyncer(0, o)
	r2.once(t.Context(), "trigger") // applies
	want := `
# HELP tpe_resync_runs_total Resyncs run inside the worker, by outcome.
# TYPE tpe_resync_runs_total counter
tpe_resync_runs_total{outcome="applied"} 1
tpe_resync_runs_total{outcome="braked"} 1
# HELP tpe_revoke_brake_trips_total Backfill or resync plans the revoke brake refused (in a dry run: would have refused).
# TYPE tpe_revoke_brake_trips_total counter
tpe_revoke_brake_trips_total 1
# HELP tpe_revokes_withheld_total Revokes a tripped brake held back (none of its plan was applied).
# TYPE tpe_revokes_withheld_total counter
tpe_revokes_withheld_total 4
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"tpe_resync_runs_total", "tpe_revoke_brake_trips_total", "tpe_revokes_withheld_total"); err != nil {
		t.Error(err)
	}
}

type fakeGroups map[string]error // group id -> error; nil = exists; missing key = no such group

func (f fakeGroups) GroupExists(_ context.Context, id string) (bool, error) {
	err, ok := f[id]
	return ok && err == nil, err
}

func TestCheckScopeGroups(t *testing.T) {
	other := "88888888-8888-4888-8888-888888888888"
	tests := []struct {
		name    string
		groups  fakeGroups
		missing []string // named in the error
		temp    bool
	}{
		{"all exist", fakeGroups{bfScopeGroup: nil, other: nil}, nil, false},
		{"one missing is named", fakeGroups{bfScopeGroup: nil}, []string{other}, false},
		{"a read error is an error, not missing", fakeGroups{bfScopeGroup: nil, other: wt.ErrUnavailable()}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckScopeGroups(t.Context(), tt.groups, []string{bfScopeGroup, other})
			switch {
			case tt.missing == nil && !tt.temp && err != nil:
				t.Fatalf("err = %v, want none", err)
			case tt.temp && (!worker.IsTemporary(err) || errors.Is(err, ErrNoSuchGroup)):
				t.Fatalf("err = %v, want the temporary read error, not ErrNoSuchGroup", err)
			}
			for _, g := range tt.missing {
				if !errors.Is(err, ErrNoSuchGroup) || !strings.Contains(err.Error(), g) {
					t.Errorf("err = %v, want ErrNoSuchGroup naming %s", err, g)
				}
			}
		})
	}
}
