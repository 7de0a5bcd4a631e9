package backfill

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	clk "github.com/tpe-provisioner/tpe-provisioner/internal/clock"

	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// Test fixtures for backfill: object ids are GUIDs numbered so failures read easily.
const (
	bfOurApp     = "11111111-aaaa-4aaa-8aaa-000000000001"
	bfForeignApp = "22222222-bbbb-4bbb-8bbb-000000000002"
	bfTeams1     = "57ff2da0-773e-42df-b2af-ffb7a2317929"
	bfRASKU      = "440eaaa8-b3e0-484b-a8be-62870b9ba70a"
	bfScopeGroup = "99999999-9999-4999-8999-999999999999"
)

var bfPolicy = worker.Policy{ClientIDs: []string{bfOurApp}, ManageResourceAccounts: true}

func bfTeamsUser(n int) worker.User {
	return worker.User{ID: wt.OID(n), UPN: fmt.Sprintf("user%d@contoso.test", n), AccountEnabled: true,
		Plans: []worker.AssignedPlan{{ServicePlanID: bfTeams1, CapabilityStatus: "Enabled"}}}
}

func bfSuspendedUser(n int) worker.User {
	u := bfTeamsUser(n)
	u.Plans[0].CapabilityStatus = "Suspended"
	return u
}

func bfResourceAccount(n int) worker.User {
	return worker.User{ID: wt.OID(n), UPN: fmt.Sprintf("ra%d@contoso.test", n), SKUs: []string{bfRASKU}}
}

func bfOurs(n int) worker.Assignment {
	return worker.Assignment{ObjectID: wt.OID(n), PrincipalType: worker.PrincipalUser, ClientIDs: []string{bfOurApp}}
}

func bfRA(n int) worker.Assignment {
	return worker.Assignment{ObjectID: wt.OID(n), PrincipalType: worker.PrincipalResourceAccount}
}

// recordedPlan is a PlanWriter that keeps what it is given.
type recordedPlan struct {
	rows   []PlanRow
	totals []PlanTotals
}

func (p *recordedPlan) WriteRow(r PlanRow) error       { p.rows = append(p.rows, r); return nil }
func (p *recordedPlan) WriteTotals(t PlanTotals) error { p.totals = append(p.totals, t); return nil }

func (p *recordedPlan) actions() map[string]worker.Action {
	m := map[string]worker.Action{}
	for _, r := range p.rows {
		m[r.ObjectID] = r.Action
	}
	return m
}

// bfTenant is a small tenant covering every kind of candidate.
//
//	1 eligible Teams user, no assignment          -> grant
//	2 eligible Teams user, ours already           -> noop
//	3 Teams plan suspended, ours                  -> revoke (DELETE)
//	4 Teams plan suspended, ours + foreign        -> revoke (PUT foreign only)
//	5 resource account, no assignment             -> grant (resource account)
//	6 resource account, assigned                  -> noop
//	7 deleted 3 days ago, ours                    -> revoke
//	8 disabled Teams user, ours                   -> revoke
//	9 deleted 60 days ago, ours                   -> not a candidate (outside the window)
func bfTenant(now time.Time) (*wt.Directory, *wt.Assignments) {
	disabled := bfTeamsUser(8)
	disabled.AccountEnabled = false
	dir := wt.NewDirectory(bfTeamsUser(1), bfTeamsUser(2), bfSuspendedUser(3), bfSuspendedUser(4),
		bfResourceAccount(5), bfResourceAccount(6), bfTeamsUser(7), disabled, bfTeamsUser(9))
	dir.SoftDelete(wt.OID(7), now.Add(-72*time.Hour))
	dir.SoftDelete(wt.OID(9), now.Add(-60*24*time.Hour))
	mixed := bfOurs(4)
	mixed.ClientIDs = append(mixed.ClientIDs, bfForeignApp)
	acs := wt.NewAssignments(bfOurs(2), bfOurs(3), mixed, bfRA(6), bfOurs(7), bfOurs(8), bfOurs(9))
	return dir, acs
}

var bfTenantPlan = map[string]worker.Action{
	wt.OID(1): worker.ActionGrant, wt.OID(2): worker.ActionNoop, wt.OID(3): worker.ActionRevoke, wt.OID(4): worker.ActionRevoke,
	wt.OID(5): worker.ActionGrant, wt.OID(6): worker.ActionNoop, wt.OID(7): worker.ActionRevoke, wt.OID(8): worker.ActionRevoke,
}

