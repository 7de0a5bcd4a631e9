package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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
		Enumerator: dir, Concurrency: 4, Clock: clock, MaxRevokes: -1}
}

func TestBackfillDryRunPlansEveryCandidateAndWritesNothing(t *testing.T) {
	clock := newInstantClock()
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
	clock := newInstantClock()
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

func TestBackfillApplyConvergesAndSecondRunIsNoop(t *testing.T) {
	clock := newInstantClock()
	dir, acs := bfTenant(clock.Now())
	o := bfOptions(dir, acs, clock)

	sum, err := Backfill(t.Context(), o)
	if err != nil {
		t.Fatalf("Backfill: %v", err)
	}
	want := map[string]*Assignment{
		bfID(1): {PrincipalType: PrincipalUser, ClientIDs: []string{bfOurApp}},
		bfID(2): {PrincipalType: PrincipalUser, ClientIDs: []string{bfOurApp}},
		bfID(3): nil,
		bfID(4): {PrincipalType: PrincipalUser, ClientIDs: []string{bfForeignApp}},
		bfID(5): {PrincipalType: PrincipalResourceAccount},
		bfID(6): {PrincipalType: PrincipalResourceAccount},
		bfID(7): nil, // deleted: revoked
		bfID(8): nil,
		bfID(9): {PrincipalType: PrincipalUser, ClientIDs: []string{bfOurApp}}, // outside the window
	}
	for id, w := range want {
		got, ok := acs.Lookup(id)
		switch {
		case w == nil && ok:
			t.Errorf("%s: assignment %+v left, want none", id, got)
		case w != nil && !ok:
			t.Errorf("%s: no assignment, want %+v", id, *w)
		case w != nil && (got.PrincipalType != w.PrincipalType || !slices.Equal(got.ClientIDs, w.ClientIDs)):
			t.Errorf("%s: assignment %s %v, want %s %v", id, got.PrincipalType, got.ClientIDs, w.PrincipalType, w.ClientIDs)
		}
	}
	wantApplied := map[Action]int{ActionGrant: 2, ActionRevoke: 4}
	if !maps.Equal(sum.Applied, wantApplied) {
		t.Errorf("applied %v, want %v", sum.Applied, wantApplied)
	}
	if got := acs.Calls("Get"); got != 8 {
		t.Errorf("ACS Get calls = %d, want 8 (one per candidate, none in the apply phase)", got)
	}
	if sum.ACSWrites != 6 || int(sum.ACSWrites) != acs.Writes() {
		t.Errorf("summary writes %d, fake saw %d, want 6", sum.ACSWrites, acs.Writes())
	}

	writes := acs.Writes()
	again, err := Backfill(t.Context(), o)
	if err != nil {
		t.Fatalf("second Backfill: %v", err)
	}
	if acs.Writes() != writes || again.Planned[ActionNoop] != again.Candidates {
		t.Errorf("second run planned %v and wrote %d, want all noop and no write",
			again.Planned, acs.Writes()-writes)
	}
}

func TestBackfillScopeMembersFirstAndOnce(t *testing.T) {
	clock := newInstantClock()
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
	if got := acs.Calls("Get"); got != 3 {
		t.Errorf("Get calls = %d, want 3: each candidate read once", got)
	}
	if dir.Calls("MemberOf") != 0 || dir.Calls("TeamsUsers") != 0 {
		t.Errorf("scope checked per user (%d MemberOf) or Teams users listed (%d)",
			dir.Calls("MemberOf"), dir.Calls("TeamsUsers"))
	}
	for _, r := range out.rows {
		if r.ObjectID == bfID(1) && (r.Source != sourceBackfillScope || r.Type != PrincipalResourceAccount) {
			t.Errorf("user 1 came from %s as %q, want scope as a resource account", r.Source, r.Type)
		}
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
		maxPercent  int
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
			clock := newInstantClock()
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
			if _, granted := acs.Lookup(bfID(11)); !granted {
				t.Errorf("new eligible user not granted: grants are never blocked")
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

func TestBackfillEnqueueBatchesAndWritesNothing(t *testing.T) {
	clock := newInstantClock()
	dir, acs := newFakeDirectory(), newFakeAssignments()
	for n := 1; n <= 250; n++ {
		dir.PutUser(bfTeamsUser(n))
	}
	for n := 251; n <= 260; n++ { // noop: not enqueued
		dir.PutUser(bfTeamsUser(n))
		acs.Set(bfOurs(n))
	}
	var batches [][]Target
	o := bfOptions(dir, acs, clock)
	o.Enqueue = func(_ context.Context, ts []Target) error {
		batches = append(batches, slices.Clone(ts))
		return nil
	}
	sum, err := Backfill(t.Context(), o)
	if err != nil {
		t.Fatalf("Backfill: %v", err)
	}
	var sizes []int
	seen := map[string]bool{}
	for _, b := range batches {
		sizes = append(sizes, len(b))
		for _, tg := range b {
			if tg.Command != CommandReconcile || seen[tg.Principal] {
				t.Errorf("target %+v: want one reconcile per principal", tg)
			}
			seen[tg.Principal] = true
		}
	}
	if !slices.Equal(sizes, []int{100, 100, 50}) {
		t.Errorf("batch sizes %v, want [100 100 50]", sizes)
	}
	if acs.Writes() != 0 || !sum.Enqueued || sum.Applied[ActionGrant] != 250 {
		t.Errorf("writes=%d enqueued=%v applied=%v; want 0 writes, 250 grants enqueued",
			acs.Writes(), sum.Enqueued, sum.Applied)
	}
}

func TestBackfillEnqueueRespectsBrake(t *testing.T) {
	clock := newInstantClock()
	dir, acs := bfTenant(clock.Now())
	var got []Target
	o := bfOptions(dir, acs, clock)
	o.MaxRevokes = 1
	o.Enqueue = func(_ context.Context, ts []Target) error { got = append(got, ts...); return nil }
	_, err := Backfill(t.Context(), o)
	if !errors.Is(err, ErrBrake) {
		t.Fatalf("err = %v, want ErrBrake", err)
	}
	var ids []string
	for _, tg := range got {
		ids = append(ids, tg.Principal)
	}
	slices.Sort(ids)
	if want := []string{bfID(1), bfID(5)}; !slices.Equal(ids, want) {
		t.Errorf("enqueued %v, want only the grants %v", ids, want)
	}
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
			clock := newInstantClock()
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
	clock := newInstantClock()
	dir, acs := bfTenant(clock.Now())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := Backfill(ctx, bfOptions(dir, acs, clock))
	if !errors.Is(err, context.Canceled) || acs.Writes() != 0 {
		t.Errorf("err = %v, writes = %d; want context.Canceled and no write", err, acs.Writes())
	}
}

func TestBackfillProgressReportsFinalCounts(t *testing.T) {
	clock := newFakeClock() // never advanced: only the final lines are drawn
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

// bfGenerated is a tiny enumerator that makes users on the fly, so large runs hold no
// user list: n Teams users (every tenth with the plan suspended), n/100 resource
// accounts (half of them also Teams users, to test dedup) and n/1000 deleted users.
type bfGenerated struct{ n int }

var _ enumerator = bfGenerated{}

func (g bfGenerated) user(i int) User {
	var u User
	switch {
	case i >= g.n: // resource accounts beyond the Teams users
		return bfResourceAccount(i)
	case i%10 == 0:
		u = bfSuspendedUser(i)
	default:
		u = bfTeamsUser(i)
	}
	if i >= g.n-g.n/200 { // a Teams user who is also a resource account
		u.SKUs = []string{bfRASKU}
	}
	return u
}

// deleted reports whether i is one of the deleted users.
func (g bfGenerated) deleted(i int) bool { return i >= g.n+g.n/200 }

func (g bfGenerated) seq(ctx context.Context, from, to, step int, mk func(int) User) iter.Seq2[User, error] {
	return func(yield func(User, error) bool) {
		for i := from; i < to; i += step {
			if ctx.Err() != nil {
				yield(User{}, ctx.Err())
				return
			}
			if !yield(mk(i), nil) {
				return
			}
		}
	}
}

func (g bfGenerated) ScopeMembers(ctx context.Context, _ []string) iter.Seq2[User, error] {
	return g.TeamsUsers(ctx)
}

func (g bfGenerated) TeamsUsers(ctx context.Context) iter.Seq2[User, error] {
	return g.seq(ctx, 0, g.n, 1, g.user)
}

func (g bfGenerated) ResourceAccounts(ctx context.Context) iter.Seq2[User, error] {
	return g.seq(ctx, g.n-g.n/200, g.n+g.n/200, 1, g.user)
}

func (g bfGenerated) DeletedUsers(ctx context.Context, _ time.Time) iter.Seq2[User, error] {
	return g.seq(ctx, g.n+g.n/200, g.n+g.n/200+g.n/1000, 1, func(i int) User { return User{ID: bfID(i)} })
}

// bfLargeTenant returns a generated tenant and its assignments: every third Teams user
// already holds ours, and every deleted user does.
func bfLargeTenant(n int) (bfGenerated, *fakeAssignments) {
	g := bfGenerated{n: n}
	acs := newFakeAssignments()
	for i := 0; i < n; i += 3 {
		acs.Set(bfOurs(i))
	}
	for i := n + n/200; i < n+n/200+n/1000; i++ {
		acs.Set(bfOurs(i))
	}
	return g, acs
}

func TestBackfillLargeTenant(t *testing.T) {
	if testing.Short() {
		t.Skip("large tenant")
	}
	const n = 100_000
	g, acs := bfLargeTenant(n)
	out := &recordedPlan{}
	o := BackfillOptions{Reconciler: NewReconciler(newFakeDirectory(), acs, bfPolicy, ReconcilerOptions{}),
		Enumerator: g, Force: true, Out: out}
	start := time.Now()
	sum, err := Backfill(t.Context(), o)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("Backfill: %v", err)
	}
	wantCandidates := n + n/200 + n/1000
	if sum.Candidates != wantCandidates {
		t.Errorf("candidates = %d, want %d", sum.Candidates, wantCandidates)
	}
	if sum.ACSReads != int64(sum.Candidates) || acs.Calls("Get") != sum.Candidates {
		t.Errorf("ACS reads = %d (fake %d), want one per principal (%d)", sum.ACSReads, acs.Calls("Get"), sum.Candidates)
	}
	changed := len(out.rows) // noops are not printed
	if want := sum.Planned[ActionGrant] + sum.Planned[ActionRevoke]; acs.Writes() != want || changed != want {
		t.Errorf("writes = %d, plan rows = %d; want writes only for the %d changed rows", acs.Writes(), changed, want)
	}
	for _, i := range []int{1, 2, 3, 10, n - 1, n + n/200 - 1, n + n/200} {
		_, has := acs.Lookup(bfID(i))
		if want := !g.deleted(i) && Eligibility(bfPtr(g.user(i)), true, bfPolicy).Type != ""; has != want {
			t.Errorf("user %d holds an assignment: %v, want %v", i, has, want)
		}
	}
	t.Logf("%d principals in %v (%.0f/s)", sum.Candidates, elapsed, float64(sum.Candidates)/elapsed.Seconds())
	if elapsed > 20*time.Second {
		t.Errorf("took %v; want a few seconds", elapsed)
	}
}

func bfPtr(u User) *User { return &u }

func BenchmarkBackfill(b *testing.B) {
	const n = 20_000
	total := 0
	for b.Loop() {
		b.StopTimer()
		g, acs := bfLargeTenant(n)
		b.StartTimer()
		sum, err := Backfill(b.Context(), BackfillOptions{
			Reconciler: NewReconciler(newFakeDirectory(), acs, bfPolicy, ReconcilerOptions{}),
			Enumerator: g, Force: true})
		if err != nil {
			b.Fatal(err)
		}
		total += sum.Candidates
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "users/s")
}

func TestResyncerCoalescesTriggers(t *testing.T) {
	r := NewResyncer(0, BackfillOptions{Clock: newFakeClock()})
	started := make(chan int32)
	release := make(chan struct{})
	var runs, active, peak atomic.Int32
	r.resync = func(context.Context) (Summary, error) {
		n := runs.Add(1)
		if a := active.Add(1); a > peak.Load() {
			peak.Store(a)
		}
		started <- n
		if n == 1 {
			<-release
		}
		active.Add(-1)
		return Summary{}, nil
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()

	r.Trigger()
	if n := <-started; n != 1 {
		t.Fatalf("first run is #%d", n)
	}
	var wg sync.WaitGroup
	for range 5 { // lifecycle events arriving from several goroutines while one runs
		wg.Go(r.Trigger)
	}
	wg.Wait()
	close(release)
	if n := <-started; n != 2 {
		t.Fatalf("follow-up run is #%d", n)
	}
	cancel()
	<-done
	if got, p := runs.Load(), peak.Load(); got != 2 || p != 1 {
		t.Errorf("%d runs with at most %d at once; want 2 runs (one follow-up) and never 2 at once", got, p)
	}
}

func TestResyncerRunsOnSchedule(t *testing.T) {
	clock := newFakeClock()
	r := NewResyncer(time.Hour, BackfillOptions{Clock: clock})
	ran := make(chan struct{})
	r.resync = func(context.Context) (Summary, error) { ran <- struct{}{}; return Summary{}, nil }
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go r.Run(ctx)
	for range 2 {
		clock.WaitForWaiters(t, 1)
		clock.Advance(59 * time.Minute)
		select {
		case <-ran:
			t.Fatalf("resync ran before the interval")
		default:
		}
		clock.Advance(time.Minute)
		<-ran
	}
}

func TestResyncerAlwaysBrakesAndLogsSummary(t *testing.T) {
	clock := newInstantClock()
	dir, acs := bfTenant(clock.Now())
	var logs logSink
	o := bfOptions(dir, acs, clock)
	o.MaxRevokes, o.Force = 1, true // a resync ignores Force
	o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	r := NewResyncer(0, o)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	r.Trigger()
	waitUntil(t, "the braked summary is logged", func() bool { return strings.Contains(logs.String(), "resync braked") })
	cancel()
	<-done
	if acs.Calls("Delete") != 0 || acs.Calls("Put") != 2 {
		t.Errorf("puts=%d deletes=%d; want only the 2 grants and no revoke", acs.Calls("Put"), acs.Calls("Delete"))
	}
	for _, want := range []string{`"withheld_revokes":4`, `"candidates":8`, `"why":"trigger"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("summary log lacks %s:\n%s", want, logs.String())
		}
	}
}
