package backfill

import (
	"context"
	"fmt"
	"iter"
	"testing"
	"time"

	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// bfGenerated is a tiny enumerator that makes users on the fly, so large runs hold no
// user list: n Teams users (every tenth with the plan suspended), n/100 resource
// accounts (half of them also Teams users, to test dedup) and n/1000 deleted users.
type bfGenerated struct{ n int }

var _ Enumerator = bfGenerated{} // and, through NewReconciler, the worker's directory

// User reads generated user i by its object id (wt.OID(i)); deleted and unknown ids are not
// found.
func (g bfGenerated) User(_ context.Context, id string) (worker.User, error) {
	var i int
	if _, err := fmt.Sscanf(id, "00000000-0000-4000-8000-%012d", &i); err != nil || i < 0 ||
		i >= g.n+g.n/200 {
		return worker.User{}, wt.ErrNotFound()
	}
	return g.user(i), nil
}

// MemberOf says every generated user is in every group (the large tests have no scope).
func (g bfGenerated) MemberOf(_ context.Context, _ string, groupIDs []string) ([]string, error) {
	return groupIDs, nil
}

// DeletedUser finds no one: the large tests name every principal by object id.
func (g bfGenerated) DeletedUser(context.Context, string) (worker.User, error) {
	return worker.User{}, wt.ErrNotFound()
}

func (g bfGenerated) GroupMembers(context.Context, string) iter.Seq2[string, error] {
	return func(func(string, error) bool) {}
}

func (g bfGenerated) user(i int) worker.User {
	var u worker.User
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

func (g bfGenerated) seq(ctx context.Context, from, to, step int, mk func(int) worker.User) iter.Seq2[worker.User, error] {
	return func(yield func(worker.User, error) bool) {
		for i := from; i < to; i += step {
			if ctx.Err() != nil {
				yield(worker.User{}, ctx.Err())
				return
			}
			if !yield(mk(i), nil) {
				return
			}
		}
	}
}

func (g bfGenerated) ScopeMembers(ctx context.Context, _ []string) iter.Seq2[worker.User, error] {
	return g.TeamsUsers(ctx)
}

func (g bfGenerated) TeamsUsers(ctx context.Context) iter.Seq2[worker.User, error] {
	return g.seq(ctx, 0, g.n, 1, g.user)
}

func (g bfGenerated) ResourceAccounts(ctx context.Context) iter.Seq2[worker.User, error] {
	return g.seq(ctx, g.n-g.n/200, g.n+g.n/200, 1, g.user)
}

func (g bfGenerated) DeletedUsers(ctx context.Context, _ time.Time) iter.Seq2[worker.User, error] {
	return g.seq(ctx, g.n+g.n/200, g.n+g.n/200+g.n/1000, 1, func(i int) worker.User { return worker.User{ID: wt.OID(i)} })
}

// bfLargeTenant returns a generated tenant and its assignments: every third Teams user
// already holds ours, and every deleted user does.
func bfLargeTenant(n int) (bfGenerated, *wt.Assignments) {
	g := bfGenerated{n: n}
	acs := wt.NewAssignments()
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
	o := Options{Reconciler: worker.NewReconciler(g, acs, bfPolicy, worker.ReconcilerOptions{}),
		Enumerator: g, Force: true, Out: out}
	start := time.Now()
	sum, err := Run(t.Context(), o)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("Backfill: %v", err)
	}
	wantCandidates := n + n/200 + n/1000
	if sum.Candidates != wantCandidates {
		t.Errorf("candidates = %d, want %d", sum.Candidates, wantCandidates)
	}
	changed := len(out.rows) // noops are not printed
	if want := sum.Planned[worker.ActionGrant] + sum.Planned[worker.ActionRevoke]; acs.Writes() != want || changed != want {
		t.Errorf("writes = %d, plan rows = %d; want writes only for the %d changed rows", acs.Writes(), changed, want)
	}
	if want := sum.Candidates + changed; sum.ACSReads != int64(want) || acs.Calls("Get") != want {
		t.Errorf("ACS reads = %d (fake %d), want one per principal and one before each write (%d)",
			sum.ACSReads, acs.Calls("Get"), want)
	}
	for _, i := range []int{1, 2, 3, 10, n - 1, n + n/200 - 1, n + n/200} {
		_, has := acs.Lookup(wt.OID(i))
		if want := !g.deleted(i) && worker.Eligibility(bfPtr(g.user(i)), true, bfPolicy).Type != ""; has != want {
			t.Errorf("user %d holds an assignment: %v, want %v", i, has, want)
		}
	}
	t.Logf("%d principals in %v (%.0f/s)", sum.Candidates, elapsed, float64(sum.Candidates)/elapsed.Seconds())
	if elapsed > 20*time.Second {
		t.Errorf("took %v; want a few seconds", elapsed)
	}
}

func bfPtr(u worker.User) *worker.User { return &u }

func BenchmarkBackfill(b *testing.B) {
	const n = 20_000
	total := 0
	for b.Loop() {
		b.StopTimer()
		g, acs := bfLargeTenant(n)
		b.StartTimer()
		sum, err := Run(b.Context(), Options{
			Reconciler: worker.NewReconciler(g, acs, bfPolicy, worker.ReconcilerOptions{}),
			Enumerator: g, Force: true})
		if err != nil {
			b.Fatal(err)
		}
		total += sum.Candidates
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "users/s")
}