func bfOptions(dir *wt.Directory, acs *wt.Assignments, clock worker.Clock) Options {
	return Options{Reconciler: worker.NewReconciler(dir, acs, bfPolicy, worker.ReconcilerOptions{}),
		Enumerator: dir, Concurrency: 4, Clock: clock, MaxRevokes: -1, MaxRevokePercent: -1}
}

func TestBackfillDryRunPlansEveryCandidateAndWritesNothing(t *testing.T) {
	clock := clk.NewInstant()
	dir, acs := bfTenant(clock.Now())
	out := &recordedPlan{}
	o := bfOptions(dir, acs, clock)
	o.DryRun, o.Out, o.ShowNoops = true, out, true

	sum, err := Run(t.Context(), o)
	if err != nil {
		t.Fatalf("Backfill: %v", err)
	}
	if got := acs.Writes(); got != 0 {
		t.Errorf("dry run made %d writes, want 0", got)
	}
	if got := out.actions(); !maps.Equal(got, bfTenantPlan) {
		t.Errorf("plan:\n got %v\nwant %v", got, bfTenantPlan)
	}
	wantPlanned := map[worker.Action]int{worker.ActionGrant: 2, worker.ActionNoop: 2, worker.ActionRevoke: 4}
	if !maps.Equal(sum.Planned, wantPlanned) || sum.Candidates != 8 || sum.Assigned != 6 {
		t.Errorf("summary planned=%v candidates=%d assigned=%d, want %v 8 6",
			sum.Planned, sum.Candidates, sum.Assigned, wantPlanned)
	}
	if sum.ACSReads != 8 || sum.ACSWrites != 0 {
		t.Errorf("acs reads=%d writes=%d, want 8 and 0", sum.ACSReads, sum.ACSWrites)
	}
	if len(out.totals) != 1 || !out.totals[0].DryRun || out.totals[0].Candidates != 8 {
		t.Errorf("totals = %+v, want one dry-run totals record of 8 candidates", out.totals)
	}
	if dir.Calls("User")+dir.Calls("MemberOf") != 0 {
		t.Errorf("backfill made per-user directory reads")
	}
}

func TestBackfillHidesNoopRowsUnlessAsked(t *testing.T) {
	clock := clk.NewInstant()
	dir, acs := bfTenant(clock.Now())
	out := &recordedPlan{}
	o := bfOptions(dir, acs, clock)
	o.DryRun, o.Out = true, out
	if _, err := Run(t.Context(), o); err != nil {
		t.Fatalf("Backfill: %v", err)
	}
	for _, r := range out.rows {
		if r.Action == worker.ActionNoop {
			t.Errorf("noop row %s printed without ShowNoops", r.ObjectID)
		}
	}
	if got, want := len(out.rows), 6; got != want {
		t.Errorf("printed %d rows, want %d", got, want)
	}
	if got := out.totals[0].Planned[worker.ActionNoop]; got != 2 {
		t.Errorf("totals count %d noops, want 2", got)
	}
}

func TestBackfillScopeMembersFirstAndOnce(t *testing.T) {
	clock := clk.NewInstant()
	// 1: scope member and resource account: processed once, in scope.
	// 2: scope member, Teams user.  3: resource account outside the scope, assigned.
	// 4: Teams user outside the scope, ours: with scope groups the candidates are the
	//    members, resource accounts and deleted users, so a leaver who is still a Teams user
	//    is left to the group notification's members@delta.
	dir := wt.NewDirectory(bfResourceAccount(1), bfTeamsUser(2), bfResourceAccount(3), bfTeamsUser(4))
	dir.SetGroup(bfScopeGroup, wt.OID(1), wt.OID(2))
	acs := wt.NewAssignments(bfRA(3), bfOurs(4))
	p := bfPolicy
	p.ScopeGroups = []string{bfScopeGroup}
	out := &recordedPlan{}
	o := bfOptions(dir, acs, clock)
	o.Reconciler = worker.NewReconciler(dir, acs, p, worker.ReconcilerOptions{})
	o.Out, o.ShowNoops = out, true

	if _, err := Run(t.Context(), o); err != nil {
		t.Fatalf("Backfill: %v", err)
	}
	wantPlan := map[string]worker.Action{wt.OID(1): worker.ActionGrant, wt.OID(2): worker.ActionGrant, wt.OID(3): worker.ActionRevoke}
	if got := out.actions(); !maps.Equal(got, wantPlan) || len(out.rows) != 3 {
		t.Errorf("plan %v (%d rows), want %v (3 rows)", got, len(out.rows), wantPlan)
	}
	// Each candidate is read once to plan, and each of the 3 writes is decided on a fresh
	// read that includes the user's own scope check.
	if got := acs.Calls("Get"); got != 3+3 {
		t.Errorf("Get calls = %d, want 6: each candidate read once, each write read again", got)
	}
	// Two scope checks per write: the fresh read that decides it and the worker.Reconciler's read
	// after it that verifies no other writer made it stale.
	if dir.Calls("MemberOf") != 2*3 || dir.Calls("TeamsUsers") != 0 {
		t.Errorf("%d scope checks (want two per write) or Teams users listed (%d)",
			dir.Calls("MemberOf"), dir.Calls("TeamsUsers"))
	}
	for _, r := range out.rows {
		if r.ObjectID == wt.OID(1) && (r.Source != sourceBackfillScope || r.Type != worker.PrincipalResourceAccount) {
			t.Errorf("user 1 came from %s as %q, want scope as a resource account", r.Source, r.Type)
		}
	}
}

