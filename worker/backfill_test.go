package worker

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
)

// Test fixtures for backfill: object ids are GUIDs numbered so failures read easily.
const (
	bfOurApp     = "11111111-aaaa-4aaa-8aaa-000000000001"
	bfForeignApp = "22222222-bbbb-4bbb-8bbb-000000000002"
	bfTeams1     = "57ff2da0-773e-42df-b2af-ffb7a2317929"
	bfRASKU      = "440eaaa8-b3e0-484b-a8be-62870b9ba70a"
	bfScopeGroup = "99999999-9999-4999-8999-999999999999"
)

var bfPolicy = Policy{ClientIDs: []string{bfOurApp}, ManageResourceAccounts: true}

func bfID(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

func bfTeamsUser(n int) User {
	return User{ID: bfID(n), UPN: fmt.Sprintf("user%d@contoso.test", n), AccountEnabled: true,
		Plans: []AssignedPlan{{ServicePlanID: bfTeams1, CapabilityStatus: "Enabled"}}}
}

func bfSuspendedUser(n int) User {
	u := bfTeamsUser(n)
	u.Plans[0].CapabilityStatus = "Suspended"
	return u
}

func bfResourceAccount(n int) User {
	return User{ID: bfID(n), UPN: fmt.Sprintf("ra%d@contoso.test", n), SKUs: []string{bfRASKU}}
}

func bfOurs(n int) Assignment {
	return Assignment{ObjectID: bfID(n), PrincipalType: PrincipalUser, ClientIDs: []string{bfOurApp}}
}

func bfRA(n int) Assignment {
	return Assignment{ObjectID: bfID(n), PrincipalType: PrincipalResourceAccount}
}

// recordedPlan is a PlanWriter that keeps what it is given.
type recordedPlan struct {
	rows   []PlanRow
	totals []PlanTotals
}

func (p *recordedPlan) WriteRow(r PlanRow) error       { p.rows = append(p.rows, r); return nil }
func (p *recordedPlan) WriteTotals(t PlanTotals) error { p.totals = append(p.totals, t); return nil }

func (p *recordedPlan) actions() map[string]Action {
	m := map[string]Action{}
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
func bfTenant(now time.Time) (*fakeDirectory, *fakeAssignments) {
	disabled := bfTeamsUser(8)
	disabled.AccountEnabled = false
	dir := newFakeDirectory(bfTeamsUser(1), bfTeamsUser(2), bfSuspendedUser(3), bfSuspendedUser(4),
		bfResourceAccount(5), bfResourceAccount(6), bfTeamsUser(7), disabled, bfTeamsUser(9))
	dir.SoftDelete(bfID(7), now.Add(-72*time.Hour))
	dir.SoftDelete(bfID(9), now.Add(-60*24*time.Hour))
	mixed := bfOurs(4)
	mixed.ClientIDs = append(mixed.ClientIDs, bfForeignApp)
	acs := newFakeAssignments(bfOurs(2), bfOurs(3), mixed, bfRA(6), bfOurs(7), bfOurs(8), bfOurs(9))
	return dir, acs
}

var bfTenantPlan = map[string]Action{
	bfID(1): ActionGrant, bfID(2): ActionNoop, bfID(3): ActionRevoke, bfID(4): ActionRevoke,
	bfID(5): ActionGrant, bfID(6): ActionNoop, bfID(7): ActionRevoke, bfID(8): ActionRevoke,
}

func bfOptions(dir *fakeDirectory, acs *fakeAssignments, clock Clock) BackfillOptions {
	return BackfillOptions{Reconciler: NewReconciler(dir, acs, bfPolicy, ReconcilerOptions{}),
		Enumerator: dir, Concurrency: 4, Clock: clock, MaxRevokes: -1, MaxRevokePercent: -1}
}

func TestBackfillDryRunPlansEveryCandidateAndWritesNothing(t *testing.T) {
	clock := clk.NewInstant()
	dir, acs := bfTenant(clock.Now())
	out := &recordedPlan{}
	o := bfOptions(dir, acs, clock)
	o.DryRun, o.Out, o.ShowNoops = true, out, true

	sum, err := Backfill(t.Context(), o)
	if err != nil {
		t.Fatalf("Backfill: %v", err)
	}
	if got := acs.Writes(); got != 0 {
		t.Errorf("dry run made %d writes, want 0", got)
	}
	if got := out.actions(); !maps.Equal(got, bfTenantPlan) {
		t.Errorf("plan:\n got %v\nwant %v", got, bfTenantPlan)
	}
	wantPlanned := map[Action]int{ActionGrant: 2, ActionNoop: 2, ActionRevoke: 4}
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
	if _, err := Backfill(t.Context(), o); err != nil {
		t.Fatalf("Backfill: %v", err)
	}
	for _, r := range out.rows {
		if r.Action == ActionNoop {
			t.Errorf("noop row %s printed without ShowNoops", r.ObjectID)
		}
	}
	if got, want := len(out.rows), 6; got != want {
		t.Errorf("printed %d rows, want %d", got, want)
	}
	if got := out.totals[0].Planned[ActionNoop]; got != 2 {
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
	dir := newFakeDirectory(bfResourceAccount(1), bfTeamsUser(2), bfResourceAccount(3), bfTeamsUser(4))
	dir.SetGroup(bfScopeGroup, bfID(1), bfID(2))
	acs := newFakeAssignments(bfRA(3), bfOurs(4))
	p := bfPolicy
	p.ScopeGroups = []string{bfScopeGroup}
	out := &recordedPlan{}
	o := bfOptions(dir, acs, clock)
	o.Reconciler = NewReconciler(dir, acs, p, ReconcilerOptions{})
	o.Out, o.ShowNoops = out, true

	if _, err := Backfill(t.Context(), o); err != nil {
		t.Fatalf("Backfill: %v", err)
	}
	wantPlan := map[string]Action{bfID(1): ActionGrant, bfID(2): ActionGrant, bfID(3): ActionRevoke}
	if got := out.actions(); !maps.Equal(got, wantPlan) || len(out.rows) != 3 {
		t.Errorf("plan %v (%d rows), want %v (3 rows)", got, len(out.rows), wantPlan)
	}
	// Each candidate is read once to plan, and each of the 3 writes is decided on a fresh
	// read that includes the user's own scope check.
	if got := acs.Calls("Get"); got != 3+3 {
		t.Errorf("Get calls = %d, want 6: each candidate read once, each write read again", got)
	}
	// Two scope checks per write: the fresh read that decides it and the Reconciler's read
	// after it that verifies no other writer made it stale.
	if dir.Calls("MemberOf") != 2*3 || dir.Calls("TeamsUsers") != 0 {
		t.Errorf("%d scope checks (want two per write) or Teams users listed (%d)",
			dir.Calls("MemberOf"), dir.Calls("TeamsUsers"))
	}
	for _, r := range out.rows {
		if r.ObjectID == bfID(1) && (r.Source != sourceBackfillScope || r.Type != PrincipalResourceAccount) {
			t.Errorf("user 1 came from %s as %q, want scope as a resource account", r.Source, r.Type)
		}
	}
}

// With SweepOutOfScope the Teams users outside the scope are walked too, so a leaver whose
// group notification was lost loses our access; members are still read once.
func TestBackfillSweepOutOfScopeRevokesLeavers(t *testing.T) {
	dir := newFakeDirectory(bfTeamsUser(1), bfTeamsUser(2), bfTeamsUser(3))
	dir.SetGroup(bfScopeGroup, bfID(1))
	acs := newFakeAssignments(bfOurs(1), bfOurs(2)) // 2 left the group; 3 never had access
	p := bfPolicy
	p.ScopeGroups = []string{bfScopeGroup}
	out := &recordedPlan{}
	o := bfOptions(dir, acs, clk.NewInstant())
	o.Reconciler = NewReconciler(dir, acs, p, ReconcilerOptions{})
	o.Out, o.ShowNoops, o.SweepOutOfScope = out, true, true

	if _, err := Backfill(t.Context(), o); err != nil {
		t.Fatalf("Backfill: %v", err)
	}
	want := map[string]Action{bfID(1): ActionNoop, bfID(2): ActionRevoke, bfID(3): ActionNoop}
	if got := out.actions(); !maps.Equal(got, want) || len(out.rows) != 3 {
		t.Errorf("plan %v (%d rows), want %v", got, len(out.rows), want)
	}
	if _, err := acs.Get(t.Context(), bfID(2)); !IsNotFound(err) {
		t.Errorf("the leaver still holds an assignment (err %v)", err)
	}
	if got := acs.Calls("Get"); got != 5 { // 3 planned + 1 before the revoke + the check above
		t.Errorf("Get calls = %d, want one per candidate and one before the write", got)
	}
}

func TestBackfillBrake(t *testing.T) {
	// Ten users hold ours; three of them vanish (30%), and one new user is eligible.
	setup := func(clock Clock) (*fakeDirectory, *fakeAssignments) {
		dir := newFakeDirectory()
		acs := newFakeAssignments()
		for n := 1; n <= 11; n++ {
			dir.PutUser(bfTeamsUser(n))
			if n <= 10 {
				acs.Set(bfOurs(n))
			}
		}
		for n := 1; n <= 3; n++ {
			dir.SoftDelete(bfID(n), clock.Now().Add(-time.Hour))
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

			sum, err := Backfill(t.Context(), o)
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
			if _, granted := acs.Lookup(bfID(11)); granted == braked {
				t.Errorf("new eligible user granted = %v; a braked plan applies nothing, any other applies its grants", granted)
			}
			rows := bfDecodeJSONPlan(t, out.Bytes())
			if got := rows[ActionRevoke]; got != 3 {
				t.Errorf("plan printed %d revoke rows, want 3", got)
			}
		})
	}
}

// bfDecodeJSONPlan counts the rows of a JSON Lines plan by action and checks that the
// last line is the totals.
func bfDecodeJSONPlan(t *testing.T, b []byte) map[Action]int {
	t.Helper()
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	counts := map[Action]int{}
	for i, line := range lines {
		var row struct {
			Action Action          `json:"action"`
			Totals json.RawMessage `json:"totals"`
		}
		if err := json.Unmarshal(line, &row); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if (row.Totals != nil) != (i == len(lines)-1) {
			t.Fatalf("line %d of %d: totals %s; want totals only on the last line", i, len(lines), row.Totals)
		}
		counts[row.Action]++
	}
	return counts
}

func TestBackfillErrors(t *testing.T) {
	tests := []struct {
		name   string
		script func(*fakeDirectory, *fakeAssignments)
		// wantErr is matched with errors.Is / a classification; empty means success.
		check func(t *testing.T, sum Summary, err error, acs *fakeAssignments, waits []time.Duration)
	}{
		{
			name: "throttled read is retried after Retry-After",
			script: func(_ *fakeDirectory, acs *fakeAssignments) {
				acs.FailNext("Get", bfID(3), errThrottled(7*time.Second))
			},
			check: func(t *testing.T, sum Summary, err error, acs *fakeAssignments, waits []time.Duration) {
				if err != nil || sum.Failed() != 0 {
					t.Fatalf("err = %v, failed %v; want success after a retry", err, sum.Errors)
				}
				if !slices.Contains(waits, 7*time.Second) {
					t.Errorf("waits %v; want the 7s Retry-After honoured", waits)
				}
				if _, ok := acs.Lookup(bfID(3)); ok {
					t.Errorf("user 3 not revoked after the retry")
				}
			},
		},
		{
			name: "lasting temporary error is counted, never a revoke",
			script: func(_ *fakeDirectory, acs *fakeAssignments) {
				for range 4 {
					acs.FailNext("Get", bfID(3), errUnavailable())
				}
			},
			check: func(t *testing.T, sum Summary, err error, acs *fakeAssignments, waits []time.Duration) {
				if !errors.Is(err, ErrPrincipalsFailed) || sum.Errors["temporary"] != 1 {
					t.Fatalf("err = %v, errors %v; want ErrPrincipalsFailed with 1 temporary", err, sum.Errors)
				}
				if _, ok := acs.Lookup(bfID(3)); !ok {
					t.Errorf("user 3 revoked though its read failed")
				}
				if _, ok := acs.Lookup(bfID(8)); ok {
					t.Errorf("the other principals were not applied")
				}
				if want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}; !slices.Equal(waits, want) {
					t.Errorf("backoff waits %v, want %v", waits, want)
				}
			},
		},
		{
			name: "rejected write is counted and the rest applied",
			script: func(_ *fakeDirectory, acs *fakeAssignments) {
				acs.FailNext("Put", bfID(1), errBadRequest())
			},
			check: func(t *testing.T, sum Summary, err error, acs *fakeAssignments, _ []time.Duration) {
				if !errors.Is(err, ErrPrincipalsFailed) || sum.Errors[ReasonRejected] != 1 {
					t.Fatalf("err = %v, errors %v; want 1 rejected", err, sum.Errors)
				}
				if sum.Applied[ActionGrant] != 1 || sum.Applied[ActionRevoke] != 4 {
					t.Errorf("applied %v, want 1 grant and 4 revokes", sum.Applied)
				}
			},
		},
		{
			name: "systemic error stops before any write",
			script: func(_ *fakeDirectory, acs *fakeAssignments) {
				acs.FailNext("Get", bfID(2), errSystemic())
			},
			check: func(t *testing.T, _ Summary, err error, acs *fakeAssignments, _ []time.Duration) {
				if !IsSystemic(err) || errors.Is(err, ErrPrincipalsFailed) {
					t.Fatalf("err = %v, want the systemic error itself", err)
				}
				if acs.Writes() != 0 {
					t.Errorf("%d writes after a systemic error, want 0", acs.Writes())
				}
			},
		},
		{
			name: "enumeration error stops before any write",
			script: func(dir *fakeDirectory, _ *fakeAssignments) {
				dir.FailStreamAfter("ResourceAccounts", "", 1, errUnavailable())
			},
			check: func(t *testing.T, _ Summary, err error, acs *fakeAssignments, _ []time.Duration) {
				if !IsTemporary(err) {
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
			sum, err := Backfill(t.Context(), o)
			tt.check(t, sum, err, acs, clock.Waits())
		})
	}
}

func TestBackfillStopsWhenContextEnds(t *testing.T) {
	clock := clk.NewInstant()
	dir, acs := bfTenant(clock.Now())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := Backfill(ctx, bfOptions(dir, acs, clock))
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
	if _, err := Backfill(t.Context(), o); err != nil {
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
	var stderr logSink
	o := bfOptions(dir, acs, clock)
	o.Progress = &stderr
	o.Logger = slog.New(slog.NewJSONHandler(&stderr, nil))
	sum, err := Backfill(t.Context(), o)
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