// With SweepOutOfScope the Teams users outside the scope are walked too, so a leaver whose
// group notification was lost loses our access; members are still read once.
func TestBackfillSweepOutOfScopeRevokesLeavers(t *testing.T) {
	dir := wt.NewDirectory(bfTeamsUser(1), bfTeamsUser(2), bfTeamsUser(3))
	dir.SetGroup(bfScopeGroup, wt.OID(1))
	acs := wt.NewAssignments(bfOurs(1), bfOurs(2)) // 2 left the group; 3 never had access
	p := bfPolicy
	p.ScopeGroups = []string{bfScopeGroup}
	out := &recordedPlan{}
	o := bfOptions(dir, acs, clk.NewInstant())
	o.Reconciler = worker.NewReconciler(dir, acs, p, worker.ReconcilerOptions{})
	o.Out, o.ShowNoops, o.SweepOutOfScope = out, true, true

	if _, err := Run(t.Context(), o); err != nil {
		t.Fatalf("Backfill: %v", err)
	}
	want := map[string]worker.Action{wt.OID(1): worker.ActionNoop, wt.OID(2): worker.ActionRevoke, wt.OID(3): worker.ActionNoop}
	if got := out.actions(); !maps.Equal(got, want) || len(out.rows) != 3 {
		t.Errorf("plan %v (%d rows), want %v", got, len(out.rows), want)
	}
	if _, err := acs.Get(t.Context(), wt.OID(2)); !worker.IsNotFound(err) {
		t.Errorf("the leaver still holds an assignment (err %v)", err)
	}
	if got := acs.Calls("Get"); got != 5 { // 3 planned + 1 before the revoke + the check above
		t.Errorf("Get calls = %d, want one per candidate and one before the write", got)
	}
}

func TestBackfillBrake(t *testing.T) {
	// Ten users hold ours; three of them vanish (30%), and one new user is eligible.
	setup := func(clock worker.Clock) (*wt.Directory, *wt.Assignments) {
		dir := wt.NewDirectory()
		acs := wt.NewAssignments()
		for n := 1; n <= 11; n++ {
			dir.PutUser(bfTeamsUser(n))
			if n <= 10 {
				acs.Set(bfOurs(n))
			}
		}
		for n := 1; n <= 3; n++ {
			dir.SoftDelete(wt.OID(n), clock.Now().Add(-time.Hour))
		}
		return dir, acs
	}
	tests := []struct {
		name        string
		maxRevokes  int
		maxPercent  float64
		force       bool
		wantBrake   bool
		wantDeletes int
	}{
		{"percentage trips", -1, 20, false, true, 0},
		{"count trips", 2, 0, false, true, 0},
		{"within both limits", 3, 30, false, false, 3},
		{"force overrides", 2, 20, true, true, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := clk.NewInstant()
			dir, acs := setup(clock)
			var out bytes.Buffer
			o := bfOptions(dir, acs, clock)
			o.MaxRevokes, o.MaxRevokePercent, o.Force = tt.maxRevokes, tt.maxPercent, tt.force
			o.Out = NewPlanJSON(&out)

			sum, err := Run(t.Context(), o)
			if got := errors.Is(err, ErrBrake); got != (tt.wantBrake && !tt.force) {
				t.Fatalf("err = %v, want ErrBrake: %v", err, tt.wantBrake && !tt.force)
			}
			if tt.wantBrake && !tt.force {
				var be *BrakeError
				if !errors.As(err, &be) || be.Revokes != 3 || be.Assigned != 10 {
					t.Errorf("brake = %+v, want 3 revokes of 10 assigned", be)
				}
			}
			if got := (sum.Brake != nil); got != tt.wantBrake {
				t.Errorf("summary brake = %v, want %v", sum.Brake, tt.wantBrake)
			}
			if got := acs.Calls("Delete"); got != tt.wantDeletes {
				t.Errorf("deletes = %d, want %d", got, tt.wantDeletes)
			}
			braked := tt.wantBrake && !tt.force
			if _, granted := acs.Lookup(wt.OID(11)); granted == braked {
				t.Errorf("new eligible user granted = %v; a braked plan applies nothing, any other applies its grants", granted)
			}
			rows := bfDecodeJSONPlan(t, out.Bytes())
			if got := rows[worker.ActionRevoke]; got != 3 {
				t.Errorf("plan printed %d revoke rows, want 3", got)
			}
		})
	}
}

// bfDecodeJSONPlan counts the rows of a JSON plan document by action and checks that it
// ends with the totals.
func bfDecodeJSONPlan(t *testing.T, b []byte) map[worker.Action]int {
	t.Helper()
	var doc struct {
		Plan []struct {
			Action worker.Action `json:"action"`
		} `json:"plan"`
		Totals json.RawMessage `json:"totals"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("plan is not one JSON document: %v", err)
	}
	if doc.Totals == nil {
		t.Fatalf("plan has no totals")
	}
	counts := map[worker.Action]int{}
	for _, row := range doc.Plan {
		counts[row.Action]++
	}
	return counts
}

func TestBackfillErrors(t *testing.T) {
	tests := []struct {
		name   string
		script func(*wt.Directory, *wt.Assignments)
		// wantErr is matched with errors.Is / a classification; empty means success.
		check func(t *testing.T, sum Summary, err error, acs *wt.Assignments, waits []time.Duration)
	}{
		{
			name: "throttled read is retried after Retry-After",
			script: func(_ *wt.Directory, acs *wt.Assignments) {
				acs.FailNext("Get", wt.OID(3), wt.ErrThrottled(7*time.Second))
			},
			check: func(t *testing.T, sum Summary, err error, acs *wt.Assignments, waits []time.Duration) {
				if err != nil || sum.Failed() != 0 {
					t.Fatalf("err = %v, failed %v; want success after a retry", err, sum.Errors)
				}
				if !slices.Contains(waits, 7*time.Second) {
					t.Errorf("waits %v; want the 7s Retry-After honoured", waits)
				}
				if _, ok := acs.Lookup(wt.OID(3)); ok {
					t.Errorf("user 3 not revoked after the retry")
				}
			},
		},
		{
			name: "lasting temporary error is counted, never a revoke",
			script: func(_ *wt.Directory, acs *wt.Assignments) {
				for range 4 {
					acs.FailNext("Get", wt.OID(3), wt.ErrUnavailable())
				}
			},
			check: func(t *testing.T, sum Summary, err error, acs *wt.Assignments, waits []time.Duration) {
				if !errors.Is(err, ErrPrincipalsFailed) || sum.Errors["temporary"] != 1 {
					t.Fatalf("err = %v, errors %v; want ErrPrincipalsFailed with 1 temporary", err, sum.Errors)
				}
				if _, ok := acs.Lookup(wt.OID(3)); !ok {
					t.Errorf("user 3 revoked though its read failed")
				}
				if _, ok := acs.Lookup(wt.OID(8)); ok {
					t.Errorf("the other principals were not applied")
				}
				if want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}; !slices.Equal(waits, want) {
					t.Errorf("backoff waits %v, want %v", waits, want)
				}
			},
		},
		{
			name: "rejected write is counted and the rest applied",
			script: func(_ *wt.Directory, acs *wt.Assignments) {
				acs.FailNext("Put", wt.OID(1), wt.ErrBadRequest())
			},
			check: func(t *testing.T, sum Summary, err error, acs *wt.Assignments, _ []time.Duration) {
				if !errors.Is(err, ErrPrincipalsFailed) || sum.Errors[worker.ReasonRejected] != 1 {
					t.Fatalf("err = %v, errors %v; want 1 rejected", err, sum.Errors)
				}
				if sum.Applied[worker.ActionGrant] != 1 || sum.Applied[worker.ActionRevoke] != 4 {
					t.Errorf("applied %v, want 1 grant and 4 revokes", sum.Applied)
				}
			},
		},
		{
			name: "systemic error stops before any write",
			script: func(_ *wt.Directory, acs *wt.Assignments) {
				acs.FailNext("Get", wt.OID(2), wt.ErrSystemic())
			},
			check: func(t *testing.T, _ Summary, err error, acs *wt.Assignments, _ []time.Duration) {
				if !worker.IsSystemic(err) || errors.Is(err, ErrPrincipalsFailed) {
					t.Fatalf("err = %v, want the systemic error itself", err)
				}
				if acs.Writes() != 0 {
					t.Errorf("%d writes after a systemic error, want 0", acs.Writes())
				}
			},
		},
		{
			name: "enumeration error stops before any write",
			script: func(dir *wt.Directory, _ *wt.Assignments) {
				dir.FailStreamAfter("ResourceAccounts", "", 1, wt.ErrUnavailable())
			},
			check: func(t *testing.T, _ Summary, err error, acs *wt.Assignments, _ []time.Duration) {
				if !worker.IsTemporary(err) {
					t.Fatalf("err = %v, want the enumerator's error", err)
				}
				if acs.Writes() != 0 {
					t.Errorf("%d writes with an incomplete candidate set, want 0", acs.Writes())
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := clk.NewInstant()
			dir, acs := bfTenant(clock.Now())
			tt.script(dir, acs)
			o := bfOptions(dir, acs, clock)
			o.Concurrency = 1 // waits in a fixed order
			sum, err := Run(t.Context(), o)
			tt.check(t, sum, err, acs, clock.Waits())
		})
	}
}

func TestBackfillStopsWhenContextEnds(t *testing.T) {
	clock := clk.NewInstant()
	dir, acs := bfTenant(clock.Now())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := Run(ctx, bfOptions(dir, acs, clock))
	if !errors.Is(err, context.Canceled) || acs.Writes() != 0 {
		t.Errorf("err = %v, writes = %d; want context.Canceled and no write", err, acs.Writes())
	}
}

func TestBackfillProgressReportsFinalCounts(t *testing.T) {
	clock := clk.NewFake() // never advanced: only the final lines are drawn
	dir, acs := bfTenant(clock.Now())
	var progress bytes.Buffer
	o := bfOptions(dir, acs, clock)
	o.Progress = &progress
	if _, err := Run(t.Context(), o); err != nil {
		t.Fatalf("Backfill: %v", err)
	}
	want := "backfill plan: done=8 total=8 rate=0/s elapsed=0s eta=?\n" +
		"backfill apply: done=6 total=6 rate=0/s elapsed=0s eta=?\n"
	if got := progress.String(); got != want {
		t.Errorf("progress:\n%s\nwant:\n%s", got, want)
	}
}

// Progress and log records share stderr when it is not a terminal (cmd passes the same
// writer). Each phase's final line must be whole and written before what follows it: the
// apply phase's audit records, then the caller's summary.
func TestBackfillProgressLinesStayWholeAmongLogRecords(t *testing.T) {
	clock := clk.NewFake() // never advanced: only the final lines are drawn
	dir, acs := bfTenant(clock.Now())
	var stderr wt.LogSink
	o := bfOptions(dir, acs, clock)
	o.Progress = &stderr
	o.Logger = slog.New(slog.NewJSONHandler(&stderr, nil))
	sum, err := Run(t.Context(), o)
	if err != nil {
		t.Fatalf("Backfill: %v", err)
	}
	o.Logger.LogAttrs(t.Context(), slog.LevelInfo, "backfill finished", sum.LogAttrs()...)

	var kinds []string // one per write: "plan", "apply", or the record's msg
	for _, w := range stderr.Writes() {
		if strings.Count(w, "\n") != 1 || !strings.HasSuffix(w, "\n") {
			t.Fatalf("write %q: want one whole line", w)
		}
		if phase, ok := strings.CutPrefix(w, "backfill "); ok {
			kinds = append(kinds, phase[:strings.Index(phase, ":")])
			continue
		}
		var rec struct{ Msg string }
		if err := json.Unmarshal([]byte(w), &rec); err != nil {
			t.Fatalf("write %q is neither a progress line nor a JSON record", w)
		}
		kinds = append(kinds, rec.Msg)
	}
	applied := slices.Repeat([]string{"backfill applied"}, 6)
	want := slices.Concat([]string{"plan"}, applied, []string{"apply", "backfill finished"})
	if !slices.Equal(kinds, want) {
		t.Errorf("stderr holds, in order:\n%q\nwant:\n%q", kinds, want)
	}
}
